package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkClusterCheck is issue 28's figure: `cluster check` of a made
// cluster of N adopted lab hosts (1 manager at 5 or fewer, else 3), timed
// from process start to exit, SHOAL_CHECK_RUNS times (3 by default) at
// each size of SHOAL_CHECK_SIZES (5 and 30 by default); the target is 20 s
// at 5 nodes and 60 s at 30. Each check must find the data plane working.
func BenchmarkClusterCheck(b *testing.B) {
	requireE2E(b)
	archive := labArchive(b)
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
				settle(90 * time.Second)
				var took []time.Duration
				b.StartTimer()
				for range runs {
					start := time.Now()
					r := run(b, 5*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "check", fmt.Sprintf("benchck%d", n))
					took = append(took, time.Since(start))
					if r.code != 0 {
						b.Fatalf("cluster check at %d nodes: %s", n, r)
					}
				}
				b.StopTimer()
				rm()
				var secs []float64
				for _, d := range took {
					secs = append(secs, d.Seconds())
				}
				sp := spreadOf(secs)
				b.ReportMetric(sp.med, "check-median-s")
				b.ReportMetric(sp.min, "check-min-s")
				b.ReportMetric(sp.max, "check-max-s")
				fmt.Printf("cluster check at %d nodes, %d runs: median %.1f s (%.1f to %.1f), load average before: %.1f\n", n, runs, sp.med, sp.min, sp.max, loadAvg())
			}
		})
	}
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
