package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkStackDeploy is issue 29's figure: from `cluster up` start to the
// example stack (examples/app) converged, on 3 fresh adopted lab hosts (1
// manager, 2 workers), timed from process start to exit; then the same up
// again (nothing to change) and `cluster deploy` alone.
func BenchmarkStackDeploy(b *testing.B) {
	requireE2E(b)
	archive := labArchive(b)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := newShoal(b)
		priv, pub := userKey(b)
		names, ips, rm := benchHosts(b, "bench-st", "shoal-lab-benchst", 3, hostOpts{user: "tester", pubkey: pub})
		byName := map[string]string{"n1": ips[names[0]], "n2": ips[names[1]], "n3": ips[names[2]]}
		file := adoptedClusterFile(b, "benchst", priv, archive, []string{"n1"}, []string{"n2", "n3"}, byName)
		compose, err := filepath.Abs(filepath.Join("..", "..", "examples", "app", "docker-compose.yml"))
		if err != nil {
			b.Fatal(err)
		}
		text, _ := os.ReadFile(file)
		if err := os.WriteFile(file, append(text, []byte("\nstack \"demo\" {\n  compose = [\""+compose+"\"]\n}\n")...), 0o644); err != nil {
			b.Fatal(err)
		}
		settle(60 * time.Second)

		b.StartTimer()
		start := time.Now()
		first := clusterUpJSON(b, s, file)
		upWall := time.Since(start)
		start = time.Now()
		again := clusterUpJSON(b, s, file)
		noopWall := time.Since(start)
		start = time.Now()
		r := run(b, 5*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "deploy", file)
		deployWall := time.Since(start)
		b.StopTimer()
		rm()
		if r.code != 0 || again.Result.Changed {
			b.Fatalf("a re-run changed something or failed: changed=%v, deploy: %s", again.Result.Changed, r)
		}
		b.ReportMetric(upWall.Seconds(), "up-with-stack-s")
		b.ReportMetric(first.Result.Stages["stacks"].Seconds(), "stack-stage-s")
		b.ReportMetric(noopWall.Seconds(), "noop-up-s")
		b.ReportMetric(again.Result.Stages["stacks"].Seconds(), "noop-stack-stage-s")
		b.ReportMetric(deployWall.Seconds(), "noop-deploy-s")
	}
}
