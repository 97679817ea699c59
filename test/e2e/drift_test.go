package e2e

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"
)

// upEvents runs `cluster up --output json` and returns the result and the
// steps it changed, as "host step".
func upEvents(t *testing.T, s *shoal, file string) (upResult, []string) {
	t.Helper()
	r := run(t, 20*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "json", "up", file)
	if r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	var res upResult
	var changed []string
	for _, line := range strings.Split(r.stdout+"\n"+r.stderr, "\n") {
		var ev struct{ Host, Step, Status string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Status == "changed" {
			changed = append(changed, ev.Host+" "+ev.Step)
		}
		if strings.Contains(line, `"result"`) {
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatalf("result line: %v\n%s", err, line)
			}
		}
	}
	sort.Strings(changed)
	return res, changed
}

// dockerdPIDs reads dockerd's PID on every host container.
func dockerdPIDs(t *testing.T, containers map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, c := range containers {
		r := dockerExec(t, c, "systemctl", "show", "-p", "MainPID", "--value", "docker")
		if r.code != 0 || strings.TrimSpace(r.stdout) == "0" {
			t.Fatalf("%s: dockerd's PID: %s", name, r)
		}
		out[name] = strings.TrimSpace(r.stdout)
	}
	return out
}

// sshLogins counts, per host, the logins sshd accepted (its journal).
func sshLogins(t *testing.T, containers map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, c := range containers {
		r := dockerExec(t, c, "sh", "-c", "journalctl -q -t sshd --no-pager | grep -c '^Accepted ' || true")
		if r.code != 0 {
			t.Fatalf("%s: sshd's journal: %s", name, r)
		}
		out[name] = strings.TrimSpace(r.stdout)
	}
	return out
}

// TestClusterUpFixesDrift: something changed on one host behind shoal's
// back is found by the next `cluster up`, which fixes exactly that and
// nothing else (the other hosts' dockerd keeps running); with nothing
// changed a run opens one SSH session per host, on the connection the
// run before it left (no login).
func TestClusterUpFixesDrift(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	managers, workers := []string{"m1"}, []string{"w1", "w2"}
	ips, containers := map[string]string{}, map[string]string{}
	for _, n := range append(append([]string{}, managers...), workers...) {
		containers[n] = "e2e-pf-" + n
		ips[n] = labHost(t, containers[n], hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-pf"})
	}
	file := adoptedClusterFile(t, "drift", priv, archive, managers, workers, ips)
	if first, _ := upEvents(t, s, file); !first.Result.Changed {
		t.Fatal("the first run changed nothing")
	}
	noop, changed := upEvents(t, s, file)
	if noop.Result.Changed || len(changed) > 0 {
		t.Fatalf("the second run changed %v", changed)
	}
	// From here on every run works on the connections the runs before it
	// kept (the SSH keeper; the first run's were renewed after it, as it
	// put the login user in the docker group): no login, and the drift is
	// found all the same.
	logins := sshLogins(t, containers)
	// The first run put the login user in the docker group and logged in
	// again for it: the engine's API went over that login's channels, never
	// through sudo and a docker CLI on the host.
	for name, c := range containers {
		if n := journalCount(t, c, "docker system dial-stdio"); n != 0 {
			t.Errorf("%s: the engine was reached through sudo and docker system dial-stdio %d times; want none (the run's second login is in the docker group)", name, n)
		}
	}
	if noop.Result.Sessions != int64(len(containers)) {
		t.Errorf("the no-op run opened %d SSH sessions for %d hosts; want one per host (the facts probe)", noop.Result.Sessions, len(containers))
	}

	// 1. A line of shoal's /etc/hosts block goes on w1.
	hostsBefore := dockerExec(t, containers["w1"], "cat", "/etc/hosts").stdout
	if !strings.Contains(hostsBefore, ips["m1"]+"\tm1\n") {
		t.Fatalf("w1's /etc/hosts does not name m1:\n%s", hostsBefore)
	}
	pids := dockerdPIDs(t, containers)
	// In place (sed -i would rename over Docker's bind mount).
	if r := dockerExec(t, containers["w1"], "sh", "-c", `awk -v ip=`+ips["m1"]+` '!($1 == ip && $2 == "m1")' /etc/hosts > /tmp/h && cat /tmp/h > /etc/hosts`); r.code != 0 {
		t.Fatalf("editing w1's /etc/hosts: %s", r)
	}
	res, changed := upEvents(t, s, file)
	if !res.Result.Changed || strings.Join(changed, ",") != "w1 hosts" {
		t.Errorf("after a line of w1's /etc/hosts went, the run changed %v; want exactly [w1 hosts]", changed)
	}
	if got := dockerExec(t, containers["w1"], "cat", "/etc/hosts").stdout; got != hostsBefore {
		t.Errorf("w1's /etc/hosts is not what it was:\n%s\nwant:\n%s", got, hostsBefore)
	}
	if after := dockerdPIDs(t, containers); !sameMap(after, pids) {
		t.Errorf("dockerd restarted: PIDs %v, before %v", after, pids)
	}
	if after := sshLogins(t, containers); !sameMap(after, logins) {
		t.Errorf("the run logged in again: sshd's logins per host %v, before the no-op %v", after, logins)
	}

	// 2. The registry goes from w2's insecure-registries in daemon.json:
	// its dockerd restarts with the file fixed, the others' do not.
	daemonBefore := dockerExec(t, containers["w2"], "cat", "/etc/docker/daemon.json").stdout
	if !strings.Contains(daemonBefore, `"m1:5000"`) {
		t.Fatalf("w2's daemon.json does not name the registry:\n%s", daemonBefore)
	}
	// No jq on the hosts: the list is on its own lines (shoal indents it).
	edit := `awk '/"insecure-registries": \[/ { skip = 1; next } skip && /^ *\]/ { sub(/^ *\]/, "  \"insecure-registries\": []"); print; skip = 0; next } !skip' /etc/docker/daemon.json > /tmp/d && cat /tmp/d > /etc/docker/daemon.json && ! grep -q m1:5000 /etc/docker/daemon.json`
	if r := dockerExec(t, containers["w2"], "sh", "-c", edit); r.code != 0 {
		t.Fatalf("editing w2's daemon.json: %s\n%s", r, daemonBefore)
	}
	pids = dockerdPIDs(t, containers)
	res, changed = upEvents(t, s, file)
	if !res.Result.Changed || strings.Join(changed, ",") != "w2 daemon.json,w2 docker-service" {
		t.Errorf("after a key of w2's daemon.json went, the run changed %v; want exactly [w2 daemon.json w2 docker-service]", changed)
	}
	if !strings.Contains(dockerExec(t, containers["w2"], "cat", "/etc/docker/daemon.json").stdout, `"m1:5000"`) {
		t.Errorf("w2's daemon.json was not fixed")
	}
	after := dockerdPIDs(t, containers)
	for n := range containers {
		if restarted := after[n] != pids[n]; restarted != (n == "w2") {
			t.Errorf("%s: dockerd PID %s, before %s (only w2's should change)", n, after[n], pids[n])
		}
	}
	if noop, changed := upEvents(t, s, file); noop.Result.Changed || len(changed) > 0 {
		t.Errorf("the run after the fixes changed %v", changed)
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
