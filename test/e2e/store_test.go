package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// treeState lists every file and folder under root with its mode, mtime and
// content: two equal lists mean nothing was made, removed or written.
func treeState(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		line := fmt.Sprintf("%s %v %d", p, fi.Mode(), fi.ModTime().UnixNano())
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	sort.Strings(out)
	return out
}

// TestStorePathTraversalRefused: names that would lead out of the store are
// refused with exit status 2 by every command that takes one, and nothing
// outside the store is read, changed or removed.
func TestStorePathTraversalRefused(t *testing.T) {
	requireE2E(t)
	top := t.TempDir()
	s := &shoal{t: t, storage: filepath.Join(top, "store")}
	// What a traversal would reach: store/machines/../../victim and
	// store/clusters/../../victim are top/victim.
	victim := filepath.Join(top, "victim")
	if err := os.MkdirAll(filepath.Join(victim, "keep"), 0o700); err != nil {
		t.Fatal(err)
	}
	secret := `{"version":1,"name":"x","driver":"ssh","address":"OUTSIDE-SECRET"}`
	for _, f := range []string{filepath.Join(victim, "config.json"), filepath.Join(top, "x", "config.json")} {
		os.MkdirAll(filepath.Dir(f), 0o700)
		if err := os.WriteFile(f, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The store exists and holds a machine, so that a refusal is not just
	// "no such machine".
	s.mustMachine("ls")
	ok := filepath.Join(s.storage, "machines", "ok")
	os.MkdirAll(ok, 0o700)
	if err := os.WriteFile(filepath.Join(ok, "config.json"), []byte(`{"version":1,"name":"ok","driver":"ssh"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, top)

	cases := [][]string{
		{"machine", "inspect", "../../x"},
		{"machine", "inspect", "../../victim"},
		{"machine", "rm", "-y", "../../victim"},
		{"machine", "rm", "-f", "-y", "../../victim"},
		{"machine", "provision", "../../victim"},
		{"machine", "ip", "../../x"},
		{"machine", "url", "../../x"},
		{"machine", "status", "../../x"},
		{"machine", "config", "../../x"},
		{"machine", "env", "../../x"},
		{"machine", "ssh", "../../x", "--", "true"},
		{"machine", "stop", "../../victim"},
		{"machine", "regenerate-certs", "../../victim"},
		{"machine", "inspect", "a/b"},
		{"machine", "inspect", "/etc"},
		{"cluster", "down", "../../victim"},
		{"cluster", "down", "--purge", "../../victim"},
		{"cluster", "status", "../../victim"},
		{"cluster", "env", "../../victim"},
	}
	for _, c := range cases {
		var r result
		if c[0] == "machine" {
			r = s.machine(c[1:]...)
		} else {
			r = s.cluster(c[1:]...)
		}
		if r.code != 2 {
			t.Errorf("%s: want exit 2, got %s", strings.Join(c, " "), r)
		}
		if strings.Contains(r.stdout+r.stderr, "OUTSIDE-SECRET") {
			t.Errorf("%s read a file outside the store:\n%s", strings.Join(c, " "), r)
		}
		if !strings.Contains(r.stderr, "invalid name") {
			t.Errorf("%s: the error does not say the name is invalid:\n%s", strings.Join(c, " "), r.stderr)
		}
	}
	after := treeState(t, top)
	// Lock files of valid names may come and go; nothing else may change.
	if !reflect.DeepEqual(withoutLocks(before), withoutLocks(after)) {
		t.Errorf("files changed:\nbefore %q\nafter  %q", before, after)
	}
	if _, err := os.Stat(filepath.Join(victim, "keep")); err != nil {
		t.Errorf("the victim folder was touched: %v", err)
	}
}

func withoutLocks(lines []string) []string {
	var out []string
	for _, l := range lines {
		if !strings.Contains(l, string(filepath.Separator)+"locks") {
			out = append(out, l)
		}
	}
	return out
}

// closedLoopbackPort returns a port on 127.0.0.1 that nothing listens on.
func closedLoopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestStoreClosedPortCreateBounded: create -d ssh against a closed port gives
// up within its bound (--ssh-wait, 2 minutes by default) with a clear error,
// and leaves nothing in 'machine ls' nor in the store.
func TestStoreClosedPortCreateBounded(t *testing.T) {
	requireE2E(t)
	priv, _ := userKey(t)
	for _, tc := range []struct {
		name, host string
		wait       []string
		bound      time.Duration
	}{
		{"e2e-hs-closed", "127.0.0.1", []string{"--ssh-wait", "3s"}, 30 * time.Second},
		{"e2e-hs-closed-byname", "localhost", []string{"--ssh-wait", "3s"}, 30 * time.Second},
		{"e2e-hs-closed-default", "127.0.0.1", nil, 2*time.Minute + 30*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newShoal(t)
			port := closedLoopbackPort(t)
			args := append([]string{"create", "-d", "ssh", "--ssh-host", tc.host, "--ssh-port", fmt.Sprint(port), "--ssh-user", "tester", "--ssh-key", priv}, tc.wait...)
			start := time.Now()
			r := s.machine(append(args, tc.name)...)
			took := time.Since(start)
			if r.code != 1 {
				t.Errorf("create against a closed port: want exit 1, got %s", r)
			}
			if took > tc.bound {
				t.Errorf("create took %s, want at most %s", took, tc.bound)
			}
			if !strings.Contains(r.stderr, "does not answer after") || !strings.Contains(r.stderr, fmt.Sprint(port)) {
				t.Errorf("the error does not say what did not answer and for how long:\n%s", r.stderr)
			}
			if ls := s.mustMachine("ls", "-q"); strings.TrimSpace(ls) != "" {
				t.Errorf("machine ls after a failed create: %q", ls)
			}
			if entries, _ := os.ReadDir(filepath.Join(s.storage, "machines")); len(entries) != 0 {
				t.Errorf("the store keeps %v", entries)
			}
			t.Logf("gave up after %s", took.Round(100*time.Millisecond))
		})
	}
}

// planFile is a one-node cluster file for a lab host adopted over SSH.
func planFile(t testing.TB, key, ip string) string {
	t.Helper()
	text := fmt.Sprintf(`cluster "e2e-hs" {}

defaults {
  driver = "ssh"
  ssh {
    user = "tester"
    key  = %q
  }
}

machine "hs1" {
  role = "manager"
  ssh { host = %q }
}

registry {
  enabled = false
}
`, key, ip)
	path := filepath.Join(t.TempDir(), "hs.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStorePlanChangesNothing: cluster plan on a fresh store creates no
// store; on a converged one (even with its host key pin and server
// certificate gone) it writes nothing: no pin, no certificate, no state.
func TestStorePlanChangesNothing(t *testing.T) {
	requireE2E(t)
	priv, pub := userKey(t)
	ip := labHost(t, "e2e-hs-plan1", hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-hs"})
	file := planFile(t, priv, ip)

	fresh := &shoal{t: t, storage: filepath.Join(t.TempDir(), "never-made")}
	r := fresh.cluster("plan", file)
	if r.code != 0 || !strings.Contains(r.stdout, "create") {
		t.Fatalf("plan on a fresh store: %s", r)
	}
	if _, err := os.Stat(fresh.storage); !os.IsNotExist(err) {
		t.Errorf("plan made the store %s: %v", fresh.storage, err)
	}

	s := newShoal(t)
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	check := func(what string) {
		t.Helper()
		before := treeState(t, s.storage)
		r := s.cluster("plan", file)
		if r.code != 0 {
			t.Fatalf("plan (%s): %s", what, r)
		}
		if after := treeState(t, s.storage); !reflect.DeepEqual(before, after) {
			t.Errorf("plan (%s) changed the store:\nbefore %q\nafter  %q", what, before, after)
		}
		t.Logf("plan (%s):\n%s", what, r.stdout)
	}
	check("converged")
	// Without the pin and the server certificate, plan would have made
	// them before: it must still write nothing.
	for _, f := range []string{"known_hosts", "server.pem", "server-key.pem"} {
		if err := os.Remove(filepath.Join(s.storage, "machines", "hs1", f)); err != nil {
			t.Fatal(err)
		}
	}
	check("pin and certificate removed")
	// And with no CA at all.
	if err := os.RemoveAll(filepath.Join(s.storage, "certs")); err != nil {
		t.Fatal(err)
	}
	check("CA removed")
}

// TestStoreHostKeyPinnedPerMachine: a machine's host key is pinned for the
// machine, not for one address. After the host's key changes, re-creating
// the machine at another address of the same host (here: sshd on a second
// port, an address nothing was pinned at) is refused as another host, and
// neither the pin nor config.json's fingerprint is overwritten; 'machine
// provision --accept-new-host-key' takes it; a changed key at the address
// then pinned stays refused, step or not.
func TestStoreHostKeyPinnedPerMachine(t *testing.T) {
	requireE2E(t)
	priv, pub := userKey(t)
	host := "e2e-hs-key1"
	ip := labHost(t, host, hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-hs"})
	s := newShoal(t)
	base := []string{"create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "tester", "--ssh-key", priv, "--engine-tls=false"}
	s.mustMachine(append(base, "hk1")...)
	dir := filepath.Join(s.storage, "machines", "hk1")
	knownBefore, err := os.ReadFile(filepath.Join(dir, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		SSH struct{ HostKeyFingerprint string } `json:"ssh"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	mustJSON(t, string(b), &cfg)
	fp := cfg.SSH.HostKeyFingerprint
	if !strings.HasPrefix(fp, "SHA256:") {
		t.Fatalf("no fingerprint recorded: %s", b)
	}

	// The host gets new keys and answers on a second port too.
	r := dockerExec(t, host, "sh", "-c", `rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null &&
printf 'Port 22\nPort 2222\n' > /etc/ssh/sshd_config.d/e2e-ports.conf && systemctl restart ssh`)
	if r.code != 0 {
		t.Fatalf("rotating the host keys: %s", r)
	}
	r = s.machine(append(base, "--ssh-port", "2222", "hk1")...)
	if r.code == 0 {
		t.Fatalf("a changed host key at a new address was trusted: %s", r)
	}
	// Another key at an address the key was never pinned at: another
	// host than the pinned one, taken only by the step the error names.
	step := "provision --accept-new-host-key hk1"
	if !strings.Contains(r.stderr, "host at "+ip+":2222 is not the host") || !strings.Contains(r.stderr, fp) || !strings.Contains(r.stderr, step) {
		t.Errorf("the error does not say the host is another, which key was pinned and the step:\n%s", r.stderr)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "known_hosts")); string(after) != string(knownBefore) {
		t.Errorf("known_hosts changed:\nbefore %q\nafter  %q", knownBefore, after)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "config.json"))
	mustJSON(t, string(b), &cfg)
	if cfg.SSH.HostKeyFingerprint != fp {
		t.Errorf("config.json's fingerprint was overwritten: %s -> %s", fp, cfg.SSH.HostKeyFingerprint)
	}
	// The machine existed: a refused converge does not remove it.
	if ls := strings.TrimSpace(s.mustMachine("ls", "-q")); ls != "hk1" {
		t.Errorf("machine ls -q = %q, want hk1", ls)
	}
	// Provisioning again is refused the same way.
	if r := s.machine("provision", "hk1"); r.code == 0 || !strings.Contains(r.stderr, step) {
		t.Errorf("machine provision with a changed key: %s", r)
	}
	// The step takes the host: its key replaces the old pin.
	s.mustMachine("provision", "--accept-new-host-key", "hk1")
	kh, _ := os.ReadFile(filepath.Join(dir, "known_hosts"))
	if f := strings.Fields(string(kh)); len(f) != 3 || f[0] != "["+ip+"]:2222" {
		t.Errorf("known_hosts after the new host was taken: %q", kh)
	}
	// At the pinned address, a changed key stays refused, step or not.
	r = dockerExec(t, host, "sh", "-c", `rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh`)
	if r.code != 0 {
		t.Fatalf("rotating the host keys again: %s", r)
	}
	if r := s.machine("provision", "--accept-new-host-key", "hk1"); r.code == 0 || !strings.Contains(r.stderr, "CHANGED") || !strings.Contains(r.stderr, "does not apply") {
		t.Errorf("a changed key at the pinned address: %s", r)
	}
}

// TestStoreUpLocksItsMachines: a 'machine provision' of a node started while
// 'cluster up' works on it waits for the run to end (the machine's lock is
// held from its create to the end of the run), then does its work.
func TestStoreUpLocksItsMachines(t *testing.T) {
	requireE2E(t)
	priv, pub := userKey(t)
	ip := labHost(t, "e2e-hs-lock1", hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-hs"})
	file := planFile(t, priv, ip)
	s := newShoal(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	up := exec.CommandContext(ctx, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "up", file)
	var upErr bytes.Buffer
	up.Stderr = &upErr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	upDone := make(chan time.Time, 1)
	go func() { up.Wait(); upDone <- time.Now() }()

	// As soon as up has made the machine, provision it from the side.
	cfg := filepath.Join(s.storage, "machines", "hs1", "config.json")
	for {
		if b, err := os.ReadFile(cfg); err == nil && strings.Contains(string(b), ip) {
			break
		}
		select {
		case <-upDone:
			t.Fatalf("cluster up ended before the test could start a provision:\n%s", upErr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	started := time.Now()
	r := s.machine("provision", "hs1")
	provEnd := time.Now()
	var upEnd time.Time
	select {
	case upEnd = <-upDone:
	case <-time.After(5 * time.Minute):
		t.Fatal("cluster up did not end")
	}
	if up.ProcessState.ExitCode() != 0 {
		t.Fatalf("cluster up failed:\n%s", upErr.String())
	}
	if r.code != 0 {
		t.Fatalf("machine provision after the run: %s", r)
	}
	if upEnd.After(provEnd) {
		t.Errorf("machine provision (started %s, ended %s) ran while cluster up (ended %s) still worked on hs1",
			started.Format("15:04:05.000"), provEnd.Format("15:04:05.000"), upEnd.Format("15:04:05.000"))
	}
	t.Logf("provision waited %s for cluster up", upEnd.Sub(started).Round(10*time.Millisecond))
}
