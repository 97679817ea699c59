package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Day two: what a running cluster needs after it is made.

// repackScript re-builds the docker.io package installed on a lab host with
// another version: the same files, maintainer scripts and fields (what
// dpkg-repack does). The lab has one Docker version; this makes a second
// one that apt really installs.
const repackScript = `set -eu
new=$1 out=$2
d=$(mktemp -d)
chmod 755 "$d"
mkdir -p "$d/DEBIAN"
dpkg-query -L docker.io | while IFS= read -r f; do
  [ -d "$f" ] && continue
  [ -e "$f" ] || [ -L "$f" ] || continue
  printf '%s\n' "$f"
done | tar -cf - --no-recursion -T - 2>/dev/null | tar -xf - -C "$d"
for s in preinst postinst prerm postrm conffiles; do
  [ -f /var/lib/dpkg/info/docker.io.$s ] && cp -p /var/lib/dpkg/info/docker.io.$s "$d/DEBIAN/$s"
done
dpkg-query -s docker.io | awk -v v="$new" '
  /^[^ ]/ { skip = ($1 == "Status:" || $1 == "Installed-Size:" || $1 == "Version:" || $1 == "Conffiles:") }
  !skip { print }
  /^Package:/ { print "Version: " v }' > "$d/DEBIAN/control"
dpkg-deb --root-owner-group -z1 -Zgzip -b "$d" "$out" >/dev/null
rm -rf "$d"
`

// aptRepo is a signed apt repository (dists/bookworm/main) served over HTTP
// on the gateway of a lab network, with the docker.io package of a lab host
// re-versioned to version.
type aptRepo struct {
	URL    string
	KeyASC []byte
}

func serveAptRepo(t *testing.T, network, fromHost, version string) aptRepo {
	t.Helper()
	for _, tool := range []string{"gpg", "dpkg-scanpackages"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("prerequisite missing: %s (apt-get install gnupg dpkg-dev)", tool)
		}
	}
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool", "main")
	bin := filepath.Join(dir, "dists", "bookworm", "main", "binary-amd64")
	for _, d := range []string{pool, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	deb := "docker.io_" + version + "_amd64.deb"
	if r := run(t, 5*time.Minute, "docker", "exec", fromHost, "sh", "-c", repackScript, "repack", version, "/tmp/"+deb); r.code != 0 {
		t.Fatalf("re-building docker.io on %s: %s", fromHost, r)
	}
	if r := run(t, 2*time.Minute, "docker", "cp", fromHost+":/tmp/"+deb, filepath.Join(pool, deb)); r.code != 0 {
		t.Fatalf("docker cp: %s", r)
	}
	dockerExec(t, fromHost, "rm", "-f", "/tmp/"+deb)
	cmd := exec.Command("dpkg-scanpackages", "-m", "pool", "/dev/null")
	cmd.Dir = dir
	pkgs, err := cmd.Output()
	if err != nil || !strings.Contains(string(pkgs), "Version: "+version) {
		t.Fatalf("dpkg-scanpackages: %v\n%s", err, pkgs)
	}
	if err := os.WriteFile(filepath.Join(bin, "Packages"), pkgs, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pkgs)
	release := fmt.Sprintf("Origin: shoal-e2e\nLabel: shoal-e2e\nSuite: bookworm\nCodename: bookworm\nDate: %s\nArchitectures: amd64\nComponents: main\nSHA256:\n %s %d main/binary-amd64/Packages\n",
		time.Now().UTC().Format(time.RFC1123), hex.EncodeToString(sum[:]), len(pkgs))
	if err := os.WriteFile(filepath.Join(dir, "dists", "bookworm", "Release"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
	// A key of the test's own signs the repository; the hosts trust it as
	// an owner would trust their repository's key.
	gnupg := t.TempDir()
	gpg := func(args ...string) []byte {
		t.Helper()
		c := exec.Command("gpg", append([]string{"--homedir", gnupg, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	gpg("--quick-gen-key", "shoal e2e repository <e2e@shoal.invalid>", "ed25519", "sign", "never")
	gpg("--clearsign", "-o", filepath.Join(dir, "dists", "bookworm", "InRelease"), filepath.Join(dir, "dists", "bookworm", "Release"))
	key := gpg("--armor", "--export")
	gw := strings.TrimSpace(run(t, time.Minute, "docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", network).stdout)
	if net.ParseIP(gw) == nil {
		t.Fatalf("network %s has no gateway address: %q", network, gw)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.StripPrefix("/debian", http.FileServer(http.Dir(dir))), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return aptRepo{URL: "http://" + ln.Addr().String() + "/debian", KeyASC: key}
}

// trustKey installs the repository's key on a lab host (what the owner of
// a private repository does on their hosts).
func trustKey(t *testing.T, host string, key []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "shoal-e2e.asc")
	if err := os.WriteFile(f, key, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, time.Minute, "docker", "cp", f, host+":/etc/apt/trusted.gpg.d/shoal-e2e.asc"); r.code != 0 {
		t.Fatalf("docker cp key: %s", r)
	}
}

// rollSample is what the sampler saw once.
type rollSample struct {
	pids     map[string]string
	drained  []string
	replicas int
	nodeLsOK bool
}

// sampleRoll watches the swarm every second until stop is closed.
func sampleRoll(t *testing.T, hosts map[string]string, manager, service string, stop <-chan struct{}) <-chan []rollSample {
	out := make(chan []rollSample, 1)
	go func() {
		var samples []rollSample
		for {
			s := rollSample{pids: map[string]string{}}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for name, c := range hosts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					pid, _ := exec.CommandContext(ctx, "docker", "exec", c, "systemctl", "show", "-p", "MainPID", "--value", "docker").Output()
					ps, err := exec.CommandContext(ctx, "docker", "exec", c, "docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service).Output()
					mu.Lock()
					defer mu.Unlock()
					s.pids[name] = strings.TrimSpace(string(pid))
					if err == nil {
						s.replicas += len(strings.Fields(string(ps)))
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				ls, err := exec.CommandContext(ctx, "docker", "exec", hosts[manager], "docker", "node", "ls", "--format", "{{.Hostname}} {{.Availability}}").Output()
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					s.nodeLsOK = true
					for _, l := range strings.Split(strings.TrimSpace(string(ls)), "\n") {
						if f := strings.Fields(l); len(f) == 2 && f[1] != "Active" {
							s.drained = append(s.drained, f[0])
						}
					}
				}
			}()
			wg.Wait()
			samples = append(samples, s)
			select {
			case <-stop:
				out <- samples
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return out
}

// rollFile is a cluster file of one manager and two workers adopted over
// SSH, with the registry, and the engine block given.
func rollFile(t *testing.T, dir, key, archive string, ips map[string]string, engine string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "cluster \"d2roll\" {}\n\ndefaults {\n  driver = \"ssh\"\n  ssh {\n    user = \"tester\"\n    key  = %q\n  }\n  image_archives = [%q]\n%s}\n\n", key, archive, engine)
	fmt.Fprintf(&b, "machine \"m1\" {\n  role = \"manager\"\n  ssh { host = %q }\n}\n\n", ips["m1"])
	for _, w := range []string{"w1", "w2"} {
		fmt.Fprintf(&b, "machine %q {\n  role = \"worker\"\n  ssh { host = %q }\n}\n\n", w, ips[w])
	}
	b.WriteString("swarm {\n  max_unavailable = 1\n}\n")
	path := filepath.Join(dir, "d2roll.hcl")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDayTwoRollingEngineChange: a new engine version in the file goes
// through a 1-manager, 2-worker swarm one node at a time while a
// 3-replica service keeps at least 2 replicas running.
func TestDayTwoRollingEngineChange(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-d2roll"
	names := []string{"m1", "w1", "w2"}
	ips, containers := map[string]string{}, map[string]string{}
	for _, n := range names {
		containers[n] = "e2e-d2-roll-" + n
		ips[n] = labHost(t, containers[n], hostOpts{user: "tester", pubkey: pub, network: network})
	}
	dir := t.TempDir()
	file := rollFile(t, dir, priv, archive, ips, "")
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	mgr := containers["m1"]
	if r := dockerExec(t, mgr, "docker", "service", "create", "-d", "--name", "web", "--replicas", "3", "--endpoint-mode", "dnsrr", "--no-resolve-image", "busybox:latest", "sleep", "86400"); r.code != 0 {
		t.Fatalf("service create: %s", r)
	}
	d2WaitReplicas(t, mgr, "web", "3/3")

	const version = "20.10.99+dfsg1-1"
	repo := serveAptRepo(t, network, containers["w2"], version)
	for _, c := range containers {
		trustKey(t, c, repo.KeyASC)
	}
	engine := fmt.Sprintf("  engine {\n    install  = \"distro\"\n    version  = \"20.10.99\"\n    repo_url = %q\n  }\n", repo.URL)
	file = rollFile(t, dir, priv, archive, ips, engine)

	// The plan says the order before anything changes.
	r := s.cluster("plan", file)
	if r.code != 0 || !strings.Contains(r.stdout, "engine roll, one batch at a time: m1, then w1, then w2") {
		t.Fatalf("plan should list the roll order: %s", r)
	}

	stop := make(chan struct{})
	got := sampleRoll(t, containers, "m1", "web", stop)
	r = s.cluster("up", file)
	close(stop)
	samples := <-got
	if r.code != 0 {
		t.Fatalf("cluster up with the new engine: %s", r)
	}
	t.Logf("%d samples", len(samples))

	// Every node runs the new package, its dockerd restarted exactly once.
	for _, n := range names {
		v := strings.TrimSpace(dockerExec(t, containers[n], "dpkg-query", "-W", "-f", "${Version}", "docker.io").stdout)
		if v != version {
			t.Errorf("%s: docker.io %q, want %q", n, v, version)
		}
	}
	firstChange := map[string]int{}
	for _, n := range names {
		var seen []string
		for i, smp := range samples {
			p := smp.pids[n]
			if p == "" || p == "0" {
				continue
			}
			if len(seen) == 0 || seen[len(seen)-1] != p {
				seen = append(seen, p)
				if len(seen) == 2 {
					firstChange[n] = i
				}
			}
		}
		if len(seen) != 2 {
			t.Errorf("%s: dockerd PIDs seen %v: want one restart", n, seen)
		}
	}
	// One node at a time, in the plan's order.
	if !(firstChange["m1"] < firstChange["w1"] && firstChange["w1"] < firstChange["w2"]) {
		t.Errorf("restart order (sample index) m1=%d w1=%d w2=%d: want m1, then w1, then w2", firstChange["m1"], firstChange["w1"], firstChange["w2"])
	}
	minReplicas, everDrained, lsOK := 99, 0, 0
	for i, smp := range samples {
		if len(smp.drained) > 1 {
			t.Errorf("sample %d: %d nodes not active at once: %v", i, len(smp.drained), smp.drained)
		}
		if smp.nodeLsOK {
			lsOK++
		}
		if len(smp.drained) == 1 {
			everDrained++
		}
		minReplicas = min(minReplicas, smp.replicas)
		down := 0
		for _, p := range smp.pids {
			if p == "" || p == "0" {
				down++
			}
		}
		if down > 1 {
			t.Errorf("sample %d: %d dockerds down at once: %v", i, down, smp.pids)
		}
	}
	if minReplicas < 2 {
		t.Errorf("the service fell to %d running replicas during the roll", minReplicas)
	}
	if everDrained == 0 || lsOK == 0 {
		t.Errorf("the sampler never saw a drained node (%d node ls answers): the roll did not drain", lsOK)
	}
	ls := dockerExec(t, mgr, "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}}").stdout
	for _, l := range strings.Split(strings.TrimSpace(ls), "\n") {
		if !strings.HasSuffix(l, " Ready Active") {
			t.Errorf("after the roll: %q, want Ready Active", l)
		}
	}
	d2WaitReplicas(t, mgr, "web", "3/3")

	// Again: every engine is right, no dockerd restarts.
	before := map[string]string{}
	for _, n := range names {
		before[n] = strings.TrimSpace(dockerExec(t, containers[n], "systemctl", "show", "-p", "MainPID", "--value", "docker").stdout)
	}
	if r := s.cluster("upgrade", file); r.code != 0 || !strings.Contains(r.stdout, "nothing to change") {
		t.Errorf("cluster upgrade after the roll: %s", r)
	}
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up again: %s", r)
	}
	for _, n := range names {
		if p := strings.TrimSpace(dockerExec(t, containers[n], "systemctl", "show", "-p", "MainPID", "--value", "docker").stdout); p != before[n] {
			t.Errorf("%s: dockerd restarted (%s -> %s) though its engine was right", n, before[n], p)
		}
	}
}

// d2WaitReplicas waits until `docker service ls` shows want replicas.
func d2WaitReplicas(t *testing.T, mgr, service, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got := strings.TrimSpace(dockerExec(t, mgr, "docker", "service", "ls", "--filter", "name="+service, "--format", "{{.Replicas}}").stdout)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %s replicas, want %s:\n%s", service, got, want, dockerExec(t, mgr, "docker", "service", "ps", service).stdout)
		}
		time.Sleep(2 * time.Second)
	}
}
