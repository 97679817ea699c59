package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSwarmLockRefusesSecondCommand: while another shoal process holds a
// swarm's lock (a roll, an upgrade or a rotate runs on it), a command that
// may restart a node's dockerd (machine provision) is refused at once and
// restarts nothing; once the lock is free it runs.
func TestSwarmLockRefusesSecondCommand(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-rolls-lock"
	// Registered first so that it runs last, after the host is gone.
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	const container = "e2e-rolls-lock-m1"
	ip := labHost(t, container, hostOpts{user: "tester", pubkey: pub, network: network})
	s.mustMachine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "tester", "--ssh-key", priv,
		"--swarm-image-archive", archive, "--swarm-master", "--swarm-registry=false", "lockm1")
	id := s.sshOut("lockm1", "docker", "info", "--format", "'{{.Swarm.Cluster.ID}}'")
	if id == "" {
		t.Fatal("no swarm ID on the master")
	}

	// Another process's lock, as the store keeps it.
	dir := filepath.Join(s.storage, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "swarm-"+id+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	pid := func() string {
		return strings.TrimSpace(dockerExec(t, container, "systemctl", "show", "-p", "MainPID", "--value", "docker").stdout)
	}
	before := pid()
	r := s.machine("provision", "lockm1")
	if r.code == 0 || !strings.Contains(r.stderr, "another roll, upgrade or rotate runs on it") {
		t.Errorf("machine provision while the swarm is locked: want refused, got %s", r)
	}
	if after := pid(); after != before {
		t.Errorf("dockerd restarted (%s -> %s) by a refused command", before, after)
	}

	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if r := s.machine("provision", "lockm1"); r.code != 0 {
		t.Errorf("machine provision once the lock is free: %s", r)
	}
}
