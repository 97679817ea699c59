package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProvisionLogKeepsNoFiles: provisioned again, the facts probe reads
// the --engine-env drop-in (where proxy passwords live) and daemon.json;
// provision.log keeps their paths and sha256, not their text.
func TestProvisionLogKeepsNoFiles(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	const name, network = "e2e-h27-plog", "shoal-lab-h27-plog"
	// Last first: the network goes after the container on it.
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	t.Cleanup(func() { run(t, time.Minute, "docker", "rm", "-fv", "shoal-"+name) })
	if r := run(t, time.Minute, "docker", "network", "create", network); r.code != 0 && !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("network: %s", r)
	}
	s.mustMachine("create", "-d", "docker", "--docker-network", network, "--engine-storage-driver", "vfs",
		"--engine-env", "HTTPS_PROXY=http://user:E2e-Proxy-Secret@proxy.invalid:3128", name)
	s.mustMachine("provision", name)
	log, err := os.ReadFile(filepath.Join(s.storage, "machines", name, "provision.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"E2e-Proxy-Secret", "HTTPS_PROXY", `"storage-driver"`} {
		if strings.Contains(string(log), bad) {
			t.Errorf("provision.log holds %s:\n%s", bad, log)
		}
	}
	for _, want := range []string{"# /etc/systemd/system/docker.service.d/shoal-env.conf\n(", " bytes, sha256 "} {
		if !strings.Contains(string(log), want) {
			t.Errorf("provision.log lacks %q:\n%s", want, log)
		}
	}
}

// TestHostTextCleaned: a host whose os-release's PRETTY_NAME carries
// escape sequences (a window title, a colour) shows its name in the
// progress lines without them.
func TestHostTextCleaned(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	const name, network = "e2e-h27-esc", "shoal-lab-h27-esc"
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	t.Cleanup(func() { run(t, time.Minute, "docker", "rm", "-fv", "shoal-"+name) })
	if r := run(t, time.Minute, "docker", "network", "create", network); r.code != 0 && !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("network: %s", r)
	}
	s.mustMachine("create", "-d", "docker", "--docker-network", network, "--engine-storage-driver", "vfs", name)
	set := `e=$(printf '\033'); b=$(printf '\007'); f=$(readlink -f /etc/os-release); ` +
		`sed -i "s/^PRETTY_NAME=.*/PRETTY_NAME=\"Evil${e}]0;owned${b} ${e}[31mOS${e}[0m\"/" "$f"`
	if r := dockerExec(t, "shoal-"+name, "sh", "-c", set); r.code != 0 {
		t.Fatalf("os-release: %s", r)
	}
	r := s.machine("--output", "plain", "provision", name)
	if r.code != 0 {
		t.Fatalf("provision: %s", r)
	}
	if strings.ContainsAny(r.stderr+r.stdout, "\x1b\x07") || !strings.Contains(r.stderr, "Evil OS") {
		t.Errorf("the progress shows the host's escapes, or not its name: %q", r.stderr)
	}
}
