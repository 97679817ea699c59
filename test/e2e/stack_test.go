package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// copyApp copies examples/app (the example stack) into a directory of the
// test's own, which the test then changes.
func copyApp(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "app")
	if r := run(t, time.Minute, "cp", "-r", filepath.Join("..", "..", "examples", "app"), dst); r.code != 0 {
		t.Fatalf("copy examples/app: %s", r)
	}
	return dst
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func editText(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	writeText(t, path, strings.Replace(string(b), old, new, 1))
}

// onNode runs a shell command on a lab host (its docker CLI talks to its
// own engine) and returns its output; it fails the test on an error.
func onNode(t *testing.T, host, script string) string {
	t.Helper()
	r := dockerExec(t, host, "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("%s: %s: %s", host, script, r)
	}
	return strings.TrimSpace(r.stdout)
}

// taskIDs are the running tasks of a stack's services, sorted.
func taskIDs(t *testing.T, host, stack string) string {
	t.Helper()
	out := onNode(t, host, "for s in $(docker stack services -q "+stack+"); do docker service ps -q --filter desired-state=running $s; done")
	ids := strings.Fields(out)
	sort.Strings(ids)
	return strings.Join(ids, " ")
}

// TestStacks is issue 29 against the lab: a stack with a built image, a
// secret, a config and an overlay network converges and its services talk
// across nodes; a second run changes nothing; a changed config reaches the
// tasks and the old one goes; a service that left the file is pruned; an
// image that does not exist fails the run in time, naming the service and
// the error; docker stack sees shoal's stack; a stack deployed by hand is
// taken over, not duplicated.
func TestStacks(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	managers, workers := []string{"m1"}, []string{"w1", "w2"}
	ips := map[string]string{}
	for _, n := range append(append([]string{}, managers...), workers...) {
		ips[n] = labHost(t, "e2e-st-"+n, hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-st"})
	}
	file := adoptedClusterFile(t, "st", priv, archive, managers, workers, ips)
	app := copyApp(t)
	compose := filepath.Join(app, "docker-compose.yml")
	b, _ := os.ReadFile(file)
	writeText(t, file, string(b)+"\nswarm {\n  overlay_mtu = 1400\n}\n\nstack \"demo\" {\n  compose = [\""+compose+"\"]\n}\n")
	const m1 = "e2e-st-m1"

	start := time.Now()
	up := s.cluster("up", "--skip-check", file)
	if up.code != 0 {
		t.Fatalf("cluster up with a stack: %s", up)
	}
	t.Logf("cluster up with the example stack: %s\n%s", time.Since(start).Round(time.Second), up.stdout)
	if !strings.Contains(up.stdout, "demo: ") || !strings.Contains(up.stdout, "docker stack services demo") {
		t.Errorf("the summary should say what became of the stack and how to look at it:\n%s", up.stdout)
	}
	services := onNode(t, m1, "docker stack services --format '{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}' demo | sort")
	t.Logf("docker stack services demo:\n%s", services)
	if !strings.Contains(services, "demo_web replicated 2/2 m1:5000/demo-web:1") || !strings.Contains(services, "demo_poller global 3/3 busybox:latest") {
		t.Errorf("docker stack services demo: want web 2/2 from the registry and poller on all 3 nodes:\n%s", services)
	}
	if img := onNode(t, m1, "docker service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' demo_web"); !strings.HasPrefix(img, "m1:5000/demo-web:1@sha256:") {
		t.Errorf("demo_web's image %q, want it by digest", img)
	}
	if mtu := onNode(t, m1, "docker network inspect -f '{{index .Options \"com.docker.network.driver.mtu\"}}' demo_back"); mtu != "1400" {
		t.Errorf("demo_back's MTU %q, want the file's overlay_mtu 1400", mtu)
	}
	if secrets := onNode(t, m1, "docker secret ls --format '{{.Name}}'"); !strings.HasPrefix(secrets, "demo_api_token_") || strings.Contains(secrets, "demo-token") {
		t.Errorf("secrets: %q, want one named demo_api_token_<hash>", secrets)
	}
	if strings.Contains(up.stdout+up.stderr, "demo-token-not-a-real-secret") {
		t.Errorf("the secret's value is in the output")
	}
	// The poller on every node reaches web over the overlay, so across
	// nodes (web runs on two of the three).
	reached := map[string]bool{}
	for deadline := time.Now().Add(90 * time.Second); len(reached) < 3 && time.Now().Before(deadline); time.Sleep(3 * time.Second) {
		for _, l := range strings.Split(onNode(t, m1, "docker service logs --no-task-ids demo_poller 2>&1 | grep 'reached web' || true"), "\n") {
			if at := strings.Index(l, "@"); at > 0 {
				reached[strings.Fields(l[at+1:])[0]] = true
			}
		}
	}
	if len(reached) < 3 {
		t.Errorf("pollers that reached web: %v, want all 3 nodes", reached)
	}

	// A second run changes nothing: the same tasks.
	before := taskIDs(t, m1, "demo")
	again := clusterUpJSON(t, s, file)
	t.Logf("the second up: %s (stacks %s)", again.Result.Elapsed, again.Result.Stages["stacks"])
	if again.Result.Changed {
		t.Errorf("a second up changed something")
	}
	if after := taskIDs(t, m1, "demo"); after != before {
		t.Errorf("a second up replaced tasks:\nbefore %s\nafter  %s", before, after)
	}

	if r := s.cluster("plan", file); r.code != 0 || !strings.Contains(r.stdout, "stack demo: nothing to change") {
		t.Errorf("cluster plan after a converged up: want the stack unchanged: %s", r)
	}
	if r := s.cluster("status", "st"); r.code != 0 || !strings.Contains(r.stdout, "demo_web") || !strings.Contains(r.stdout, "2/2") {
		t.Errorf("cluster status: want demo's services with their tasks: %s", r)
	}

	// A changed config file: a new config, the tasks get it, the old one goes.
	oldConfig := onNode(t, m1, "docker config ls --format '{{.Name}}'")
	writeText(t, filepath.Join(app, "page.html"), "<h1>shoal demo, second page</h1>\n")
	if r := s.cluster("plan", file); r.code != 0 || !strings.Contains(r.stdout, "+ config demo_page_") || !strings.Contains(r.stdout, "~ service demo_web") {
		t.Errorf("cluster plan after the page changed: want a new config and web updated: %s", r)
	}
	if r := s.cluster("deploy", file); r.code != 0 {
		t.Fatalf("cluster deploy after a config change: %s", r)
	}
	newConfig := onNode(t, m1, "docker config ls --format '{{.Name}}'")
	if newConfig == oldConfig || strings.Contains(newConfig, "\n") || !strings.HasPrefix(newConfig, "demo_page_") {
		t.Errorf("configs after the change: %q (before %q): want one new demo_page_<hash>", newConfig, oldConfig)
	}
	page := ""
	for _, n := range append(append([]string{}, managers...), workers...) {
		page += onNode(t, "e2e-st-"+n, "for c in $(docker ps -q --filter label=com.docker.swarm.service.name=demo_web); do docker exec $c cat /www/index.html; done")
	}
	if strings.Count(page, "second page") != 2 || strings.Contains(page, "<h1>shoal demo</h1>") {
		t.Errorf("web's tasks serve %q, want the second page from both", page)
	}

	// A service that left the file is pruned.
	text := mustRead(t, compose)
	i, j := strings.Index(text, "  poller:\n"), strings.Index(text, "\nnetworks:\n")
	if i < 0 || j < i {
		t.Fatalf("examples/app/docker-compose.yml has no poller before its networks")
	}
	writeText(t, compose, text[:i]+text[j:])
	if r := s.cluster("deploy", file); r.code != 0 {
		t.Fatalf("cluster deploy without poller: %s", r)
	}
	if names := onNode(t, m1, "docker stack services --format '{{.Name}}' demo | sort | tr '\\n' ' '"); strings.TrimSpace(names) != "demo_web" {
		t.Errorf("services after poller left the file: %q, want demo_web alone", names)
	}

	// An image that does not exist fails the run within the bound, naming
	// the service and the error; up still shows the swarm it made and the
	// stacks' lines before it fails.
	broken := mustRead(t, compose)
	writeText(t, compose, strings.Replace(broken, "\nnetworks:\n", "  broken:\n    image: ${SHOAL_REGISTRY}/no-such-image:1\n    networks: [back]\n\nnetworks:\n", 1))
	start = time.Now()
	r := s.cluster("up", "--deploy-timeout", "2m", file)
	took := time.Since(start)
	t.Logf("a missing image: exit %d in %s: %s", r.code, took.Round(time.Second), r.stderr)
	if r.code != 1 || took > 60*time.Second || !strings.Contains(r.stderr, "demo_broken") ||
		!(strings.Contains(r.stderr, "No such image") || strings.Contains(r.stderr, "not found") || strings.Contains(r.stderr, "manifest unknown")) {
		t.Errorf("a service whose image does not exist: want exit 1 in time, naming demo_broken and the image error: %s", r)
	}
	if !strings.Contains(r.stderr, "the swarm is up, but a stack failed") || !strings.Contains(r.stdout, "NODE") || !strings.Contains(r.stdout, "Stacks:") {
		t.Errorf("up with a failing stack: want the summary (nodes, stacks) on stdout and the swarm said up: %s", r)
	}
	writeText(t, compose, broken)
	if r := s.cluster("deploy", file); r.code != 0 {
		t.Fatalf("cluster deploy after the broken service left: %s", r)
	}

	// A stack deployed by hand is taken over: the same service, updated.
	onNode(t, m1, "printf 'version: \"3.8\"\\nservices:\\n  app:\\n    image: busybox:latest\\n    command: [\"sleep\", \"3600\"]\\n' > /tmp/hand.yml && docker stack deploy --resolve-image never -c /tmp/hand.yml hand")
	handID := onNode(t, m1, "docker service ls -q --filter label=com.docker.stack.namespace=hand")
	handCompose := filepath.Join(t.TempDir(), "hand.yml")
	writeText(t, handCompose, "version: \"3.8\"\nservices:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"3600\"]\n    deploy:\n      replicas: 2\n")
	b, _ = os.ReadFile(file)
	writeText(t, file, string(b)+"\nstack \"hand\" {\n  compose = [\""+handCompose+"\"]\n}\n")
	if r := s.cluster("deploy", "--stack", "hand", file); r.code != 0 {
		t.Fatalf("cluster deploy --stack hand: %s", r)
	}
	if ids := onNode(t, m1, "docker service ls -q --filter label=com.docker.stack.namespace=hand"); ids != handID {
		t.Errorf("the hand-made stack's services: %q, want the one service it had (%s), updated", ids, handID)
	}
	if reps := onNode(t, m1, "docker service inspect -f '{{.Spec.Mode.Replicated.Replicas}}' hand_app"); reps != "2" {
		t.Errorf("hand_app replicas %s, want 2 (the file's)", reps)
	}

	// A stack that left the cluster file is removed.
	writeText(t, file, strings.Replace(mustRead(t, file), "\nstack \"hand\" {\n  compose = [\""+handCompose+"\"]\n}\n", "", 1))
	if r := s.cluster("deploy", file); r.code != 0 {
		t.Fatalf("cluster deploy after the hand stack left the file: %s", r)
	}
	if ids := onNode(t, m1, "docker service ls -q --filter label=com.docker.stack.namespace=hand"); ids != "" {
		t.Errorf("a stack that left the file is still there: %s", ids)
	}

	// cluster down removes the stacks before the nodes leave.
	if r := s.cluster("down", "st"); r.code != 0 || !strings.Contains(r.stdout+r.stderr, "stack demo") {
		t.Errorf("cluster down: want it to remove stack demo first: %s", r)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
