package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

type checkFinding struct {
	Kind, Node, Peer, Check, Cause, Fix string
}

type checkOut struct {
	Check struct {
		Nodes []string
		Cells []struct {
			From, To, Small, Big string
		}
		Findings []checkFinding
		OK       bool
	}
}

// runCheck runs `cluster check --output json` and returns its report.
func runCheck(t *testing.T, s *shoal, file string, wantCode int) checkOut {
	t.Helper()
	start := time.Now()
	r := run(t, 5*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "json", "check", file)
	t.Logf("cluster check -> exit %d in %s", r.code, time.Since(start).Round(100*time.Millisecond))
	if r.code != wantCode {
		t.Fatalf("cluster check: want exit %d: %s", wantCode, r)
	}
	var out checkOut
	mustJSON(t, r.stdout, &out)
	for _, f := range out.Check.Findings {
		t.Logf("  %s %s/%s %s: %s", f.Kind, f.Node, f.Peer, f.Check, f.Cause)
	}
	return out
}

// verdictKey is a report's findings as kind/node/check, sorted.
func verdictKey(o checkOut) string {
	var ks []string
	for _, f := range o.Check.Findings {
		ks = append(ks, f.Kind+"/"+f.Node+"/"+f.Peer+"/"+f.Check)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

// onlyFault asserts the faults are exactly one: on node, of check.
func onlyFault(t *testing.T, o checkOut, node, check string) {
	t.Helper()
	var faults []checkFinding
	for _, f := range o.Check.Findings {
		if f.Kind == "fault" {
			faults = append(faults, f)
		}
	}
	if len(faults) != 1 || faults[0].Node != node || faults[0].Check != check || faults[0].Peer != "" {
		t.Errorf("want exactly one fault, %s on %s; got %+v", check, node, faults)
	}
}

// cellsOf asserts that every cell touching node fails by bad and every
// other cell is fine: no healthy pair is blamed.
func cellsOf(t *testing.T, o checkOut, node string, bad func(small, big string) bool) {
	t.Helper()
	for _, c := range o.Check.Cells {
		touches := c.From == node || c.To == node
		if touches != bad(c.Small, c.Big) || (!touches && (c.Small != "ok" || c.Big != "ok")) {
			t.Errorf("cell %s -> %s: small %s, full-size %s (fault on %s)", c.From, c.To, c.Small, c.Big, node)
		}
	}
}

func leftovers(t *testing.T, host string) string {
	t.Helper()
	r := dockerExec(t, host, "sh", "-c", "docker service ls -q --filter label=io.shoal.check; docker network ls -q --filter label=io.shoal.check")
	return strings.TrimSpace(r.stdout)
}

// TestClusterCheckDataPlane: the data-plane check on real lab hosts (real
// dockerd, swarm and kernel): healthy with the kernel's missing IPVS as a
// host limit, 4789/udp dropped on one host, a small link MTU on one host,
// back to healthy, a check killed midway, and a no-op up that skips it.
func TestClusterCheckDataPlane(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	managers, workers := []string{"m1"}, []string{"w1", "w2"}
	ips := map[string]string{}
	for _, n := range append(append([]string{}, managers...), workers...) {
		ips[n] = labHost(t, "e2e-dp-"+n, hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-dp"})
	}
	file := adoptedClusterFile(t, "dp", priv, archive, managers, workers, ips)

	up := s.cluster("up", file)
	if up.code != 0 {
		t.Fatalf("cluster up: %s", up)
	}
	t.Logf("the first up's summary:\n%s", up.stdout)
	if !strings.Contains(up.stdout, "LIMIT: this kernel has no IP_VS") || !strings.Contains(up.stdout, "Data plane: works between all 3 nodes (1 limit of these hosts)") {
		t.Errorf("the first up should end with the check's verdict and the IPVS limit:\n%s", up.stdout)
	}
	healthy := runCheck(t, s, file, 0)
	if !healthy.Check.OK || len(healthy.Check.Cells) != 6 {
		t.Errorf("a healthy swarm: want OK with 6 cells: %+v", healthy.Check)
	}
	if !strings.Contains(verdictKey(healthy), "limit///ipvs") {
		t.Errorf("want the IPVS limit: %s", verdictKey(healthy))
	}

	// 4789/udp dropped inside w2: w2 and that port, no healthy pair.
	dockerExec(t, "e2e-dp-w2", "iptables", "-I", "INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP")
	dropped := runCheck(t, s, file, 1)
	onlyFault(t, dropped, "w2", "4789/udp")
	cellsOf(t, dropped, "w2", func(small, _ string) bool { return small == "fail" })
	// A cluster up that changes the swarm (a label) meets the fault: it
	// fails with the report.
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(text), "role = \"worker\"", "role = \"worker\"\n  labels = { dp = \"x\" }", 1)
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := s.cluster("up", file); r.code != 1 || !strings.Contains(r.stdout, "FAULT: 4789/udp (VXLAN) is dropped on w2") || !strings.Contains(r.stderr, "its data plane has a fault") {
		t.Errorf("cluster up with 4789/udp dropped on w2: want exit 1 and the fault: %s", r)
	}
	dockerExec(t, "e2e-dp-w2", "iptables", "-D", "INPUT", "-p", "udp", "--dport", "4789", "-j", "DROP")

	// w1's link MTU below what VXLAN needs: MTU and w1.
	if r := dockerExec(t, "e2e-dp-w1", "ip", "link", "set", "eth0", "mtu", "1300"); r.code != 0 {
		t.Fatalf("lowering w1's MTU: %s", r)
	}
	small := runCheck(t, s, file, 1)
	onlyFault(t, small, "w1", "mtu")
	cellsOf(t, small, "w1", func(s, b string) bool { return s == "ok" && b == "fail" })
	dockerExec(t, "e2e-dp-w1", "ip", "link", "set", "eth0", "mtu", "1500")

	if again := runCheck(t, s, file, 0); verdictKey(again) != verdictKey(healthy) {
		t.Errorf("after the faults are gone: %s, first: %s", verdictKey(again), verdictKey(healthy))
	}

	// A check killed midway leaves at most its labelled service and
	// network; the next run removes them.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "check", file)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	seen := ""
	for deadline := time.Now().Add(60 * time.Second); seen == "" && time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		seen = leftovers(t, "e2e-dp-m1")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if seen == "" {
		t.Fatalf("the killed check never made its probe")
	}
	if left := leftovers(t, "e2e-dp-m1"); left == "" {
		t.Logf("the killed check left nothing")
	}
	// The next run (a no-op cluster up) removes what it left.
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up after a killed check: %s", r)
	}
	if left := leftovers(t, "e2e-dp-m1"); left != "" {
		t.Errorf("after the next cluster up, left: %s", left)
	}

	// A no-op up does not pay for the check.
	r := run(t, 5*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "json", "up", file)
	if r.code != 0 {
		t.Fatalf("no-op up: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var res struct {
		Result struct {
			Changed bool
			Elapsed time.Duration
			Stages  map[string]time.Duration
		}
		Check json.RawMessage
	}
	mustJSON(t, lines[len(lines)-1], &res)
	t.Logf("no-op up: %s", res.Result.Elapsed)
	if res.Result.Changed || string(res.Check) != "null" || res.Result.Elapsed > 3*time.Second {
		t.Errorf("a no-op up: changed=%v check=%s elapsed=%s; want no change, no check, about a second", res.Result.Changed, res.Check, res.Result.Elapsed)
	}

	// 7946/udp dropped inside w1 (gossip falls back to TCP, so nothing
	// but the gossip's own complaint shows it): 7946/udp and w1. Last: a
	// dropped port's complaints stay in the journal's window a while.
	dockerExec(t, "e2e-dp-w1", "iptables", "-I", "INPUT", "-p", "udp", "--dport", "7946", "-j", "DROP")
	// Until the gossip has complained: w1 of both its peers (their answers
	// to its probes are dropped), m1 of w1.
	complaints := func(host string) string {
		return strings.TrimSpace(dockerExec(t, host, "sh", "-c", "journalctl -u docker --no-pager --since -30s | sed -n 's/.*connect to \\([0-9a-f]*\\) .*misconfigured.*/\\1/p' | sort -u | wc -l").stdout)
	}
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		if complaints("e2e-dp-w1") == "2" && complaints("e2e-dp-m1") != "0" {
			break
		}
	}
	udp := runCheck(t, s, file, 1)
	onlyFault(t, udp, "w1", "7946/udp")
}
