package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	// Wall is the process's time from start to exit, measured around it.
	Wall time.Duration `json:"-"`
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

// clusterUpJSON runs `cluster [global...] up file` with JSON output.
func clusterUpJSON(b testing.TB, s *shoal, file string, global ...string) upResult {
	b.Helper()
	args := append([]string{"--storage-path", s.storage, "--output", "json"}, global...)
	start := time.Now()
	r := run(b, 20*time.Minute, bin("cluster"), append(args, "up", file)...)
	wall := time.Since(start)
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
	res := upResult{Wall: wall}
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
func benchSizes(b *testing.B) []int { return envSizes(b, "SHOAL_BENCH_SIZES", []int{3, 10, 30}) }

// floorSample is one run of the floor on fresh hosts.
type floorSample struct {
	// wall is from process start to exit, measured around the process;
	// own is what floor.sh printed (from its first command to its last).
	wall, own time.Duration
	// load is the machine's load average just before the run.
	load float64
}

// shoalSample is one `cluster up` on fresh hosts, then its no-op re-run
// three ways, each timed around the process (upResult.Wall).
type shoalSample struct {
	first upResult
	// noop comes right after the first run; settled once the machine is
	// quiet (after waiting quiet); cold after that with --ssh-persist 0
	// (no kept connection: every host is logged in to afresh).
	noop, settled, cold upResult
	quiet               time.Duration
	load                float64
	// The hosts' CPU (all their processes: sshd, the probe, dockerd and
	// the swarm's own work) during each no-op run, and in a second of
	// nothing after the settled one: what of a no-op's time is not shoal's.
	noopCPU, settledCPU, coldCPU, idleCPU time.Duration
}

// benchRow is one size's runs for one cluster file: the floor's and
// shoal's, which ran alternately.
type benchRow struct {
	n      int
	every  bool
	floors []floorSample
	shoals []shoalSample
}

func (r benchRow) archives() string {
	if r.every {
		return "every node"
	}
	return "registry node"
}

// spread is a sample's median, least and greatest value.
type spread struct{ med, min, max float64 }

// spreadOf is xs's spread (the median of an even count is the mean of
// the middle two); zero for no values. xs is left as it is.
func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return spread{med: med, min: s[0], max: s[n-1]}
}

// secs is "median s (min-max)".
func (s spread) secs() string {
	return fmt.Sprintf("%.2f s (%.2f-%.2f)", s.med, s.min, s.max)
}

// spreadBy is the spread of f over xs.
func spreadBy[T any](xs []T, f func(T) float64) spread {
	return spreadOf(valuesOf(xs, f))
}

// valuesOf is f of each of xs.
func valuesOf[T any](xs []T, f func(T) float64) []float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	return v
}

// loadAvg is the machine's load average over the last minute, 0 where
// /proc/loadavg cannot be read.
func loadAvg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// benchFloor runs the floor once on n fresh hosts (removed after).
func benchFloor(b *testing.B, n, managers int, archive, script string) floorSample {
	b.Helper()
	_, pub := userKey(b)
	names, _, rm := benchHosts(b, fmt.Sprintf("bench-f%d", n), fmt.Sprintf("shoal-lab-bench%df", n), n, hostOpts{user: "tester", pubkey: pub})
	defer rm()
	// Both sides start on a quiet machine: the hosts just booted (their
	// systemd, sshd and dockerd) and the last hosts removed.
	settle(60 * time.Second)
	load := loadAvg()
	start := time.Now()
	r := run(b, 20*time.Minute, "bash", append([]string{script, strconv.Itoa(managers), archive}, names...)...)
	wall := time.Since(start)
	if r.code != 0 {
		b.Fatalf("floor: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	own, err := strconv.ParseFloat(lines[len(lines)-1], 64)
	if err != nil {
		b.Fatalf("floor: the last line is not the seconds: %s", r)
	}
	return floorSample{wall: wall, own: time.Duration(own * float64(time.Second)), load: load}
}

// benchShoal runs cluster up once on n fresh hosts (removed after), then
// its no-op at once, settled and cold.
func benchShoal(b *testing.B, n, managers int, archive string, every bool) shoalSample {
	b.Helper()
	s := newShoal(b)
	priv, pub := userKey(b)
	names, ips, rm := benchHosts(b, fmt.Sprintf("bench-%d", n), fmt.Sprintf("shoal-lab-bench%d", n), n, hostOpts{user: "tester", pubkey: pub})
	defer rm()
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
	var x shoalSample
	x.load = loadAvg()
	b.StartTimer()
	x.first = clusterUpJSON(b, s, file)
	b.StopTimer()
	cpu0 := hostsCPU(b, names)
	x.noop = clusterUpJSON(b, s, file)
	cpu1 := hostsCPU(b, names)
	// The no-op above came at once: the new swarm's nodes still set up
	// their networks then (with 30 on 2 cores, for seconds). Once the
	// machine is quiet, again: the no-op as a user re-running later
	// meets it; then with no kept SSH connection.
	x.quiet = settle(90 * time.Second)
	cpu2 := hostsCPU(b, names)
	x.settled = clusterUpJSON(b, s, file)
	cpu3 := hostsCPU(b, names)
	time.Sleep(time.Second)
	cpu4 := hostsCPU(b, names)
	x.cold = clusterUpJSON(b, s, file, "--ssh-persist", "0")
	cpu5 := hostsCPU(b, names)
	x.noopCPU, x.settledCPU, x.idleCPU, x.coldCPU = cpu1-cpu0, cpu3-cpu2, cpu4-cpu3, cpu5-cpu4
	if x.noop.Result.Changed || x.settled.Result.Changed || x.cold.Result.Changed {
		b.Errorf("a re-run changed something")
	}
	return x
}

// benchRound is one round at size n: the floor, then shoal with each
// cluster file variant, each on its own fresh hosts.
func benchRound(b *testing.B, rows []benchRow, managers int, archive, script string) {
	b.Helper()
	f := benchFloor(b, rows[0].n, managers, archive, script)
	for i := range rows {
		rows[i].floors = append(rows[i].floors, f)
		rows[i].shoals = append(rows[i].shoals, benchShoal(b, rows[i].n, managers, archive, rows[i].every))
	}
}

// benchRuns is how many times each side runs at each size:
// SHOAL_BENCH_RUNS, or 5.
func benchRuns(b *testing.B) int { return envInt(b, "SHOAL_BENCH_RUNS", 5) }

// wallOf is the wall time, around the process, of the run pick takes.
func wallOf(pick func(shoalSample) upResult) func(shoalSample) float64 {
	return func(x shoalSample) float64 { return pick(x).Wall.Seconds() }
}

// The runs of a shoalSample, and a floor run's time: what the figures
// are taken of.
func firstOf(x shoalSample) upResult   { return x.first }
func noopOf(x shoalSample) upResult    { return x.noop }
func settledOf(x shoalSample) upResult { return x.settled }
func coldOf(x shoalSample) upResult    { return x.cold }
func floorWall(f floorSample) float64  { return f.wall.Seconds() }

// report gives the benchmark's metrics: the medians.
func (r benchRow) report(b *testing.B) {
	unit := "-regnode"
	if r.every {
		unit = "-every"
	}
	fl, first := spreadBy(r.floors, floorWall), spreadBy(r.shoals, wallOf(firstOf))
	b.ReportMetric(fl.med, "floor-s")
	b.ReportMetric(first.med, "first"+unit+"-s")
	b.ReportMetric(first.med/fl.med, "first/floor"+unit)
	b.ReportMetric(spreadBy(r.shoals, wallOf(noopOf)).med, "noop"+unit+"-s")
	b.ReportMetric(spreadBy(r.shoals, wallOf(settledOf)).med, "noop-settled"+unit+"-s")
	b.ReportMetric(spreadBy(r.shoals, wallOf(coldOf)).med, "noop-cold"+unit+"-s")
	b.ReportMetric(spreadBy(r.shoals, func(x shoalSample) float64 { return float64(x.first.Result.Sessions) }).med/float64(r.n), "first-sessions/host"+unit)
	b.ReportMetric(spreadBy(r.shoals, func(x shoalSample) float64 { return float64(x.noop.Result.Sessions) }).med/float64(r.n), "noop-sessions/host"+unit)
}

// BenchmarkClusterUp measures, at each size, the floor (test/bench/
// floor.sh: daemon.json and a restart, init, joins, the registry, all
// through docker exec) and `cluster up` (its first run and its no-op
// re-run at once, settled and cold), alternately, SHOAL_BENCH_RUNS times
// each, every run on fresh hosts and timed from process start to exit.
// 1 manager at 3 hosts, 3 from 10 on; the registry on the first. The
// cluster file loads the archive on the registry's node only (the floor's
// work), and also on every node with SHOAL_BENCH_EVERY=1. `make bench`
// prints the table.
func BenchmarkClusterUp(b *testing.B) {
	requireE2E(b)
	archive := labArchive(b)
	script, _ := filepath.Abs("../bench/floor.sh")
	runs := benchRuns(b)
	variants := []bool{false}
	if os.Getenv("SHOAL_BENCH_EVERY") == "1" {
		variants = append(variants, true)
	}
	var all []benchRow
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			b.StopTimer()
			managers := 1
			if n >= 10 {
				managers = 3
			}
			rows := make([]benchRow, len(variants))
			for i, every := range variants {
				rows[i] = benchRow{n: n, every: every}
			}
			for i := 0; i < b.N*runs; i++ {
				benchRound(b, rows, managers, archive, script)
			}
			for _, r := range rows {
				r.report(b)
			}
			all = append(all, rows...)
		})
	}
	if len(all) > 0 {
		fmt.Print(benchTable(all) + benchNotes(all))
	}
}

// benchTable is the main table: per size, each side's median (min-max)
// over its runs, timed around the process.
func benchTable(rows []benchRow) string {
	var t strings.Builder
	t.WriteString("\n| N | image archive on | runs | floor | first run | first/floor (medians) | no-op at once | no-op settled | no-op cold | load avg median, max |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fl, first := spreadBy(r.floors, floorWall), spreadBy(r.shoals, wallOf(firstOf))
		load := spreadOf(append(
			valuesOf(r.floors, func(f floorSample) float64 { return f.load }),
			valuesOf(r.shoals, func(x shoalSample) float64 { return x.load })...))
		fmt.Fprintf(&t, "| %d | %s | %d | %s | %s | %.2fx | %s | %s | %s | %.1f, %.1f |\n", r.n, r.archives(), len(r.shoals),
			fl.secs(), first.secs(), first.med/fl.med,
			spreadBy(r.shoals, wallOf(noopOf)).secs(), spreadBy(r.shoals, wallOf(settledOf)).secs(),
			spreadBy(r.shoals, wallOf(coldOf)).secs(), load.med, load.max)
	}
	return t.String()
}

// benchNotes are the figures beside the table, medians over the runs:
// each side's own account of its time, SSH sessions, the settle waits,
// the hosts' CPU, and each first run's stages.
func benchNotes(rows []benchRow) string {
	var t strings.Builder
	med := func(x spread) float64 { return x.med }
	t.WriteString("\n(Times from process start to exit, measured by the harness; load average: /proc/loadavg's 1-minute figure before each floor and each first run.)\n")
	t.WriteString("\nMedians as each side counts itself (floor.sh's printed seconds, cluster up's Elapsed), sessions per host, the wait before the settled no-op:\n")
	for _, r := range rows {
		elapsed := func(pick func(shoalSample) upResult) float64 {
			return med(spreadBy(r.shoals, func(x shoalSample) float64 { return pick(x).Result.Elapsed.Seconds() }))
		}
		sessions := func(pick func(shoalSample) upResult) float64 {
			return med(spreadBy(r.shoals, func(x shoalSample) float64 { return float64(pick(x).Result.Sessions) })) / float64(r.n)
		}
		fmt.Fprintf(&t, "N=%d (%s): floor %.2f s; first %.2f s, no-op at once %.2f s, settled %.2f s, cold %.2f s; sessions/host first %.1f, no-op %.1f, cold %.1f; settle %.0f s\n",
			r.n, r.archives(), med(spreadBy(r.floors, func(f floorSample) float64 { return f.own.Seconds() })),
			elapsed(firstOf), elapsed(noopOf), elapsed(settledOf), elapsed(coldOf),
			sessions(firstOf), sessions(noopOf), sessions(coldOf),
			med(spreadBy(r.shoals, func(x shoalSample) float64 { return x.quiet.Seconds() })))
	}
	t.WriteString("\nThe hosts' CPU (every process of theirs, medians) during the no-op at once, settled and cold, and in 1 s of nothing after the settled one:\n")
	for _, r := range rows {
		cpu := func(f func(shoalSample) time.Duration) float64 {
			return med(spreadBy(r.shoals, func(x shoalSample) float64 { return f(x).Seconds() }))
		}
		fmt.Fprintf(&t, "N=%d (%s): at once %.1f s, settled %.1f s, cold %.1f s, idle %.2f s/s\n", r.n, r.archives(),
			cpu(func(x shoalSample) time.Duration { return x.noopCPU }), cpu(func(x shoalSample) time.Duration { return x.settledCPU }),
			cpu(func(x shoalSample) time.Duration { return x.coldCPU }), cpu(func(x shoalSample) time.Duration { return x.idleCPU }))
	}
	t.WriteString("\nStages of each first run (as cluster up reports them: when the last host finished each, from the run's start):\n")
	for _, r := range rows {
		for i, x := range r.shoals {
			fmt.Fprintf(&t, "N=%d (%s) run %d: %s\n", r.n, r.archives(), i+1, stageLine(x.first))
		}
	}
	return t.String()
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
