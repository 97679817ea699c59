package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkClusterCheck is issue 28's figure: `cluster check` of a made
// cluster of N adopted lab hosts (1 manager at 5 or fewer, else 3), and
// its floor (test/bench/checkfloor.sh: a global service on a fresh
// overlay network, running on every node, then removed), alternately,
// SHOAL_CHECK_RUNS times each (3 by default) at each size of
// SHOAL_CHECK_SIZES (5 and 30 by default), each once the machine is
// quiet, timed from process start to exit. The target is 20 s at 5 nodes
// and 60 s at 30. Each check must find the data plane working.
func BenchmarkClusterCheck(b *testing.B) {
	requireE2E(b)
	archive := labArchive(b)
	floor, _ := filepath.Abs("../bench/checkfloor.sh")
	runs := envInt(b, "SHOAL_CHECK_RUNS", 3)
	for _, n := range envSizes(b, "SHOAL_CHECK_SIZES", []int{5, 30}) {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := newShoal(b)
				priv, pub := userKey(b)
				names, ips, rm := benchHosts(b, fmt.Sprintf("bench-ck%d", n), fmt.Sprintf("shoal-lab-benchck%d", n), n, hostOpts{user: "tester", pubkey: pub})
				managers := 1
				if n > 5 {
					managers = 3
				}
				file := adoptedClusterFile(b, fmt.Sprintf("benchck%d", n), priv, archive, shortNames(1, managers), shortNames(managers+1, n), shortIPs(names, ips))
				if r := run(b, 20*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "up", "--skip-check", file); r.code != 0 {
					b.Fatalf("cluster up: %s", r)
				}
				var checks, floors, loads []float64
				b.StartTimer()
				for range runs {
					settle(90 * time.Second)
					loads = append(loads, loadAvg())
					start := time.Now()
					if r := run(b, 10*time.Minute, "bash", floor, names[0], strconv.Itoa(n)); r.code != 0 {
						b.Fatalf("checkfloor.sh at %d nodes: %s", n, r)
					}
					floors = append(floors, time.Since(start).Seconds())
					settle(90 * time.Second)
					loads = append(loads, loadAvg())
					start = time.Now()
					r := run(b, 10*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "check", fmt.Sprintf("benchck%d", n))
					checks = append(checks, time.Since(start).Seconds())
					if r.code != 0 {
						b.Fatalf("cluster check at %d nodes: %s", n, r)
					}
					fmt.Printf("at %d nodes: floor %.1f s, check %.1f s: %s\n", n, floors[len(floors)-1], checks[len(checks)-1], lastLine(r.stdout))
					for _, l := range strings.Split(r.stdout, "\n") {
						if strings.HasPrefix(l, "Probe run ") {
							fmt.Println("  " + l)
						}
					}
				}
				b.StopTimer()
				rm()
				reportCheck(b, n, runs, spreadOf(checks), spreadOf(floors), spreadOf(loads))
			}
		})
	}
}

func reportCheck(b *testing.B, n, runs int, check, floor, load spread) {
	b.ReportMetric(check.med, "check-median-s")
	b.ReportMetric(check.min, "check-min-s")
	b.ReportMetric(check.max, "check-max-s")
	b.ReportMetric(floor.med, "floor-median-s")
	fmt.Printf("at %d nodes, %d runs each: cluster check median %.1f s (%.1f to %.1f); its floor (checkfloor.sh) median %.1f s (%.1f to %.1f); check/floor %.2fx; load average before each run: median %.1f, max %.1f\n",
		n, runs, check.med, check.min, check.max, floor.med, floor.min, floor.max, check.med/floor.med, load.med, load.max)
}

// shortNames are n<from>..n<to>.
func shortNames(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("n%d", i))
	}
	return out
}

// shortIPs maps n1.. to the lab hosts' addresses, in order.
func shortIPs(names []string, ips map[string]string) map[string]string {
	out := map[string]string{}
	for i, name := range names {
		out[fmt.Sprintf("n%d", i+1)] = ips[name]
	}
	return out
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: not a count", name, v)
	}
	return n
}

func envSizes(b *testing.B, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: not a list of sizes", name, v)
		}
		out = append(out, n)
	}
	return out
}

// lastLine is the last non-empty line of out (the check's verdict).
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
