package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
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
}

func clusterUpJSON(b testing.TB, s *shoal, file string) upResult {
	b.Helper()
	r := run(b, 20*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "json", "up", file)
	if r.code != 0 {
		b.Fatalf("cluster up: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var res upResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		b.Fatalf("the last line of --output json is not the result: %v\n%s", err, lines[len(lines)-1])
	}
	return res
}

// BenchmarkClusterUp measures `cluster up` on 3 and 10 adopted lab hosts
// that already run Docker: the first run and a no-op re-run, time per stage
// and SSH sessions opened. `make bench` prints the figures.
func BenchmarkClusterUp(b *testing.B) {
	requireE2E(b)
	archive := labArchive(b)
	for _, n := range []int{3, 10} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s := newShoal(b)
				priv, pub := userKey(b)
				ips := map[string]string{}
				var managers, workers []string
				for h := 1; h <= n; h++ {
					name := fmt.Sprintf("n%d", h)
					ips[name] = labHost(b, fmt.Sprintf("bench-%d-%s", n, name), hostOpts{user: "tester", pubkey: pub, network: fmt.Sprintf("shoal-lab-bench%d", n)})
					if h <= 3 {
						managers = append(managers, name)
					} else {
						workers = append(workers, name)
					}
				}
				file := adoptedClusterFile(b, fmt.Sprintf("bench%d", n), priv, archive, managers, workers, ips)
				b.ResetTimer()
				first := clusterUpJSON(b, s, file)
				again := clusterUpJSON(b, s, file)
				b.StopTimer()
				if again.Result.Changed {
					b.Errorf("the re-run changed something")
				}
				b.ReportMetric(first.Result.Elapsed.Seconds(), "first-s")
				b.ReportMetric(again.Result.Elapsed.Seconds(), "noop-s")
				for _, st := range []string{"create", "provision", "swarm"} {
					b.ReportMetric(first.Result.Stages[st].Seconds(), "first-"+st+"-s")
					b.ReportMetric(again.Result.Stages[st].Seconds(), "noop-"+st+"-s")
				}
				b.ReportMetric(float64(first.Result.Sessions), "first-sessions")
				b.ReportMetric(float64(again.Result.Sessions), "noop-sessions")
				b.Logf("%d hosts: first %s %v sessions=%d; no-op %s %v sessions=%d", n,
					first.Result.Elapsed.Round(time.Millisecond), first.Result.Stages, first.Result.Sessions,
					again.Result.Elapsed.Round(time.Millisecond), again.Result.Stages, again.Result.Sessions)
			}
		})
	}
}
