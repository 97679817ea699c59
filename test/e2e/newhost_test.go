package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestoreOntoNewHostsSameNames: the disaster case of adopted hosts. A
// cluster's hosts are gone; new hosts at new addresses get the old machine
// names in the file given to 'cluster restore'. The machines keep the old
// hosts' pins, so the restore is refused, as another host at a new address
// (not a changed key), naming the address connected to and the command that
// takes it; that command restores the swarm and pins the new hosts' keys.
// Lab containers e2e-nh-*, network shoal-lab-nh.
func TestRestoreOntoNewHostsSameNames(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-nh"
	ips := map[string]string{}
	host := func(n string) string {
		ips[n] = labHost(t, "e2e-nh-"+n, hostOpts{user: "tester", pubkey: pub, network: network})
		return "e2e-nh-" + n
	}
	old := host("m1")
	dir := t.TempDir()
	file := backupFile(t, filepath.Join(dir, "nh.hcl"), priv, archive, []string{"m1"}, nil, ips)
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	swarmID := strings.TrimSpace(dockerExec(t, old, "docker", "info", "--format", "{{.Swarm.Cluster.ID}}").stdout)
	backup := filepath.Join(dir, "nh.backup")
	if r := s.cluster("backup", "d2bk", "-o", backup); r.code != 0 {
		t.Fatalf("cluster backup: %s", r)
	}
	// A new host (made first, so that its address is another one), then
	// the old one is gone.
	oldIP := ips["m1"]
	fresh := host("m1new")
	if r := run(t, 2*time.Minute, "bash", labScript(), "host-rm", old); r.code != 0 {
		t.Fatalf("host-rm: %s", r)
	}
	newIP := ips["m1new"]
	newFile := backupFile(t, filepath.Join(dir, "new.hcl"), priv, archive, []string{"m1"}, nil, map[string]string{"m1": newIP})
	r := s.cluster("restore", backup, "--file", newFile)
	// The step is the restore as it was run (its flags, the store) with the
	// new host taken.
	step := fmt.Sprintf("--file %s --storage-path %s %s --accept-new-host-key m1", newFile, s.storage, backup)
	if r.code == 0 || !strings.Contains(r.stderr, "host at "+newIP+":22 is not the host") || !strings.Contains(r.stderr, step) ||
		strings.Contains(r.stderr, "intercepting") || !strings.Contains(r.stderr, oldIP) {
		t.Fatalf("restore onto a new host at a new address must be refused as a new host, naming %s and the step: %s", newIP, r)
	}
	r = s.cluster("restore", backup, "--file", newFile, "--accept-new-host-key", "m1")
	if r.code != 0 {
		t.Fatalf("cluster restore --accept-new-host-key m1: %s", r)
	}
	// The registry's node is the new host under the old name: the restored
	// service, as wanted, finds its data folder there.
	if got := dockerExec(t, fresh, "sh", "-c", "test -d /var/lib/registry && echo yes").stdout; strings.TrimSpace(got) != "yes" {
		t.Errorf("no registry data folder on the new host")
	}
	if got := strings.TrimSpace(dockerExec(t, fresh, "docker", "info", "--format", "{{.Swarm.Cluster.ID}}").stdout); got != swarmID {
		t.Errorf("restored swarm ID %q, want %s", got, swarmID)
	}
	if !strings.Contains(r.stderr+r.stdout, "pinned "+fingerprint(t, fresh)) {
		t.Errorf("the new host's key was not shown when pinned:\n%s", r.stderr)
	}
	// Taken: later runs need no flag.
	if r := s.cluster("up", newFile); r.code != 0 {
		t.Errorf("cluster up after the restore: %s", r)
	}
}
