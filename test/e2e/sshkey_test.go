package e2e

import (
	"strings"
	"testing"
)

// loginsFrom tries, on container from, every private key it holds (in the
// docker user's ~/.ssh, root's, and where an intruder put copies) against
// user@ip of each target, as ssh in batch mode: one line per try, "KEY IP
// ok" or "KEY IP refused: <ssh's last words>".
func loginsFrom(t *testing.T, from, user string, ips []string) []string {
	t.Helper()
	script := `for k in $(grep -l 'PRIVATE KEY' /home/*/.ssh/* /root/.ssh/* /root/stolen/* 2>/dev/null); do
  for ip in ` + strings.Join(ips, " ") + `; do
    if out=$(ssh -i "$k" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 ` + user + `@"$ip" true 2>&1); then
      echo "$k $ip ok"
    else
      echo "$k $ip refused: $(printf '%s' "$out" | tail -n 1)"
    fi
  done
done`
	r := dockerExec(t, from, "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("%s: trying the keys: %s", from, r)
	}
	return strings.Split(strings.TrimSpace(r.stdout), "\n")
}

// TestRemovedNodeKeyRevoked: a node removed from a 3-node cluster file,
// with copies of every key it held, logs in to none of the nodes left
// after 'cluster up'; the nodes left log in to each other with the new
// cluster key; the removed (forgotten) host keeps no shoal-restore.service
// nor the cluster's SSH files. 'cluster rotate --ssh-key' makes another
// key that works the same; 'machine rm' of a member rotates it on the
// members left; 'machine rm' and 'cluster down' take the boot unit off the
// hosts they forget.
func TestRemovedNodeKeyRevoked(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	names := []string{"k1", "k2", "k3"}
	ips := map[string]string{}
	for _, n := range names {
		ips[n] = labHost(t, "e2e-sk-"+n, hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-sk"})
	}
	file := adoptedClusterFile(t, "sk", priv, archive, []string{"k1"}, []string{"k2", "k3"}, ips)
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	// The intruder on k3 keeps copies of what it has; with them it logs
	// in to k1 and k2 as things are (else this test could pass for
	// nothing).
	if r := dockerExec(t, "e2e-sk-k3", "sh", "-c", "mkdir -p /root/stolen && cp /home/tester/.ssh/shoal-sk /root/stolen/"); r.code != 0 {
		t.Fatalf("copy the key: %s", r)
	}
	left := []string{ips["k1"], ips["k2"]}
	before := loginsFrom(t, "e2e-sk-k3", "tester", left)
	if !strings.Contains(strings.Join(before, "\n"), "/root/stolen/shoal-sk "+ips["k1"]+" ok") {
		t.Fatalf("before the removal, the cluster key should log in from k3:\n%s", strings.Join(before, "\n"))
	}
	oldEntry := s.sshOut("k1", "grep", "shoal-cluster-sk", ".ssh/authorized_keys")

	two := adoptedClusterFile(t, "sk", priv, archive, []string{"k1"}, []string{"k2"}, ips)
	if r := s.cluster("up", two); r.code != 0 {
		t.Fatalf("cluster up without k3: %s", r)
	}
	after := loginsFrom(t, "e2e-sk-k3", "tester", left)
	for _, l := range after {
		if !strings.Contains(l, "refused: ") || !strings.Contains(l, "Permission denied") {
			t.Errorf("from the removed k3: %s", l)
		}
	}
	t.Logf("from the removed k3:\n%s", strings.Join(after, "\n"))
	meshWorks(t, s, "k1", "k2", oldEntry)
	// The new key stays: the next run has nothing to do.
	if again := clusterUpJSON(t, s, two); again.Result.Changed {
		t.Errorf("the run after the rotation changed something")
	}

	// The forgotten host: no boot unit, no cluster key or entry.
	k3 := dockerExec(t, "e2e-sk-k3", "sh", "-c", "systemctl is-enabled shoal-restore.service; ls /etc/systemd/system/shoal-restore.service /etc/shoal /home/tester/.ssh/shoal-sk; grep -c shoal-cluster-sk /home/tester/.ssh/authorized_keys; grep -c 'shoal cluster sk' /home/tester/.ssh/config")
	for _, gone := range []string{"enabled", "shoal-restore.service\n", "/etc/shoal\n", "shoal-sk\n"} {
		if strings.Contains(k3.stdout, gone) {
			t.Errorf("k3 still has %q:\n%s\n%s", gone, k3.stdout, k3.stderr)
		}
	}

	// On demand.
	entry := s.sshOut("k1", "grep", "shoal-cluster-sk", ".ssh/authorized_keys")
	if r := s.cluster("rotate", two, "--ssh-key"); r.code != 0 {
		t.Fatalf("cluster rotate --ssh-key: %s", r)
	}
	meshWorks(t, s, "k1", "k2", entry)

	// 'machine rm' of a member: the same, on the members left.
	if r := dockerExec(t, "e2e-sk-k2", "sh", "-c", "mkdir -p /root/stolen && cp /home/tester/.ssh/shoal-sk /root/stolen/"); r.code != 0 {
		t.Fatalf("copy the key: %s", r)
	}
	entry = s.sshOut("k1", "grep", "shoal-cluster-sk", ".ssh/authorized_keys")
	if out := s.mustMachine("rm", "-y", "k2"); !strings.Contains(out, "Rotated the SSH key of cluster sk") {
		t.Errorf("machine rm k2 should say it rotated the cluster's key:\n%s", out)
	}
	for _, l := range loginsFrom(t, "e2e-sk-k2", "tester", []string{ips["k1"]}) {
		if !strings.Contains(l, "Permission denied") {
			t.Errorf("from k2 after 'machine rm': %s", l)
		}
	}
	if got := s.sshOut("k1", "grep", "shoal-cluster-sk", ".ssh/authorized_keys"); got == entry || strings.Contains(got, "\n") {
		t.Errorf("k1 authorizes %q after 'machine rm k2', want one entry other than %q", got, entry)
	}
	noRestoreUnit(t, "k2", "machine rm")

	if r := s.cluster("down", "sk"); r.code != 0 {
		t.Fatalf("cluster down: %s", r)
	}
	noRestoreUnit(t, "k1", "cluster down")
}

// noRestoreUnit checks that a forgotten host keeps no boot unit that would
// put back shoal's hostname and /etc/hosts block.
func noRestoreUnit(t *testing.T, n, after string) {
	t.Helper()
	if r := dockerExec(t, "e2e-sk-"+n, "sh", "-c", "systemctl is-enabled shoal-restore.service; ls /etc/systemd/system/shoal-restore.service /etc/shoal"); r.code == 0 || strings.Contains(r.stdout, "enabled") {
		t.Errorf("%s keeps shoal-restore.service after %s: %s", n, after, r)
	}
}

// meshWorks checks that a and b log in to each other as the docker user
// and authorize one cluster key, not old.
func meshWorks(t *testing.T, s *shoal, a, b, old string) {
	t.Helper()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		if got := s.sshOut(p[0], "ssh", "-o", "BatchMode=yes", p[1], "hostname"); got != p[1] {
			t.Errorf("%s -> %s: %q", p[0], p[1], got)
		}
		entries := s.sshOut(p[0], "grep", "shoal-cluster-sk", ".ssh/authorized_keys")
		if strings.Count(entries, "\n") != 0 || entries == old {
			t.Errorf("%s authorizes %q, want one entry other than %q", p[0], entries, old)
		}
	}
}
