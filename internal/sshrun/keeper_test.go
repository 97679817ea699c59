package sshrun

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"github.com/shoal-dev/shoal/internal/remote"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// startKeeper runs a keeper in this process on a fresh socket and returns
// the Keep that uses it.
func startKeeper(t *testing.T) *Keep {
	t.Helper()
	dir, err := os.MkdirTemp("", "keep") // short: a unix socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "run", "k.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeKeeper(ctx, sock) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeKeeper: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("keeper not listening")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &Keep{Socket: sock, Persist: time.Minute}
}

// settledLogins is the server's login count once it has stopped moving:
// the server counts a login a moment after the client sees it.
func settledLogins(srv *testServer) int32 {
	n := srv.logins.Load()
	for i := 0; i < 20; i++ {
		time.Sleep(10 * time.Millisecond)
		m := srv.logins.Load()
		if m == n && i >= 4 {
			return m
		}
		n = m
	}
	return n
}

// keptSetup is a test sshd and a config for it that goes through a
// keeper of the test's own.
func keptSetup(t *testing.T) (*testServer, Config) {
	t.Helper()
	srv, cfg := setup(t, serverOpts{})
	cfg.Keep = startKeeper(t)
	return srv, cfg
}

// wantLogins fails the test unless the server saw want logins; format
// says what with one %d for the count.
func wantLogins(t *testing.T, srv *testServer, want int32, format string) {
	t.Helper()
	if n := settledLogins(srv); n != want {
		t.Fatalf(format, n)
	}
}

func TestKeeperKeepsConnection(t *testing.T) {
	srv, cfg := keptSetup(t)
	ctx := ctx10(t)
	for round := 1; round <= 3; round++ {
		c, err := Dial(ctx, cfg)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !c.Kept() {
			t.Fatalf("round %d: the connection is not the keeper's", round)
		}
		res, err := c.Run(ctx, "cat; echo err >&2; exit 3")
		var re *RunError
		if !errors.As(err, &re) || re.ExitCode != 3 || res.ExitCode != 3 || string(res.Stderr) != "err\n" {
			t.Fatalf("round %d: exit status and stderr through the keeper: %+v %v", round, res, err)
		}
		out, err := c.RunInput(ctx, "cat", strings.NewReader("in\n"))
		if err != nil || string(out.Stdout) != "in\n" {
			t.Fatalf("round %d: stdin through the keeper: %q %v", round, out.Stdout, err)
		}
		dst := filepath.Join(srv.home, "f")
		if err := c.WriteFile(ctx, dst, []byte("data"), 0o600, ""); err != nil {
			t.Fatalf("round %d: sftp through the keeper: %v", round, err)
		}
		if got, _ := os.ReadFile(dst); string(got) != "data" {
			t.Fatalf("round %d: file = %q", round, got)
		}
		if c.HostKey() == nil || Fingerprint(c.HostKey()) != Fingerprint(srv.cfgHostKey(t)) {
			t.Fatalf("round %d: host key not the server's", round)
		}
		c.Close()
	}
	wantLogins(t, srv, 1, "three runs logged in %d times, want once")
}

func TestKeeperDialUnix(t *testing.T) {
	_, cfg := keptSetup(t)
	c := dial(t, cfg)
	if !c.Kept() {
		t.Fatal("the connection is not the keeper's")
	}
	checkDialUnix(t, c)
}

// A pty (sudo with requiretty) works the same through the keeper: its
// request, and the merged output, cross the bridge.
func TestKeeperSudoTTY(t *testing.T) {
	cfg := ttySudoConfig(t)
	cfg.Keep = startKeeper(t)
	c := dial(t, cfg)
	if !c.Kept() {
		t.Fatal("the connection is not the keeper's")
	}
	checkSudoTTY(t, c)
}

// A connection the machine dropped is made again, once.
func TestKeeperRedialsLostConnection(t *testing.T) {
	srv, cfg := keptSetup(t)
	c := dial(t, cfg)
	c.Close()
	srv.mu.Lock()
	for _, nc := range srv.open {
		nc.Close()
	}
	srv.mu.Unlock()
	c2 := dial(t, cfg)
	if res, err := c2.Run(ctx10(t), "echo ok"); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("after the machine dropped the kept connection: %q %v", res.Stdout, err)
	}
	wantLogins(t, srv, 2, "logins = %d, want 2")
}

// What decides trust (the pinned host keys, the key file) is part of the
// kept connection's identity: changed, it is verified afresh.
func TestKeeperNewPinsNewConnection(t *testing.T) {
	srv, cfg := keptSetup(t)
	dial(t, cfg).Close()
	dial(t, cfg).Close()
	wantLogins(t, srv, 1, "logins = %d, want 1")
	// Another key pinned for the machine: the kept connection's key is
	// not it, so the keeper's dial fails and Dial's own reports it.
	other := newEd25519Signer(t).PublicKey()
	line := "127.0.0.1 " + string(ssh.MarshalAuthorizedKey(other))
	if err := os.WriteFile(cfg.KnownHostsPath, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Dial(ctx10(t), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("a re-pinned machine: want *HostKeyError, got %v", err)
	}
}

// No keeper there (and none to start): Dial connects as ever.
func TestKeeperAbsentDialsDirectly(t *testing.T) {
	srv, cfg := setup(t, serverOpts{})
	cfg.Keep = &Keep{Socket: filepath.Join(t.TempDir(), "none.sock"), Persist: time.Minute}
	var log strings.Builder
	cfg.Transcript = &log
	c := dial(t, cfg)
	if c.Kept() {
		t.Fatal("kept without a keeper")
	}
	if !strings.Contains(log.String(), "connecting without the keeper: ") {
		t.Errorf("the transcript does not say why the keeper was not used:\n%s", log.String())
	}
	if res, err := c.Run(ctx10(t), "echo ok"); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("%q %v", res.Stdout, err)
	}
	if settledLogins(srv) != 1 {
		t.Fatal("not one login")
	}
}

func TestKeepable(t *testing.T) {
	k := &Keep{Socket: "/x.sock", Persist: time.Minute}
	for _, tc := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"key", Config{Keep: k}, true},
		{"no keeper", Config{}, false},
		{"persist 0", Config{Keep: &Keep{Socket: "/x.sock"}}, false},
		{"password: never handed to another process", Config{Keep: k, Access: Access{Password: []byte("pw")}}, false},
		{"sudo password", Config{Keep: k, Access: Access{SudoPassword: []byte("pw")}}, false},
		{"jump host", Config{Keep: k, Access: Access{Dial: func(context.Context, string) (net.Conn, error) { return nil, nil }}}, false},
	} {
		if got := keepable(tc.cfg); got != tc.want {
			t.Errorf("%s: keepable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The keeper refuses a directory others may enter, and ends when its
// socket is removed (the store deleted).
func TestKeeperPrivateDirAndEnd(t *testing.T) {
	dir, err := os.MkdirTemp("", "keep")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o755)
	if err := ServeKeeper(context.Background(), filepath.Join(open, "k.sock")); err == nil {
		t.Fatal("served from a directory others may enter")
	}
	sock := filepath.Join(dir, "run", "k.sock")
	done := make(chan error, 1)
	go func() { done <- ServeKeeper(context.Background(), sock) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no socket")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A second keeper on the same socket leaves at once.
	if err := ServeKeeper(context.Background(), sock); err != nil {
		t.Fatalf("second keeper: %v", err)
	}
	os.Remove(sock)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the keeper did not end when its socket was removed")
	}
}

// A connection the run forgot (the login user's groups changed) is not
// used again: the next Dial logs in afresh.
func TestKeeperForget(t *testing.T) {
	srv, cfg := keptSetup(t)
	c := dial(t, cfg)
	c.Forget()
	if res, err := c.Run(ctx10(t), "echo still"); err != nil || string(res.Stdout) != "still\n" {
		t.Fatalf("the forgetting run lost its connection: %q %v", res.Stdout, err)
	}
	c.Close()
	c2 := dial(t, cfg)
	if !c2.Kept() {
		t.Fatal("the new connection is not kept")
	}
	wantLogins(t, srv, 2, "logins = %d, want 2 (a fresh one after Forget)")
	c2.Close()
	dial(t, cfg).Close()
	wantLogins(t, srv, 2, "logins = %d after a run that forgot nothing, want still 2")
}

// A run that forgot its connection and logs in again at once (cluster up,
// right after the login user joined the docker group) gets a new login;
// the keeper then keeps that one, and does not log in once more as the
// run ends.
func TestKeeperForgetThenLoginAgain(t *testing.T) {
	srv, cfg := keptSetup(t)
	c := dial(t, cfg)
	c.Forget()
	fresh := dial(t, cfg)
	if !fresh.Kept() {
		t.Fatal("the new login is not kept")
	}
	wantLogins(t, srv, 2, "logins = %d, want 2 (a new one after Forget)")
	if res, err := c.Run(ctx10(t), "echo still"); err != nil || string(res.Stdout) != "still\n" {
		t.Fatalf("the forgotten connection failed while its run still uses it: %q %v", res.Stdout, err)
	}
	c.Close()
	fresh.Close()
	next := dial(t, cfg)
	if res, err := next.Run(ctx10(t), "echo again"); err != nil || string(res.Stdout) != "again\n" {
		t.Fatalf("the next run on the kept login: %q %v", res.Stdout, err)
	}
	next.Close()
	wantLogins(t, srv, 2, "logins = %d after the next run, want still 2 (the new login kept, no renewal)")
}

// A kept connection is not used once the machine shows another host key:
// the run's own Dial then refuses the key, as it would without a keeper.
func TestKeeperHostKeyReplaced(t *testing.T) {
	srv, cfg := keptSetup(t)
	dial(t, cfg).Close()
	key := newEd25519Signer(t)
	srv.cfg.AddHostKey(key) // replaces the ed25519 key
	srv.setKeyFiles(key)    // as ssh-keygen -A does
	_, err := Dial(ctx10(t), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("a replaced host key behind a kept connection: want *HostKeyError, got %v", err)
	}
	wantLogins(t, srv, 1, "logins = %d, want 1")
}

// A kept connection is checked by reading the host's key files on it; a
// handshake asks sshd only when they do not show the verified key.
func TestKeeperChecksKeyFiles(t *testing.T) {
	srv, cfg := keptSetup(t)
	dial(t, cfg).Close()
	dial(t, cfg).Close()
	if n := srv.conns.Load(); n != 1 {
		t.Fatalf("the key files showed the verified key, yet %d connections were made, want 1", n)
	}
	srv.setKeyFiles() // sshd_config keeps them elsewhere
	c := dial(t, cfg)
	if !c.Kept() {
		t.Fatal("the connection is not the keeper's")
	}
	c.Close()
	if n := srv.conns.Load(); n != 2 {
		t.Fatalf("without the key files: %d connections, want 2 (the handshake that checks the key)", n)
	}
	wantLogins(t, srv, 1, "logins = %d, want 1")
}

// A keeper that cannot start costs a run nothing: Dial connects on its own
// at once, and the run tries to start it once however many hosts it has.
func TestKeeperThatFailsToStart(t *testing.T) {
	srv, cfg := setup(t, serverOpts{})
	dir := t.TempDir()
	count := filepath.Join(dir, "starts")
	cfg.Keep = &Keep{Socket: filepath.Join(dir, "k.sock"), Persist: time.Minute,
		Command: []string{"/bin/sh", "-c", "echo x >> " + count + "; exit 1"}}
	start := time.Now()
	for i := 0; i < 3; i++ {
		c := dial(t, cfg)
		if c.Kept() {
			t.Fatal("kept without a keeper")
		}
		c.Close()
	}
	if d := time.Since(start); d > keeperStart {
		t.Errorf("three dials took %s: the failed keeper was waited for", d)
	}
	if b, _ := os.ReadFile(count); strings.Count(string(b), "x") != 1 {
		t.Errorf("the keeper was started %d times, want once", strings.Count(string(b), "x"))
	}
	wantLogins(t, srv, 3, "logins = %d, want 3")
}

// A machine removed from its store (its known_hosts gone) is not kept
// logged in: its connection closes within a second of its run's end.
func TestKeeperDropsForgottenMachine(t *testing.T) {
	srv, cfg := keptSetup(t)
	dial(t, cfg).Close()
	if settledLogins(srv) != 1 || srv.live.Load() != 1 {
		t.Fatalf("kept connections = %d, want 1 before the machine is forgotten", srv.live.Load())
	}
	if err := os.Remove(cfg.KnownHostsPath); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.live.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the forgotten machine's connection is still open")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A request that names a device or a FIFO as a key file does not hold the
// keeper: identity reads regular files only, and a bounded part of them.
func TestKeptRequestIdentityReadsRegularFilesOnly(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := keptRequest{Endpoint: remote.Endpoint{KeyPath: key}, KnownHostsPath: "/dev/zero", ExtraKeyPaths: []string{fifo}}
	done := make(chan string)
	go func() { done <- r.identity() }()
	var first string
	select {
	case first = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("identity did not return: it reads /dev/zero or waits on a FIFO")
	}
	if err := os.WriteFile(key, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r.identity() == first {
		t.Error("a changed key file left the identity unchanged")
	}
}

// FuzzKeptRequest: whatever a peer sends as a request, decoding it and
// checking the configuration it names never panics.
func FuzzKeptRequest(f *testing.F) {
	f.Add([]byte(`{"endpoint":{"host":"10.0.0.1","port":22,"user":"u","keyPath":"/nonexistent"},"knownHostsPath":"/nonexistent","persist":300000000000}`))
	f.Add([]byte(`{"endpoint":{"host":"","port":-1},"extraKeyPaths":["", "\u0000"]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var kr keptRequest
		if json.Unmarshal(b, &kr) != nil {
			return
		}
		cfg := kr.config()
		_ = cfg.check()
	})
}

// FuzzHasKey: whatever the host's key files hold, reading them ends, and
// finds the key only where a line is the key.
func FuzzHasKey(f *testing.F) {
	signer, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		f.Fatal(err)
	}
	key := signer.PublicKey()
	line := ssh.MarshalAuthorizedKey(key)
	f.Add(line)
	f.Add(append([]byte("# comment\nssh-rsa garbage\n"), line...))
	f.Add([]byte("ssh-ed25519 AAAA\x00\n\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		// (base64 decoding skips carriage returns)
		if hasKey(out, key) && !bytes.Contains(bytes.ReplaceAll(out, []byte("\r"), nil), bytes.TrimSpace(line)[len("ssh-ed25519 "):]) {
			t.Fatalf("found the key in %q, which does not hold it", out)
		}
	})
}
