package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// upResult is the last line of `cluster up --output json`.
type upResult struct {
	Result struct {
		Changed  bool
		Stages   map[string]time.Duration
		Sessions int64 `json:"sshSessions"`
		Elapsed  time.Duration
	}
	// Events are the run's progress events, in order.
	Events []runEvent `json:"-"`
}

// runEvent is one progress event of `cluster up --output json`.
type runEvent struct {
	Time               time.Time
	Host, Step, Status string
}

// at is the time of host's first step event with status, and whether
// there is one.
func (u upResult) at(host, step, status string) (time.Time, bool) {
	for _, e := range u.Events {
		if e.Host == host && e.Step == step && e.Status == status {
			return e.Time, true
		}
	}
	return time.Time{}, false
}

func clusterUpJSON(b testing.TB, s *shoal, file string) upResult {
	b.Helper()
	r := run(b, 20*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "json", "up", file)
	if r.code != 0 {
		b.Fatalf("cluster up: %s", r)
	}
	if dir := os.Getenv("SHOAL_BENCH_EVENTS"); dir != "" {
		// Every event of the run, with its time: the timeline to study.
		f, err := os.CreateTemp(dir, filepath.Base(file)+"-*.jsonl")
		if err == nil {
			f.WriteString(r.stdout)
			f.Close()
		}
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var res upResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		b.Fatalf("the last line of --output json is not the result: %v\n%s", err, lines[len(lines)-1])
	}
	for _, l := range lines[:len(lines)-1] {
		var e runEvent
		if json.Unmarshal([]byte(l), &e) == nil && e.Step != "" {
			res.Events = append(res.Events, e)
		}
	}
	return res
}

// benchHosts starts n lab hosts named PREFIX-n1.. on network net, at most
// 6 at once, and returns their names and addresses; rm removes them (also
// at the end of the benchmark).
func benchHosts(b *testing.B, prefix, net string, n int, o hostOpts) (names []string, ips map[string]string, rm func()) {
	b.Helper()
	names = make([]string, n)
	addrs := make([]string, n)
	errs := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-n%d", prefix, i+1)
	}
	rm = func() {
		args := append([]string{labScript(), "host-rm"}, names...)
		exec.Command("bash", args...).Run()
		exec.Command("docker", "network", "rm", net).Run()
	}
	b.Cleanup(rm)
	sem := make(chan struct{}, 6)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", labScript(), "host-up", name, "--network", net, "--user", o.user, "--pubkey", o.pubkey)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Sprintf("%s: %v\n%s", name, err, errb.String())
				return
			}
			addrs[i] = strings.TrimSpace(out.String())
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			b.Fatalf("lab host %s", e)
		}
	}
	ips = map[string]string{}
	for i, name := range names {
		ips[name] = addrs[i]
	}
	return names, ips, rm
}

// benchRow is one size's figures for one cluster file.
type benchRow struct {
	n           int
	archives    string
	floor       time.Duration
	first, noop upResult
	// settled is the no-op run once the machine was quiet (after quiet).
	settled         upResult
	quiet           time.Duration
	sessionsPerHost float64
	// The hosts' CPU (all their processes: sshd, the probe, dockerd and
	// the swarm's own work) during each no-op run, and in a second of
	// nothing after the settled one: what of a no-op's time is not shoal's.
	noopCPU, settledCPU, idleCPU time.Duration
}

// benchFile is the cluster file of the bench: the lab archive on every
// node (every = true, as a cluster that ships its images would), or only
// on the registry's node (the floor's work: the registry needs its image).
func benchFile(b *testing.B, name, key, archive string, managers, workers []string, ips map[string]string, every bool) string {
	if every {
		return adoptedClusterFile(b, name, key, archive, managers, workers, ips)
	}
	var f strings.Builder
	fmt.Fprintf(&f, "cluster %q {}\n\ndefaults {\n  driver = \"ssh\"\n  ssh {\n    user = \"tester\"\n    key  = %q\n  }\n}\n\n", name, key)
	for i, m := range managers {
		extra := ""
		if i == 0 {
			extra = fmt.Sprintf("  image_archives = [%q]\n", archive)
		}
		fmt.Fprintf(&f, "machine %q {\n  role = \"manager\"\n  labels = { zone = \"a\" }\n%s  ssh { host = %q }\n}\n\n", m, extra, ips[m])
	}
	for _, w := range workers {
		fmt.Fprintf(&f, "machine %q {\n  role = \"worker\"\n  ssh { host = %q }\n}\n\n", w, ips[w])
	}
	fmt.Fprintf(&f, "registry {\n  node = %q\n}\n", managers[0])
	path := filepath.Join(b.TempDir(), name+".hcl")
	if err := os.WriteFile(path, []byte(f.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchSizes are the cluster sizes: SHOAL_BENCH_SIZES (say "3,10") or
// 3, 10 and 30.
func benchSizes(b *testing.B) []int {
	v := os.Getenv("SHOAL_BENCH_SIZES")
	if v == "" {
		return []int{3, 10, 30}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("SHOAL_BENCH_SIZES=%q: not a list of sizes", v)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkClusterUp measures, side by side at each size, the physical
// floor (test/bench/floor.sh on fresh hosts: daemon.json and a restart,
// init, joins, the registry, all through docker exec) and `cluster up` on
// other fresh hosts: its first run and its no-op re-run, time per stage
// and SSH sessions. 1 manager at 3 hosts, 3 from 10 on; the registry on
// the first. `make bench` prints the table.
func BenchmarkClusterUp(b *testing.B) {
	requireE2E(b)
	archive := labArchive(b)
	floorScript, _ := filepath.Abs("../bench/floor.sh")
	var rows []benchRow
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			managers := 1
			if n >= 10 {
				managers = 3
			}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				_, pub := userKey(b)
				// The floor, on its own fresh hosts, removed after.
				names, _, rm := benchHosts(b, fmt.Sprintf("bench-f%d", n), fmt.Sprintf("shoal-lab-bench%df", n), n, hostOpts{user: "tester", pubkey: pub})
				// Both start on a quiet machine: the hosts just booted (their
				// systemd, sshd and dockerd) and the last hosts removed.
				settle(60 * time.Second)
				r := run(b, 20*time.Minute, "bash", append([]string{floorScript, strconv.Itoa(managers), archive}, names...)...)
				if r.code != 0 {
					b.Fatalf("floor: %s", r)
				}
				lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
				secs, err := strconv.ParseFloat(lines[len(lines)-1], 64)
				if err != nil {
					b.Fatalf("floor: the last line is not the seconds: %s", r)
				}
				rm()

				// shoal, on fresh hosts: with the archive on the registry's
				// node only (the floor's work), then on every node.
				variants := []bool{false, true}
				if os.Getenv("SHOAL_BENCH_EVERY") == "0" {
					variants = variants[:1] // the registry node's archive only
				}
				for _, every := range variants {
					s := newShoal(b)
					priv, pub := userKey(b)
					names, ips, rm := benchHosts(b, fmt.Sprintf("bench-%d", n), fmt.Sprintf("shoal-lab-bench%d", n), n, hostOpts{user: "tester", pubkey: pub})
					byName := map[string]string{}
					var ms, ws []string
					for h, name := range names {
						short := fmt.Sprintf("n%d", h+1)
						byName[short] = ips[name]
						if h < managers {
							ms = append(ms, short)
						} else {
							ws = append(ws, short)
						}
					}
					file := benchFile(b, fmt.Sprintf("bench%d", n), priv, archive, ms, ws, byName, every)
					settle(60 * time.Second)
					b.StartTimer()
					first := clusterUpJSON(b, s, file)
					cpu0 := hostsCPU(b, names)
					again := clusterUpJSON(b, s, file)
					b.StopTimer()
					noopCPU := hostsCPU(b, names) - cpu0
					// The no-op run above came at once: the new swarm's nodes
					// still set up their networks then (with 30 on 2 cores,
					// for seconds). Once the machine is quiet, again: the
					// no-op as a user re-running later meets it.
					quiet := settle(90 * time.Second)
					cpu0 = hostsCPU(b, names)
					b.StartTimer()
					settled := clusterUpJSON(b, s, file)
					b.StopTimer()
					cpu1 := hostsCPU(b, names)
					time.Sleep(time.Second)
					idleCPU := hostsCPU(b, names) - cpu1
					rm()
					if again.Result.Changed || settled.Result.Changed {
						b.Errorf("a re-run changed something")
					}
					row := benchRow{n: n, archives: "registry node", floor: time.Duration(secs * float64(time.Second)), first: first, noop: again, settled: settled, quiet: quiet,
						sessionsPerHost: float64(again.Result.Sessions) / float64(n),
						noopCPU:         noopCPU, settledCPU: cpu1 - cpu0, idleCPU: idleCPU}
					unit := "-regnode"
					if every {
						row.archives, unit = "every node", "-every"
					}
					rows = append(rows, row)
					b.ReportMetric(first.Result.Elapsed.Seconds(), "first"+unit+"-s")
					b.ReportMetric(again.Result.Elapsed.Seconds(), "noop"+unit+"-s")
					b.ReportMetric(settled.Result.Elapsed.Seconds(), "noop-settled"+unit+"-s")
					b.ReportMetric(first.Result.Elapsed.Seconds()/secs, "first/floor"+unit)
					b.ReportMetric(float64(first.Result.Sessions)/float64(n), "first-sessions/host"+unit)
					b.ReportMetric(row.sessionsPerHost, "noop-sessions/host"+unit)
				}
				b.ReportMetric(secs, "floor-s")
			}
		})
	}
	if len(rows) == 0 {
		return
	}
	var t strings.Builder
	fmt.Fprintf(&t, "\n| N | image archive on | floor | first run | first/floor | no-op at once | no-op/first | no-op settled | settled/first | sessions/host first, no-op |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		f, o, q := r.first.Result, r.noop.Result, r.settled.Result
		fmt.Fprintf(&t, "| %d | %s | %.1f s | %.1f s | %.2fx | %.2f s | 1/%.1f | %.2f s | 1/%.1f | %.1f, %.1f |\n", r.n, r.archives, r.floor.Seconds(), f.Elapsed.Seconds(),
			f.Elapsed.Seconds()/r.floor.Seconds(), o.Elapsed.Seconds(), f.Elapsed.Seconds()/o.Elapsed.Seconds(),
			q.Elapsed.Seconds(), f.Elapsed.Seconds()/q.Elapsed.Seconds(),
			float64(f.Sessions)/float64(r.n), r.sessionsPerHost)
	}
	fmt.Fprintf(&t, "\n(\"settled\": after waiting for the machine to be quiet: ")
	for i, r := range rows {
		if i > 0 {
			t.WriteString(", ")
		}
		fmt.Fprintf(&t, "N=%d %s %.0fs", r.n, r.archives, r.quiet.Seconds())
	}
	t.WriteString(")\n")
	fmt.Fprintf(&t, "\nThe hosts' CPU (every process of theirs) during the no-op at once and the settled one, and in 1 s of nothing after:\n")
	for _, r := range rows {
		fmt.Fprintf(&t, "N=%d (%s): at once %.1f s, settled %.1f s, idle %.2f s/s\n", r.n, r.archives, r.noopCPU.Seconds(), r.settledCPU.Seconds(), r.idleCPU.Seconds())
	}
	fmt.Fprintf(&t, "\nStages (as cluster up reports them: the time each stage took):\n")
	for _, r := range rows {
		fmt.Fprintf(&t, "N=%d (%s) first: %s\nN=%d (%s) no-op: %s\n", r.n, r.archives, stageLine(r.first), r.n, r.archives, stageLine(r.noop))
	}
	fmt.Print(t.String())
}

func stageLine(u upResult) string {
	type st struct {
		name string
		d    time.Duration
	}
	var ss []st
	for k, v := range u.Result.Stages {
		ss = append(ss, st{k, v})
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].d < ss[j].d })
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%s %.2fs", s.name, s.d.Seconds()))
	}
	return strings.Join(parts, ", ")
}

// hostsCPU is the CPU time the lab containers have used so far, from
// their cgroups (v2 or v1).
func hostsCPU(b *testing.B, names []string) time.Duration {
	b.Helper()
	out, err := exec.Command("docker", append([]string{"inspect", "-f", "{{.Id}}"}, names...)...).Output()
	if err != nil {
		b.Fatalf("docker inspect: %v", err)
	}
	var total time.Duration
	for _, id := range strings.Fields(string(out)) {
		d, err := containerCPU(id)
		if err != nil {
			b.Fatalf("the CPU time of container %s: %v", id[:12], err)
		}
		total += d
	}
	return total
}

// containerCPU reads a container's CPU time where this machine's cgroup
// layout keeps it.
func containerCPU(id string) (time.Duration, error) {
	for _, p := range []string{"/sys/fs/cgroup/unified/docker/" + id + "/cpu.stat", "/sys/fs/cgroup/docker/" + id + "/cpu.stat",
		"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/cpu.stat"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				return time.Duration(us) * time.Microsecond, err
			}
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/cpuacct/docker/" + id + "/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/docker/" + id + "/cpuacct.usage"} {
		if data, err := os.ReadFile(p); err == nil {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			return time.Duration(ns), err
		}
	}
	return 0, fmt.Errorf("no cgroup CPU figure found")
}

// settle waits, at most bound, until the machine is quiet (less than a
// fifth of its CPU busy over 3 s), and says how long it waited. An idle
// 30-node lab swarm keeps about a tenth of it busy; at half busy, and once
// at a quarter over 2 s, one was still setting up its networks (0.57 s a
// second of the hosts' CPU, a third of what the no-op then used).
func settle(bound time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < bound && busy(3*time.Second) > 0.2 {
	}
	return time.Since(start)
}

// busy is the share of the machine's CPU time not idle over d
// (/proc/stat).
func busy(d time.Duration) float64 {
	read := func() (idle, total float64) {
		data, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0
		}
		f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
		for i, v := range f[1:] {
			x, _ := strconv.ParseFloat(v, 64)
			total += x
			if i == 3 || i == 4 { // idle, iowait
				idle += x
			}
		}
		return idle, total
	}
	i0, t0 := read()
	time.Sleep(d)
	i1, t1 := read()
	if t1 <= t0 {
		return 0
	}
	return 1 - (i1-i0)/(t1-t0)
}
