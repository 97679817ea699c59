package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	perHost  map[string]int
	drained  []string
	replicas int
	nodeLsOK bool
	// blind: a host did not answer the sampler at all (its systemctl,
	// which answers whether dockerd runs or not, timed out on a loaded
	// machine): the sample says nothing of replicas or restarts.
	blind bool
}

// sampleRoll watches the swarm every second until stop is closed.
func sampleRoll(t *testing.T, hosts map[string]string, manager, service string, stop <-chan struct{}) <-chan []rollSample {
	out := make(chan []rollSample, 1)
	go func() {
		var samples []rollSample
		stopped := false
		for {
			s := rollSample{pids: map[string]string{}, perHost: map[string]int{}}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for name, c := range hosts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					pid, perr := exec.CommandContext(ctx, "docker", "exec", c, "systemctl", "show", "-p", "MainPID", "--value", "docker").Output()
					ps, err := exec.CommandContext(ctx, "docker", "exec", c, "docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service).Output()
					mu.Lock()
					defer mu.Unlock()
					s.blind = s.blind || perr != nil
					s.pids[name] = strings.TrimSpace(string(pid))
					if err == nil {
						s.replicas += len(strings.Fields(string(ps)))
						s.perHost[name] = len(strings.Fields(string(ps)))
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
			if stopped { // one more sample after the end
				out <- samples
				return
			}
			select {
			case <-stop:
				stopped = true
			case <-time.After(time.Second):
			}
		}
	}()
	return out
}

// rollFile is a cluster file of one manager and two workers adopted over
// SSH, with the registry, and the engine block given.
func rollFile(t *testing.T, dir, key, archive string, ips map[string]string, engine string, swarm ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "cluster \"d2roll\" {}\n\ndefaults {\n  driver = \"ssh\"\n  ssh {\n    user = \"tester\"\n    key  = %q\n  }\n  image_archives = [%q]\n%s}\n\n", key, archive, engine)
	fmt.Fprintf(&b, "machine \"m1\" {\n  role = \"manager\"\n  ssh { host = %q }\n}\n\n", ips["m1"])
	for _, w := range []string{"w1", "w2"} {
		fmt.Fprintf(&b, "machine %q {\n  role = \"worker\"\n  ssh { host = %q }\n}\n\n", w, ips[w])
	}
	b.WriteString("swarm {\n  max_unavailable = 1\n" + strings.Join(swarm, "") + "}\n")
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
	t.Parallel()
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
	if r := dockerExec(t, mgr, "docker", "service", "create", "-d", "--name", "web", "--replicas", "3", "--endpoint-mode", "dnsrr", "--no-resolve-image", "--stop-grace-period", "2s", "busybox:latest", "sleep", "86400"); r.code != 0 {
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
	defer func() {
		if t.Failed() {
			t.Logf("cluster up output:\n%s\n%s", r.stdout, r.stderr)
			for i, smp := range samples {
				t.Logf("sample %d: pids %v replicas %v drained %v", i, smp.pids, smp.perHost, smp.drained)
			}
		}
	}()

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
		if smp.blind {
			continue
		}
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

	// A version the repository does not have: the roll stops at the first
	// node, left drained, and says where, why and what to type.
	bad := rollFile(t, t.TempDir(), priv, archive, ips, strings.Replace(engine, `"20.10.99"`, `"20.10.98"`, 1))
	r = s.cluster("up", bad)
	if r.code == 0 {
		t.Fatalf("cluster up with a missing version should fail: %s", r)
	}
	for _, want := range []string{"m1: roll stopped at step change", "apt-get install", "20.10.98", "left drained", "cluster up --storage-path " + s.storage + " " + bad} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the failure should say %q:\n%s", want, r.stderr)
		}
	}
	avail := func(n string) string {
		return strings.TrimSpace(dockerExec(t, mgr, "docker", "node", "inspect", n, "--format", "{{.Spec.Availability}}").stdout)
	}
	if a := avail("m1"); a != "drain" {
		t.Errorf("m1 is %q after the failed roll, want drain", a)
	}
	if a, b := avail("w1"), avail("w2"); a != "active" || b != "active" {
		t.Errorf("the nodes after m1 were touched: w1 %s, w2 %s", a, b)
	}
	// Back to the version it has: the next run makes m1 active again.
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up to resume: %s", r)
	}
	if a := avail("m1"); a != "active" {
		t.Errorf("m1 is %q after the resumed run, want active", a)
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

// pemCert reads the first certificate of a PEM file.
func pemCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: not PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemKey(t *testing.T, path string) *ecdsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	k, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}

// daemonCert is the certificate dockerd presents on its TLS port, checked
// against the store's CA and client certificate.
func daemonCert(t *testing.T, storage, addr string) (*x509.Certificate, error) {
	t.Helper()
	certs := filepath.Join(storage, "certs")
	pair, err := tls.LoadX509KeyPair(filepath.Join(certs, "cert.pem"), filepath.Join(certs, "key.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(pemCert(t, filepath.Join(certs, "ca.pem")))
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(addr, "2376"), &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: addr})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// TestDayTwoCertificates: a server certificate that expires in 10 days is
// renewed by `cluster up`; then a CA that expires in 10 days is replaced,
// every server certificate issued again with dockerd restarted one node at
// a time, and `machine env` works with every node; the swarm is kept.
func TestDayTwoCertificates(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	names := []string{"m1", "w1", "w2"}
	ips, containers := map[string]string{}, map[string]string{}
	for _, n := range names {
		containers[n] = "e2e-d2-cert-" + n
		ips[n] = labHost(t, containers[n], hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-d2cert"})
	}
	// Autolock on: the manager restarted for its new certificate comes
	// back locked and the roll unlocks it.
	file := rollFile(t, t.TempDir(), priv, archive, ips, "", "  autolock = true\n")
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	ids := dockerExec(t, containers["m1"], "docker", "node", "ls", "-q").stdout
	certsDir := filepath.Join(s.storage, "certs")
	caCert, caKey := pemCert(t, filepath.Join(certsDir, "ca.pem")), pemKey(t, filepath.Join(certsDir, "ca-key.pem"))

	// w1's server certificate expires in 10 days: issued so by the test
	// with the CA, in the store and on the host.
	w1Dir := filepath.Join(s.storage, "machines", "w1")
	old := pemCert(t, filepath.Join(w1Dir, "server.pem"))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: old.Subject, DNSNames: old.DNSNames, IPAddresses: old.IPAddresses,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, filepath.Join(w1Dir, "server.pem"), "CERTIFICATE", der, 0o644)
	writePEM(t, filepath.Join(w1Dir, "server-key.pem"), "EC PRIVATE KEY", keyDER, 0o600)
	for _, f := range []string{"server.pem", "server-key.pem"} {
		if r := run(t, time.Minute, "docker", "cp", filepath.Join(w1Dir, f), containers["w1"]+":/etc/docker/shoal/"+f); r.code != 0 {
			t.Fatalf("docker cp: %s", r)
		}
	}
	dockerExec(t, containers["w1"], "systemctl", "restart", "docker")
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := daemonCert(t, s.storage, ips["w1"])
		if err == nil && time.Until(c.NotAfter) < 11*24*time.Hour {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("w1 does not present the short certificate: %v", err)
		}
		time.Sleep(time.Second)
	}
	ls := s.mustMachine("ls")
	if !strings.Contains(lineOf(ls, "w1"), "renew") || strings.Contains(lineOf(ls, "m1"), "renew") {
		t.Errorf("machine ls should say w1's certificate is due, and only w1's:\n%s", ls)
	}
	if r := s.cluster("status", file); r.code != 0 || !strings.Contains(lineOf(r.stdout, "w1"), "renew") {
		t.Errorf("cluster status should say w1's certificate is due: %s", r)
	}
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up (renews w1's certificate): %s", r)
	}
	for _, n := range names {
		c, err := daemonCert(t, s.storage, ips[n])
		if err != nil {
			t.Fatalf("%s: TLS: %v", n, err)
		}
		if time.Until(c.NotAfter) < 365*24*time.Hour {
			t.Errorf("%s presents a certificate that expires %v", n, c.NotAfter)
		}
	}
	if ls := s.mustMachine("ls"); strings.Contains(ls, "renew") {
		t.Errorf("after up nothing should be due:\n%s", ls)
	}

	// The CA expires in 10 days: the same key, signed again so.
	caTmpl := *caCert
	caTmpl.NotAfter = time.Now().Add(10 * 24 * time.Hour)
	caTmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	caDER, err := x509.CreateCertificate(rand.Reader, &caTmpl, &caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(certsDir, "ca.pem"), "CERTIFICATE", caDER, 0o644)
	if r := s.cluster("plan", file); r.code != 0 || !strings.Contains(r.stdout, "the CA expires within 30 days") {
		t.Errorf("plan should warn of the CA: %s", r)
	}
	pids := map[string]string{}
	for _, n := range names {
		pids[n] = strings.TrimSpace(dockerExec(t, containers[n], "systemctl", "show", "-p", "MainPID", "--value", "docker").stdout)
	}
	r := s.cluster("up", file)
	if r.code != 0 {
		t.Fatalf("cluster up (renews the CA): %s", r)
	}
	if !strings.Contains(r.stdout+r.stderr, "order: m1, then w1, then w2") {
		t.Errorf("up should roll the restarts one node at a time: %s", r)
	}
	newCA := pemCert(t, filepath.Join(certsDir, "ca.pem"))
	if newCA.Equal(caCert) || time.Until(newCA.NotAfter) < 2*365*24*time.Hour {
		t.Fatalf("the CA was not replaced: expires %v", newCA.NotAfter)
	}
	for _, n := range names {
		c, err := daemonCert(t, s.storage, ips[n])
		if err != nil {
			t.Errorf("%s: TLS with the new CA: %v", n, err)
			continue
		}
		if c.CheckSignatureFrom(newCA) != nil {
			t.Errorf("%s: its certificate is not of the new CA", n)
		}
		if got := s.dockerEnv(n, "version", "--format", "{{.Server.Version}}"); got.code != 0 {
			t.Errorf("machine env %s, docker version: %s", n, got)
		}
		if p := strings.TrimSpace(dockerExec(t, containers[n], "systemctl", "show", "-p", "MainPID", "--value", "docker").stdout); p == pids[n] {
			t.Errorf("%s: dockerd was not restarted with its new certificate", n)
		}
	}
	// The swarm is the same one, every node Ready and active.
	if got := dockerExec(t, containers["m1"], "docker", "node", "ls", "-q").stdout; got != ids {
		t.Errorf("node IDs changed:\n%s\nwas:\n%s", got, ids)
	}
	nl := dockerExec(t, containers["m1"], "docker", "node", "ls", "--format", "{{.Status}} {{.Availability}}").stdout
	if strings.Count(nl, "Ready Active") != 3 {
		t.Errorf("after the CA roll:\n%s", nl)
	}

	// The swarm's own root CA and join tokens: rotate --ca waits until
	// every node has a certificate of the new root.
	m1 := containers["m1"]
	oldRoot := dockerExec(t, m1, "docker", "info", "--format", "{{.Swarm.Cluster.TLSInfo.TrustRoot}}").stdout
	oldToken := strings.TrimSpace(dockerExec(t, m1, "docker", "swarm", "join-token", "-q", "worker").stdout)
	r = s.cluster("rotate", file, "--ca")
	if r.code != 0 {
		t.Fatalf("cluster rotate --ca: %s", r)
	}
	newRoot := dockerExec(t, m1, "docker", "info", "--format", "{{.Swarm.Cluster.TLSInfo.TrustRoot}}").stdout
	newToken := strings.TrimSpace(dockerExec(t, m1, "docker", "swarm", "join-token", "-q", "worker").stdout)
	if newRoot == oldRoot || newToken == oldToken || oldToken == "" {
		t.Errorf("rotate changed nothing: root same=%v token same=%v", newRoot == oldRoot, newToken == oldToken)
	}
	if strings.Contains(r.stdout+r.stderr, newToken) || strings.Contains(r.stdout+r.stderr, oldToken) {
		t.Error("a join token was printed")
	}
	for _, n := range names {
		got := dockerExec(t, m1, "docker", "node", "inspect", n, "--format", "{{.Description.TLSInfo.TrustRoot}}").stdout
		if strings.TrimSpace(got) != strings.TrimSpace(newRoot) {
			t.Errorf("%s does not trust the new swarm root CA", n)
		}
	}
}

// lineOf is the line of a table that starts with name.
func lineOf(table, name string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

// backupFile is a cluster file of adopted lab hosts: managers and workers
// by name, the registry on the first manager, autolock on.
func backupFile(t *testing.T, path, key, archive string, managers, workers []string, ips map[string]string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "cluster \"d2bk\" {}\n\ndefaults {\n  driver = \"ssh\"\n  ssh {\n    user = \"tester\"\n    key  = %q\n  }\n  image_archives = [%q]\n}\n\n", key, archive)
	for _, m := range managers {
		fmt.Fprintf(&b, "machine %q {\n  role = \"manager\"\n  ssh { host = %q }\n}\n\n", m, ips[m])
	}
	for _, w := range workers {
		fmt.Fprintf(&b, "machine %q {\n  role = \"worker\"\n  ssh { host = %q }\n}\n\n", w, ips[w])
	}
	fmt.Fprintf(&b, "registry {\n  node = %q\n}\n\nswarm {\n  autolock = true\n}\n", managers[0])
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDayTwoBackupRestore: a 3-manager swarm with a replicated service, a
// secret, a config, an overlay network and a node label is backed up; every
// manager host is deleted; the swarm is restored on a fresh host with
// another address, and the worker that survived joins it again.
func TestDayTwoBackupRestore(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-d2bk"
	ips, containers := map[string]string{}, map[string]string{}
	up := func(n string) {
		containers[n] = "e2e-d2-bk-" + n
		ips[n] = labHost(t, containers[n], hostOpts{user: "tester", pubkey: pub, network: network})
	}
	for _, n := range []string{"m1", "m2", "m3", "w1"} {
		up(n)
	}
	dir := t.TempDir()
	file := backupFile(t, filepath.Join(dir, "d2bk.hcl"), priv, archive, []string{"m1", "m2", "m3"}, []string{"w1"}, ips)
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	m1 := containers["m1"]
	mustExec := func(c string, args ...string) string {
		t.Helper()
		r := dockerExec(t, c, args...)
		if r.code != 0 {
			t.Fatalf("%s: %s: %s", c, strings.Join(args, " "), r)
		}
		return strings.TrimSpace(r.stdout)
	}
	swarmID := mustExec(m1, "docker", "info", "--format", "{{.Swarm.Cluster.ID}}")
	mustExec(m1, "sh", "-c", "echo -n s3cr3t-value | docker secret create d2-secret -")
	mustExec(m1, "sh", "-c", "echo -n config-value | docker config create d2-config -")
	mustExec(m1, "docker", "network", "create", "-d", "overlay", "--attachable", "d2-net")
	mustExec(m1, "docker", "node", "update", "--label-add", "tier=back", "w1")
	mustExec(m1, "docker", "service", "create", "-d", "--name", "web", "--replicas", "2", "--endpoint-mode", "dnsrr", "--no-resolve-image",
		"--network", "d2-net", "--secret", "d2-secret", "--config", "source=d2-config,target=/d2-config", "--stop-grace-period", "2s",
		"busybox:latest", "sleep", "86400")
	d2WaitReplicas(t, m1, "web", "2/2")
	leader := mustExec(m1, "docker", "node", "ls", "--filter", "role=manager", "--format", "{{.Hostname}} {{.ManagerStatus}}")

	// The backup: written 0600, no secret printed.
	out := filepath.Join(dir, "d2bk.backup")
	r := s.cluster("backup", "d2bk", "-o", out)
	if r.code != 0 {
		t.Fatalf("cluster backup: %s", r)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup archive: %v %v (want mode 0600)", fi, err)
	}
	key, err := os.ReadFile(filepath.Join(s.storage, "clusters", "d2bk", "unlock-key"))
	if err != nil || len(strings.TrimSpace(string(key))) < 10 {
		t.Fatalf("unlock key in the store: %v", err)
	}
	if strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(key))) {
		t.Error("the unlock key was printed")
	}
	// A non-leader manager gave the copy: the leader never stopped.
	leaderName := ""
	for _, l := range strings.Split(leader, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] == "Leader" {
			leaderName = f[0]
		}
	}
	if leaderName == "" || !strings.Contains(r.stdout, "saved from m") || strings.Contains(r.stdout, "saved from "+leaderName+" ") {
		t.Errorf("the copy should come from a manager that does not lead (%q leads): %s", leaderName, r)
	}
	listing := run(t, time.Minute, "tar", "-tzf", out)
	for _, want := range []string{"manifest.json", "swarm.tgz", "unlock-key", "shoal/state.json", "hmac-sha256"} {
		if !strings.Contains(listing.stdout, want) {
			t.Errorf("the archive lacks %s: %s", want, listing.stdout)
		}
	}
	man := run(t, time.Minute, "tar", "-xzOf", out, "manifest.json")
	if !strings.Contains(man.stdout, swarmID) || !strings.Contains(man.stdout, `"hostname": "w1"`) {
		t.Errorf("manifest: %s", man.stdout)
	}

	// The archive repacked without its HMAC is refused unless --trust,
	// before anything is done.
	repack := filepath.Join(dir, "repack")
	os.Mkdir(repack, 0o700)
	if r := run(t, time.Minute, "tar", "-xzf", out, "-C", repack); r.code != 0 {
		t.Fatalf("unpack: %s", r)
	}
	forged := filepath.Join(dir, "forged.backup")
	if r := run(t, time.Minute, "tar", "-czf", forged, "-C", repack, "manifest.json", "swarm.tgz", "unlock-key"); r.code != 0 {
		t.Fatalf("repack: %s", r)
	}
	if r := s.cluster("restore", forged, "--file", file); r.code == 0 || !strings.Contains(r.stderr, "--trust") {
		t.Errorf("a backup without its HMAC was not refused: %s", r)
	}

	// A fresh host (made first, so that its address is another one), and
	// every manager host is gone.
	up("n1")
	for _, n := range []string{"m1", "m2", "m3"} {
		if r := run(t, 2*time.Minute, "bash", labScript(), "host-rm", containers[n]); r.code != 0 {
			t.Fatalf("host-rm %s: %s", n, r)
		}
	}
	newFile := backupFile(t, filepath.Join(dir, "new.hcl"), priv, archive, []string{"n1"}, []string{"w1"}, ips)
	r = s.cluster("restore", out, "--file", newFile)
	if r.code != 0 {
		t.Fatalf("cluster restore: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(key))) {
		t.Error("the unlock key was printed by restore")
	}
	n1 := containers["n1"]
	if got := mustExec(n1, "docker", "info", "--format", "{{.Swarm.Cluster.ID}}"); got != swarmID {
		t.Errorf("restored swarm ID %s, want %s", got, swarmID)
	}
	d2WaitReplicas(t, n1, "web", "2/2")
	if got := mustExec(n1, "docker", "secret", "ls", "--format", "{{.Name}}"); !strings.Contains(got, "d2-secret") {
		t.Errorf("secrets: %q", got)
	}
	if got := mustExec(n1, "docker", "config", "ls", "--format", "{{.Name}}"); !strings.Contains(got, "d2-config") {
		t.Errorf("configs: %q", got)
	}
	if got := mustExec(n1, "docker", "network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}}"); !strings.Contains(got, "d2-net") {
		t.Errorf("overlay networks: %q", got)
	}
	nodes := mustExec(n1, "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.ManagerStatus}}")
	lines := strings.Split(nodes, "\n")
	if len(lines) != 2 || !strings.Contains(nodes, "n1 Ready Leader") || !strings.Contains(nodes, "w1 Ready") {
		t.Errorf("restored nodes (want n1 the leader and w1 Ready, no stale entries):\n%s", nodes)
	}
	if got := mustExec(n1, "docker", "node", "inspect", "w1", "--format", `{{index .Spec.Labels "tier"}}`); got != "back" {
		t.Errorf("w1's label tier=%q, want back", got)
	}
	// The config and the secret reach the tasks.
	task := mustExec(n1, "sh", "-c", "docker ps -q --filter label=com.docker.swarm.service.name=web | head -1")
	host := n1
	if task == "" {
		host = containers["w1"]
		task = mustExec(host, "sh", "-c", "docker ps -q --filter label=com.docker.swarm.service.name=web | head -1")
	}
	if got := mustExec(host, "docker", "exec", task, "cat", "/run/secrets/d2-secret", "/d2-config"); got != "s3cr3t-valueconfig-value" {
		t.Errorf("a task reads %q from its secret and config", got)
	}
	// Again: nothing to do.
	if r := s.cluster("up", newFile); r.code != 0 || !strings.Contains(r.stdout, "nothing to change") {
		t.Errorf("cluster up after the restore should change nothing: %s", r)
	}
}

// TestDayTwoBackupKilled: a backup killed (SIGKILL) while the job on the
// source manager has dockerd stopped leaves dockerd running all the same:
// stop, pack and start are one job on the host, not steps of the SSH
// session. The next backup works.
func TestDayTwoBackupKilled(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	c := "e2e-d2-bkk-m1"
	ips := map[string]string{"m1": labHost(t, c, hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-d2bkk"})}
	file := adoptedClusterFile(t, "d2bkk", priv, archive, []string{"m1"}, nil, ips)
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	out := filepath.Join(t.TempDir(), "d2bkk.backup")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "backup", "d2bkk", "-o", out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed as soon as dockerd is seen stopping: the copy is under way.
	deadline := time.Now().Add(2 * time.Minute)
	for dockerExec(t, c, "systemctl", "is-active", "--quiet", "docker").code == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("the backup never stopped dockerd")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline = time.Now().Add(2 * time.Minute)
	for {
		st := dockerExec(t, c, "sh", "-c", "systemctl is-active docker && docker info --format '{{.Swarm.LocalNodeState}}'")
		if st.code == 0 && strings.Contains(st.stdout, "active\nactive") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd not back after the backup was killed: %s", st)
		}
		time.Sleep(time.Second)
	}
	if st := dockerExec(t, c, "sh", "-c", "cat /var/tmp/shoal-backup-*/status"); strings.TrimSpace(st.stdout) != "0" {
		t.Errorf("the job's status: %s", st)
	}
	// The next backup works, also with more Raft state than the 16 MiB a
	// command's output may hold (configs of random data, which gzip does
	// not shrink much): the pack is streamed.
	fill := dockerExec(t, c, "sh", "-c", "for i in $(seq 60); do head -c 360000 /dev/urandom | base64 -w0 | docker config create big$i - >/dev/null || exit 1; done")
	if fill.code != 0 {
		t.Fatalf("filling the Raft state: %s", fill)
	}
	if r := s.cluster("backup", "d2bkk", "-o", out); r.code != 0 {
		t.Fatalf("the next backup: %s", r)
	}
	listing := run(t, time.Minute, "tar", "-tvzf", out, "swarm.tgz")
	f := strings.Fields(listing.stdout)
	if len(f) < 3 {
		t.Fatalf("the archive's swarm.tgz: %s", listing)
	}
	if size, err := strconv.ParseInt(f[2], 10, 64); err != nil || size <= 16<<20 {
		t.Errorf("swarm.tgz is %s bytes, want more than 16 MiB for this test: %v", f[2], err)
	}
	if r := dockerExec(t, c, "sh", "-c", "ls -d /var/tmp/shoal-backup-* 2>/dev/null"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("job folders left on the host: %s", r.stdout)
	}
}
