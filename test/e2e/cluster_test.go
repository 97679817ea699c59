package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cluster runs the cluster binary with the test's storage path.
func (s *shoal) cluster(args ...string) result {
	s.t.Helper()
	full := append([]string{"--storage-path", s.storage, "--output", "plain"}, args...)
	r := run(s.t, 15*time.Minute, bin("cluster"), full...)
	s.t.Logf("cluster %s -> exit %d", strings.Join(args, " "), r.code)
	return r
}

// adoptedClusterFile writes a cluster file for lab hosts adopted over SSH.
func adoptedClusterFile(t testing.TB, name, key, archive string, managers, workers []string, ips map[string]string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %q {}\n\n", name)
	fmt.Fprintf(&b, "defaults {\n  driver = \"ssh\"\n  ssh {\n    user = \"tester\"\n    key  = %q\n  }\n  image_archives = [%q]\n}\n\n", key, archive)
	for _, m := range managers {
		fmt.Fprintf(&b, "machine %q {\n  role = \"manager\"\n  labels = { zone = \"a\" }\n  ssh { host = %q }\n}\n\n", m, ips[m])
	}
	for _, w := range workers {
		fmt.Fprintf(&b, "machine %q {\n  role = \"worker\"\n  ssh { host = %q }\n}\n\n", w, ips[w])
	}
	fmt.Fprintf(&b, "registry {\n  node = %q\n}\n", managers[0])
	path := filepath.Join(t.TempDir(), name+".hcl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClusterUp: five adopted hosts, 3 managers and 2 workers, from one file.
//
// Not parallel: it compares the work of a first and a no-op run, which the
// other tests' load would blur.
func TestClusterUp(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	managers, workers := []string{"m1", "m2", "m3"}, []string{"w1", "w2"}
	all := append(append([]string{}, managers...), workers...)
	ips := map[string]string{}
	for _, n := range all {
		ips[n] = labHost(t, "e2e-cl-"+n, hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-cl"})
	}
	file := adoptedClusterFile(t, "e2e", priv, archive, managers, workers, ips)

	// A run killed in the middle (while provisioning) ...
	killed := killMidway(t, s, file, "docker-tls")
	t.Logf("the first run was killed after: %s", killed)
	// ... is completed by the next.
	first := clusterUpJSON(t, s, file)
	if !first.Result.Changed {
		t.Errorf("the run after a killed one had nothing to do: the kill came too late to test anything")
	}
	checkJoinOrder(t, first, managers, workers)
	r := s.cluster("up", file)
	if r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	if !strings.Contains(r.stdout, "machine env m1)\"") || !strings.Contains(r.stdout, "Registry: m1:5000") {
		t.Errorf("the summary should say what to type next and where the registry is:\n%s", r.stdout)
	}

	nodes := s.sshOut("m1", "docker", "node", "ls", "--format", "'{{.Hostname}} {{.Status}} {{.ManagerStatus}}'")
	lines := strings.Split(nodes, "\n")
	mgrs := 0
	for _, l := range lines {
		if !strings.Contains(l, " Ready") {
			t.Errorf("not Ready: %q", l)
		}
		if strings.HasSuffix(l, "Leader") || strings.HasSuffix(l, "Reachable") {
			mgrs++
		}
	}
	if len(lines) != 5 || mgrs != 3 {
		t.Fatalf("want 5 Ready nodes with 3 managers:\n%s", nodes)
	}
	if got := s.sshOut("m1", "docker", "node", "inspect", "m2", "--format", "'{{index .Spec.Labels \"zone\"}}'"); got != "a" {
		t.Errorf("m2 label zone=%q", got)
	}
	// Every node resolves and logs in to every other, as the docker user,
	// without a password and with known host keys.
	loop := "for o in " + strings.Join(all, " ") + "; do getent hosts $o >/dev/null || echo noname-$o; ssh -o BatchMode=yes $o hostname; done"
	for _, n := range all {
		got := strings.Fields(s.sshOut(n, loop))
		if strings.Join(got, " ") != strings.Join(all, " ") {
			t.Errorf("%s: peers answered %v, want %v", n, got, all)
		}
		if got := s.sshOut(n, "curl", "-fsS", "http://m1:5000/v2/"); got != "{}" {
			t.Errorf("%s: registry answered %q", n, got)
		}
	}

	// Again: nothing changes, fast.
	ids := s.sshOut("m1", "docker", "node", "ls", "-q")
	pids := map[string]string{}
	for _, n := range all {
		pids[n] = s.sshOut(n, "sudo", "systemctl", "show", "-p", "MainPID", "--value", "docker")
	}
	again := clusterUpJSON(t, s, file)
	if again.Result.Changed {
		t.Errorf("a second cluster up changed something")
	}
	t.Logf("converging run: %s, %d SSH sessions; no-op run: %s, %d sessions", first.Result.Elapsed, first.Result.Sessions, again.Result.Elapsed, again.Result.Sessions)
	if again.Result.Sessions*3 > first.Result.Sessions {
		t.Errorf("the no-op run opened %d SSH sessions, the converging one %d: want a small fraction", again.Result.Sessions, first.Result.Sessions)
	}
	if again.Result.Elapsed*3 > first.Result.Elapsed {
		t.Errorf("the no-op run took %s, the converging one %s: want a small fraction", again.Result.Elapsed, first.Result.Elapsed)
	}
	if got := s.sshOut("m1", "docker", "node", "ls", "-q"); got != ids {
		t.Errorf("node IDs changed")
	}
	for _, n := range all {
		if got := s.sshOut(n, "sudo", "systemctl", "show", "-p", "MainPID", "--value", "docker"); got != pids[n] {
			t.Errorf("%s: dockerd restarted by a no-op run", n)
		}
	}
	// The no-op run kept each host's daemon (boot, pid, start, version) in
	// its machine's config; the next run's probe takes the version from it
	// instead of asking the daemon, and says the same.
	for _, n := range all {
		var cfg struct{ Daemon *struct{ PID int } }
		data, err := os.ReadFile(filepath.Join(s.storage, "machines", n, "config.json"))
		if err != nil || json.Unmarshal(data, &cfg) != nil || cfg.Daemon == nil || strconv.Itoa(cfg.Daemon.PID) != pids[n] {
			t.Errorf("%s: config.json keeps the daemon %+v (%v); want dockerd's pid %s", n, cfg.Daemon, err, pids[n])
		}
	}
	if third := clusterUpJSON(t, s, file); third.Result.Changed {
		t.Errorf("a third cluster up changed something")
	}
	for _, n := range all {
		log, err := os.ReadFile(filepath.Join(s.storage, "machines", n, "provision.log"))
		if err != nil || !strings.Contains(string(log), " ]; then shoal_ping=") || !strings.Contains(string(log), `{"Version":"`+s.sshOut(n, "docker", "version", "--format", "{{.Server.Version}}")+`"}`) {
			t.Errorf("%s: the third run's probe did not take the daemon's version from the machine's config (%v)", n, err)
		}
	}
	plan := s.cluster("plan", file)
	if plan.code != 0 || !strings.Contains(plan.stdout, "0 of 5 machines would change") {
		t.Errorf("plan after convergence: %s", plan)
	}

	// Machines are ordinary machines.
	if got := strings.Fields(s.mustMachine("ls", "-q")); strings.Join(got, " ") != "m1 m2 m3 w1 w2" {
		t.Errorf("machine ls -q: %v", got)
	}
	var st struct {
		Cluster string
		Nodes   []struct {
			Name, Role, Swarm string
			Reachable         bool
		}
	}
	r = s.cluster("status", "--output", "json", file)
	mustJSON(t, r.stdout, &st)
	if len(st.Nodes) != 5 {
		t.Errorf("status: %d nodes", len(st.Nodes))
	}
	for _, n := range st.Nodes {
		if !n.Reachable || n.Swarm != "active" {
			t.Errorf("status of %s: %+v", n.Name, n)
		}
	}

	r = s.cluster("down", "--purge", file)
	if r.code != 0 {
		t.Fatalf("cluster down: %s", r)
	}
	for _, n := range all {
		c := "e2e-cl-" + n
		// --purge undid what provisioning can undo; Docker stays.
		for _, gone := range []string{"/etc/systemd/system/docker.service.d/shoal.conf", "/etc/docker/shoal", "/etc/docker/daemon.json"} {
			if r := dockerExec(t, c, "test", "-e", gone); r.code == 0 {
				t.Errorf("%s: %s is still there after down --purge", n, gone)
			}
		}
		if r := dockerExec(t, c, "grep", "-q", "BEGIN shoal", "/etc/hosts"); r.code == 0 {
			t.Errorf("%s: the /etc/hosts block is still there after down --purge", n)
		}
		if got := strings.TrimSpace(dockerExec(t, c, "docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout); got != "inactive" {
			t.Errorf("%s still in a swarm after down: %q", n, got)
		}
		if got := strings.TrimSpace(dockerExec(t, c, "systemctl", "is-active", "docker").stdout); got != "active" {
			t.Errorf("down harmed adopted host %s: docker %q", n, got)
		}
	}
	if got := strings.TrimSpace(s.mustMachine("ls", "-q")); got != "" {
		t.Errorf("machines left after down: %q", got)
	}
}

// killMidway starts `cluster up` and kills it (SIGKILL) when its progress
// first mentions marker; it returns the last line seen.
func killMidway(t *testing.T, s *shoal, file, marker string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "up", file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	last := ""
	for sc.Scan() {
		last = sc.Text()
		if strings.Contains(last, marker) {
			cmd.Process.Kill()
			break
		}
	}
	cmd.Wait()
	if !strings.Contains(last, marker) {
		t.Fatalf("cluster up ended before %q: %s", marker, last)
	}
	return last
}

// TestClusterInvalidFile: diagnostics name FILE:LINE and nothing is made.
func TestClusterInvalidFile(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	file := filepath.Join(t.TempDir(), "bad.hcl")
	os.WriteFile(file, []byte(`cluster "bad" {}

machine "a" {
  role = "manager"
}

machine "b" {
  role = "boss"
}

registry {
  node = "nowhere"
}
`), 0o644)
	for _, verb := range []string{"validate", "plan", "up"} {
		r := s.cluster(verb, file)
		if r.code != 2 {
			t.Errorf("cluster %s of an invalid file: exit %d, want 2\n%s", verb, r.code, r)
		}
		if !strings.Contains(r.stderr, file+":8,") || !strings.Contains(r.stderr, "boss") || !strings.Contains(r.stderr, "nowhere") {
			t.Errorf("cluster %s: diagnostics should name %s:8 and both errors:\n%s", verb, file, r.stderr)
		}
	}
	if got := strings.TrimSpace(s.mustMachine("ls", "-q")); got != "" {
		t.Errorf("an invalid file created machines: %q", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.storage, "clusters")); len(entries) != 0 {
		t.Errorf("an invalid file left cluster state")
	}
	if r := run(t, time.Minute, "docker", "ps", "-aq", "--filter", "name=shoal-a"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("an invalid file made a container")
	}
}

// checkJoinOrder checks the order rules of a run that started the swarm
// on managers[0], the registry's node: the other managers join one at a
// time; the workers join once every manager has; the registry is made
// before the managers join, unless they waited for it as long as the
// pipeline lets them (1.5 s after the swarm's start: the node's images
// took longer).
func checkJoinOrder(t *testing.T, u upResult, managers, workers []string) {
	t.Helper()
	leader := managers[0]
	initAt, ok := u.at(leader, "swarm-init", "changed")
	if !ok {
		t.Errorf("%s did not start the swarm in this run: no order to check", leader)
		return
	}
	regAt, regMade := u.at(leader, "registry", "changed")
	if regMade {
		t.Logf("the registry was made %v after the swarm started", regAt.Sub(initAt))
	}
	var lastManager time.Time
	for i, m := range managers[1:] {
		start, ok1 := u.at(m, "swarm-join", "start")
		done, ok2 := u.at(m, "swarm-join", "changed")
		if !ok1 || !ok2 {
			t.Errorf("%s: no early join in the events", m)
			continue
		}
		if regMade && start.Before(regAt) && start.Sub(initAt) < 1500*time.Millisecond {
			t.Errorf("%s began to join %v after the swarm started, before the registry was made (%v after): it should have waited for it", m, start.Sub(initAt), regAt.Sub(initAt))
		}
		// Two joins overlap when each began before the other ended,
		// whichever came first.
		for _, o := range managers[1+i+1:] {
			oStart, ok1 := u.at(o, "swarm-join", "start")
			oDone, ok2 := u.at(o, "swarm-join", "changed")
			if ok1 && ok2 && oStart.Before(done) && start.Before(oDone) {
				t.Errorf("%s and %s joined at the same time: managers join one at a time", m, o)
			}
		}
		if done.After(lastManager) {
			lastManager = done
		}
	}
	for _, w := range workers {
		if start, ok := u.at(w, "swarm-join", "start"); ok && start.Before(lastManager) {
			t.Errorf("%s began to join before every manager had joined", w)
		}
	}
}
