package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTemplatesNodeImage builds templates/node/Dockerfile the way `make
// lab-image` does on a machine without a registry (BASE = the lab's
// debootstrap base image), and makes a docker-driver machine from that
// image end to end: sshd answers with the pinned key, systemd runs its
// own dockerd. A missing image gets the one command that builds it here.
func TestTemplatesNodeImage(t *testing.T) {
	requireE2E(t)
	const (
		base    = "shoal-lab/base:bookworm"
		image   = "e2e-tp/node:bookworm"
		network = "shoal-lab-tp"
		name    = "e2e-tp-n1"
	)
	if r := run(t, time.Minute, "docker", "image", "inspect", base); r.code != 0 {
		t.Fatalf("prerequisite missing: %s (run `make lab-image`): %s", base, r)
	}
	context, err := filepath.Abs("../../templates/node")
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the image goes after the container.
	t.Cleanup(func() { run(t, 2*time.Minute, "docker", "rmi", image) })
	// The classic builder, as lab.sh uses it: it needs no buildx plugin,
	// which Debian's docker.io 20.10 does not ship.
	t.Setenv("DOCKER_BUILDKIT", "0")
	build := run(t, 30*time.Minute, "docker", "build", "--build-arg", "BASE="+base, "-t", image, context)
	if build.code != 0 {
		t.Fatalf("docker build templates/node: %s", build)
	}

	s := newShoal(t)
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	t.Cleanup(func() { run(t, time.Minute, "docker", "rm", "-fv", "shoal-"+name) })
	s.mustMachine("create", "-d", "docker", "--docker-image", image, "--docker-network", network, name)
	if got := strings.TrimSpace(run(t, time.Minute, "docker", "inspect", "-f", "{{.Config.Image}}", "shoal-"+name).stdout); got != image {
		t.Fatalf("container image %q, want %q", got, image)
	}
	if got := s.sshOut(name, "systemctl", "is-active", "ssh", "docker", "shoal-ssh-keygen"); got != "active\nactive\nactive" {
		t.Fatalf("units: %q", got)
	}
	if got := s.sshOut(name, "docker", "info", "--format", "'{{.ServerVersion}}'"); got == "" {
		t.Fatal("docker info: no server version")
	}
	// The image carries no host identity: the machine-id was made at boot.
	if got := s.sshOut(name, "cat", "/etc/machine-id"); len(got) != 32 {
		t.Fatalf("machine-id %q", got)
	}
	if r := s.machine("rm", "-y", name); r.code != 0 {
		t.Fatalf("machine rm: %s", r)
	}

	// No registry answers here: the command that builds the image is
	// `make lab-image`, and the failed create leaves nothing behind.
	missing := s.machine("create", "-d", "docker", "--docker-image", "e2e-tp/missing:none", "--docker-network", network, "e2e-tp-n2")
	if missing.code == 0 {
		t.Fatalf("create with a missing image succeeded: %s", missing)
	}
	if !strings.Contains(missing.stderr, "e2e-tp/missing:none is not on the local engine") ||
		!strings.Contains(missing.stderr, "'make lab-image && docker tag shoal/node:bookworm e2e-tp/missing:none'") {
		t.Fatalf("the error does not say how to build the image here: %s", missing)
	}
	if ls := s.mustMachine("ls", "-q"); strings.Contains(ls, "e2e-tp-n2") {
		t.Fatalf("a failed create left a machine: %q", ls)
	}
}
