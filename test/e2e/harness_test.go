// Package e2e runs the built binaries against real hosts made by the lab
// scripts: containers with systemd, sshd and dockerd on a Docker bridge
// network, and libvirt VMs under QEMU. Run it with `make e2e` (or `make test`).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/sshrun"
)

// requireE2E skips outside `make e2e`, and fails in CI when a prerequisite
// is missing: a skipped end-to-end test must never pass as green in CI.
func requireE2E(t testing.TB) {
	t.Helper()
	if os.Getenv("SHOAL_E2E") == "" && os.Getenv("SHOAL_BENCH") == "" && os.Getenv("CI") != "true" {
		t.Skip("end-to-end test: run with `make e2e` (SHOAL_E2E=1)")
	}
	for _, tool := range []string{"docker", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("prerequisite missing: %s (run `make lab-setup`)", tool)
		}
	}
	if _, err := os.Stat(bin("machine")); err != nil {
		t.Fatalf("prerequisite missing: %s (run `make build`)", bin("machine"))
	}
}

func bin(name string) string {
	dir := os.Getenv("SHOAL_BIN_DIR")
	if dir == "" {
		dir, _ = filepath.Abs("../../bin")
	}
	return filepath.Join(dir, name)
}

func labScript() string {
	p, _ := filepath.Abs("../lab/lab.sh")
	return p
}

// result is what a command did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

func run(t testing.TB, timeout time.Duration, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// shoal is one storage path and the binaries that use it.
type shoal struct {
	t       testing.TB
	storage string
}

func newShoal(t testing.TB) *shoal {
	return &shoal{t: t, storage: t.TempDir()}
}

// machine runs `machine --storage-path S ARGS...` with plain output.
func (s *shoal) machine(args ...string) result {
	s.t.Helper()
	full := append([]string{"--storage-path", s.storage, "--output", "plain"}, args...)
	r := run(s.t, 15*time.Minute, bin("machine"), full...)
	s.t.Logf("machine %s -> exit %d", strings.Join(args, " "), r.code)
	return r
}

// mustMachine fails the test unless the command succeeds.
func (s *shoal) mustMachine(args ...string) string {
	s.t.Helper()
	r := s.machine(args...)
	if r.code != 0 {
		s.t.Fatalf("machine %s failed: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// sshOut runs a command on a machine and returns its trimmed stdout.
func (s *shoal) sshOut(name string, cmd ...string) string {
	s.t.Helper()
	return strings.TrimSpace(s.mustMachine(append([]string{"ssh", name, "--"}, cmd...)...))
}

// labHost starts a lab host container and removes it when the test ends.
type hostOpts struct {
	image, user, pubkey, daemonJSON, network string
}

func labHost(t testing.TB, name string, o hostOpts) string {
	t.Helper()
	args := []string{labScript(), "host-up", name}
	if o.image != "" {
		args = append(args, "--image", o.image)
	}
	if o.network != "" {
		args = append(args, "--network", o.network)
	}
	if o.user != "" {
		args = append(args, "--user", o.user, "--pubkey", o.pubkey)
	}
	if o.daemonJSON != "" {
		args = append(args, "--daemon-json", o.daemonJSON)
	}
	if o.network != "" {
		// Runs after the hosts are gone (cleanups run last first); a
		// network still in use by another test's host stays.
		t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", o.network) })
	}
	t.Cleanup(func() { run(t, 2*time.Minute, "bash", labScript(), "host-rm", name) })
	r := run(t, 5*time.Minute, "bash", args...)
	if r.code != 0 {
		t.Fatalf("lab host %s: %s", name, r)
	}
	ip := strings.TrimSpace(r.stdout)
	if ip == "" {
		t.Fatalf("lab host %s: no IP: %s", name, r)
	}
	return ip
}

// userKey writes a fresh ed25519 key pair for a lab user.
func userKey(t testing.TB) (priv, pub string) {
	t.Helper()
	dir := t.TempDir()
	p, a, err := sshrun.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "id_ed25519.pub")
	if err := os.WriteFile(priv, p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, []byte(a+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func dockerExec(t testing.TB, container string, cmd ...string) result {
	t.Helper()
	return run(t, 2*time.Minute, "docker", append([]string{"exec", container}, cmd...)...)
}

func mustJSON(t testing.TB, text string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(text), v); err != nil {
		t.Fatalf("not valid JSON (%v):\n%s", err, text)
	}
}

// storageFiles returns the content of every file under the storage path.
func storageFiles(t testing.TB, root string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				out[p] = b
			}
		}
		return nil
	})
	return out
}
