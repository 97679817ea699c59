package sshrun

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/remote"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/shoal-dev/shoal/internal/shell"
)

func setup(t *testing.T, o serverOpts) (*testServer, Config) {
	t.Helper()
	keyPath, pub := newClientKey(t)
	o.authorized = pub
	srv := newTestServer(t, o)
	return srv, Config{
		Endpoint: remote.Endpoint{
			Host:    "127.0.0.1",
			Port:    srv.port,
			User:    "root",
			KeyPath: keyPath,
		},

		KnownHostsPath: filepath.Join(t.TempDir(), "known_hosts"),
	}
}

func dial(t *testing.T, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fakeBin makes a directory holding executable scripts, for PATH.
func fakeBin(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func pathEnv(dir string) string { return "PATH=" + dir + ":" + os.Getenv("PATH") }

func TestRunExitCodesAndStreams(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	ctx := ctx10(t)

	res, err := c.Run(ctx, "echo out; echo err >&2")
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.ExitCode != 0 {
		t.Fatalf("got %+v", res)
	}

	res, err = c.Run(ctx, "echo partial; exit 7")
	var re *RunError
	if !errors.As(err, &re) || re.ExitCode != 7 {
		t.Fatalf("want RunError status 7, got %v", err)
	}
	if res.ExitCode != 7 || string(res.Stdout) != "partial\n" {
		t.Fatalf("result not filled on failure: %+v", res)
	}
	if c.Host() != "127.0.0.1" || c.User() != "root" {
		t.Fatalf("Host/User = %q/%q", c.Host(), c.User())
	}
}

func TestRunErrorTailAndRedaction(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	var transcript bytes.Buffer
	cfg.Transcript = &transcript
	cfg.Redactor = &Redactor{}
	cfg.Redactor.Add("hunter2")
	c := dial(t, cfg)

	cmd := `i=1; while [ $i -le 40 ]; do echo "line $i" >&2; i=$((i+1)); done; echo "token hunter2" >&2; echo "out hunter2"; exit 3`
	res, err := c.Run(ctx10(t), cmd+" # hunter2")
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("want *RunError, got %v", err)
	}
	if re.Host != "127.0.0.1" || re.ExitCode != 3 {
		t.Fatalf("host/code: %+v", re)
	}
	if strings.Contains(re.Cmd, "hunter2") || !strings.Contains(re.Cmd, "# [REDACTED]") {
		t.Fatalf("cmd not redacted: %q", re.Cmd)
	}
	lines := strings.Split(re.Stderr, "\n")
	if len(lines) != stderrTailLines || lines[0] != "line 27" || lines[len(lines)-1] != "token [REDACTED]" {
		t.Fatalf("stderr tail wrong (%d lines): %q", len(lines), re.Stderr)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `on 127.0.0.1: command "`) || !strings.Contains(msg, "exited with status 3\n    line 27\n") || strings.Contains(msg, "hunter2") {
		t.Fatalf("Error() = %q", msg)
	}
	if !bytes.Contains(res.Stderr, []byte("token hunter2")) {
		t.Fatal("Result must keep the raw output")
	}
	log := transcript.String()
	if strings.Contains(log, "hunter2") || !strings.Contains(log, "out [REDACTED]") || !strings.Contains(log, "stderr: token [REDACTED]") || !strings.Contains(log, "--- exit 3 after") {
		t.Fatalf("transcript:\n%s", log)
	}
}

func TestRunCancelKillsCommand(t *testing.T) {
	srv, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(ctx, "echo $$ > pid; exec sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancel took %s", d)
	}
	b, err := os.ReadFile(filepath.Join(srv.home, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(3 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("remote sleep %d still running after cancel", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res, err := c.Run(ctx10(t), "echo still"); err != nil || string(res.Stdout) != "still\n" {
		t.Fatalf("connection unusable after cancel: %v", err)
	}
}

func TestAuthFailureNotRetried(t *testing.T) {
	srv, cfg := setup(t, serverOpts{})
	cfg.KeyPath, _ = newClientKey(t) // not the authorized one
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, cfg)
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("want *AuthError, got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("auth failure took %s: retried?", d)
	}
	if n := srv.conns.Load(); n != 1 {
		t.Fatalf("server saw %d connections, want 1", n)
	}
	want := fmt.Sprintf("ssh: user root on 127.0.0.1:%d: authentication failed (key %s)", srv.port, cfg.KeyPath)
	if !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("Error() = %q, want prefix %q", err, want)
	}
}

func TestTrustOnFirstUsePins(t *testing.T) {
	hostKey := newEd25519Signer(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{hostKey}})
	c := dial(t, cfg)
	if Fingerprint(c.HostKey()) != Fingerprint(hostKey.PublicKey()) {
		t.Fatal("HostKey() is not the server's key")
	}
	st, err := os.Stat(cfg.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts mode %v", st.Mode())
	}
	b, _ := os.ReadFile(cfg.KnownHostsPath)
	want := knownhosts.Line([]string{fmt.Sprintf("[127.0.0.1]:%d", srv.port)}, hostKey.PublicKey()) + "\n"
	if string(b) != want {
		t.Fatalf("known_hosts = %q, want %q", b, want)
	}
	dial(t, cfg)
	if b2, _ := os.ReadFile(cfg.KnownHostsPath); !bytes.Equal(b, b2) {
		t.Fatalf("second connect changed known_hosts: %q", b2)
	}
}

func TestHostKeyChanged(t *testing.T) {
	keyA, keyB := newEd25519Signer(t), newEd25519Signer(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{keyA}})
	dial(t, cfg).Close()
	srv.Close()

	// Same address, new host key: a rebuilt machine or an attacker.
	srv2 := newTestServer(t, serverOpts{addr: srv.addr, hostKeys: []ssh.Signer{keyB}, authorized: mustPub(t, cfg.KeyPath)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("want *HostKeyError, got %v", err)
	}
	if time.Since(start) > 3*time.Second || srv2.conns.Load() != 1 {
		t.Fatal("host key mismatch was retried")
	}
	fa, fb := Fingerprint(keyA.PublicKey()), Fingerprint(keyB.PublicKey())
	if hke.Pinned != fa || hke.Offered != fb || hke.FirstContact || hke.KnownHostsPath != cfg.KnownHostsPath {
		t.Fatalf("fields: %+v", hke)
	}
	for _, s := range []string{fa, fb, cfg.KnownHostsPath, "ssh-keygen -R"} {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("Error() lacks %q:\n%s", s, err)
		}
	}
}

func mustPub(t *testing.T, keyPath string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return s.PublicKey()
}

func TestFingerprintMismatchOnFirstContact(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	other := Fingerprint(newEd25519Signer(t).PublicKey())
	cfg.HostKeyFingerprint = other
	_, err := Dial(ctx10(t), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) || !hke.FirstContact || hke.Pinned != other {
		t.Fatalf("want first-contact HostKeyError, got %v", err)
	}
	if _, err := os.Stat(cfg.KnownHostsPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("something was pinned: %v", err)
	}
}

// A host with several key types may first offer one the fingerprint is not
// of; Dial must try the others rather than fail.
func TestFingerprintOfSecondKeyType(t *testing.T) {
	ed, ec := newEd25519Signer(t), newECDSASigner(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{ed, ec}})
	cfg.HostKeyFingerprint = strings.TrimPrefix(Fingerprint(ec.PublicKey()), "SHA256:") // bare form accepted
	c := dial(t, cfg)
	if c.HostKey().Type() != ec.PublicKey().Type() {
		t.Fatalf("connected with %s", c.HostKey().Type())
	}
	if n := srv.conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (ed25519 refused, then ecdsa)", n)
	}
	b, _ := os.ReadFile(cfg.KnownHostsPath)
	if strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), ec.PublicKey().Type()) {
		t.Fatalf("known_hosts = %q", b)
	}
}

// With several host keys the server would use the client's preferred type;
// pinning either type must make that type the one negotiated.
func TestPinnedKeyTypeIsNegotiated(t *testing.T) {
	ed, ec := newEd25519Signer(t), newECDSASigner(t)
	for _, pinned := range []ssh.Signer{ed, ec} {
		srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{ed, ec}})
		line := knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, pinned.PublicKey()) + "\n"
		if err := os.WriteFile(cfg.KnownHostsPath, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		c := dial(t, cfg)
		if Fingerprint(c.HostKey()) != Fingerprint(pinned.PublicKey()) {
			t.Fatalf("pinned %s, got %s key", pinned.PublicKey().Type(), c.HostKey().Type())
		}
	}
}

func TestPinnedKeyTypeGone(t *testing.T) {
	srv, cfg := setup(t, serverOpts{}) // ed25519 only
	ec := newECDSASigner(t)
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, ec.PublicKey()) + "\n"
	if err := os.WriteFile(cfg.KnownHostsPath, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Dial(ctx10(t), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.Offered != "" || hke.Pinned != Fingerprint(ec.PublicKey()) {
		t.Fatalf("want HostKeyError for missing key type, got %v", err)
	}
	if !strings.Contains(err.Error(), "no longer offers") {
		t.Fatalf("Error() = %s", err)
	}
}

func TestDialRetriesUntilListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	keyPath, pub := newClientKey(t)
	cfg := Config{
		Endpoint: remote.Endpoint{
			Host:    "127.0.0.1",
			Port:    ln.Addr().(*net.TCPAddr).Port,
			User:    "root",
			KeyPath: keyPath,
		},
		KnownHostsPath: filepath.Join(t.TempDir(), "known_hosts")}

	started := make(chan struct{})
	go func() {
		time.Sleep(700 * time.Millisecond)
		newTestServer(t, serverOpts{addr: addr, authorized: pub})
		close(started)
	}()
	start := time.Now()
	c := dial(t, cfg)
	<-started
	if time.Since(start) < 600*time.Millisecond {
		t.Fatal("connected before the server existed?")
	}
	if res, err := c.Run(ctx10(t), "echo up"); err != nil || string(res.Stdout) != "up\n" {
		t.Fatalf("run after retry: %v", err)
	}
}

func TestDialRetriesEOFDuringHandshake(t *testing.T) {
	srv, cfg := setup(t, serverOpts{drop: 2}) // sshd up but closing connections
	dial(t, cfg)
	if n := srv.conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

func TestDialGivesUpWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	keyPath, _ := newClientKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: port, User: "root", KeyPath: keyPath}, KnownHostsPath: filepath.Join(t.TempDir(), "kh")})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("want deadline + last error refused, got %v", err)
	}
}

func TestDialConfigErrors(t *testing.T) {
	keyPath, _ := newClientKey(t)
	for name, cfg := range map[string]Config{
		"no host key policy": {Endpoint: remote.Endpoint{Host: "h", User: "root", KeyPath: keyPath}},
		"bad fingerprint":    {Endpoint: remote.Endpoint{Host: "h", User: "root", KeyPath: keyPath, HostKeyFingerprint: "MD5:aa:bb"}},
		"no user":            {Endpoint: remote.Endpoint{Host: "h", KeyPath: keyPath}, KnownHostsPath: "/x"},
		"no credentials":     {Endpoint: remote.Endpoint{Host: "h", User: "root"}, KnownHostsPath: "/x"},
	} {
		start := time.Now()
		if _, err := Dial(ctx10(t), cfg); err == nil || time.Since(start) > time.Second {
			t.Errorf("%s: err=%v after %s", name, err, time.Since(start))
		}
	}
}

func TestAgentAuth(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, serverOpts{authorized: signer.PublicKey()})
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	c := dial(t, Config{
		Endpoint: remote.Endpoint{
			Host:     "127.0.0.1",
			Port:     srv.port,
			User:     "root",
			UseAgent: true,
		},
		KnownHostsPath: filepath.Join(t.TempDir(), "kh")})
	if res, err := c.Run(ctx10(t), "echo agent"); err != nil || string(res.Stdout) != "agent\n" {
		t.Fatalf("run: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	srv, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	ctx := ctx10(t)
	dir := t.TempDir()
	dst := filepath.Join(dir, "conf")
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := inode(t, dst)

	if err := c.WriteFile(ctx, dst, []byte("new contents\n"), 0o640, ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "new contents\n" {
		t.Fatalf("content %q", b)
	}
	st, _ := os.Stat(dst)
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 0 || sys.Gid != 0 {
		t.Fatalf("mode %v uid %d gid %d", st.Mode(), sys.Uid, sys.Gid)
	}
	if inode(t, dst) == before {
		t.Fatal("file rewritten in place, want rename")
	}
	assertOnly(t, dir, "conf")
	assertOnly(t, srv.home) // the upload temp is gone

	err := c.WriteFile(ctx, filepath.Join(dir, "missing", "f"), []byte("x"), 0o644, "")
	if err == nil || !strings.Contains(err.Error(), "parent directory "+filepath.Join(dir, "missing")+" does not exist") {
		t.Fatalf("missing parent: %v", err)
	}
	assertOnly(t, srv.home)
}

func TestWriteFileBindMountFallback(t *testing.T) {
	// mv fails like renaming over a bind-mounted /etc/hosts does.
	bin := fakeBin(t, map[string]string{"mv": `echo "mv: cannot move '$2' to '$3': Device or resource busy" >&2; exit 1`})
	srv, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	c := dial(t, cfg)
	dir := t.TempDir()
	dst := filepath.Join(dir, "hosts")
	if err := os.WriteFile(dst, []byte("127.0.0.1 localhost\nold line that is longer\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := inode(t, dst)
	if err := c.WriteFile(ctx10(t), dst, []byte("10.0.0.1 node1\n"), 0o644, ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "10.0.0.1 node1\n" {
		t.Fatalf("content %q", b)
	}
	if inode(t, dst) != before {
		t.Fatal("want in-place rewrite on EBUSY")
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", st.Mode())
	}
	assertOnly(t, dir, "hosts")
	assertOnly(t, srv.home)
}

func TestWriteFileThroughSudo(t *testing.T) {
	logf := filepath.Join(t.TempDir(), "sudo.log")
	bin := fakeBin(t, map[string]string{"sudo": `echo "$*" >> ` + logf + `; [ "$1" = -n ] && shift; exec "$@"`})
	_, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	cfg.User = "deploy"
	c := dial(t, cfg)
	ctx := ctx10(t)

	if got := c.Sudo("echo 'hi'"); got != `sudo -n sh -c 'echo '\''hi'\'''` {
		t.Fatalf("Sudo = %s", got)
	}
	res, err := c.RunSudo(ctx, "echo root")
	if err != nil || string(res.Stdout) != "root\n" {
		t.Fatalf("RunSudo: %v %q", err, res.Stdout)
	}
	dst := filepath.Join(t.TempDir(), "owned")
	if err := c.WriteFile(ctx, dst, []byte("x"), 0o600, "nobody"); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(dst)
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
		t.Fatalf("owner uid %d, want nobody", uid)
	}
	b, _ := os.ReadFile(dst)
	if string(b) != "x" {
		t.Fatalf("content %q", b)
	}
	log, _ := os.ReadFile(logf)
	if n := strings.Count(string(log), "-n sh -c"); n != 2 {
		t.Fatalf("sudo ran %d times, want 2:\n%s", n, log)
	}
}

// TestSudoTTY: sudo with requiretty refuses without a terminal; after
// SetSudoTTY the root commands get a pty, and their errors carry the merged
// output.
func TestSudoTTY(t *testing.T) {
	checkSudoTTY(t, dial(t, ttySudoConfig(t)))
}

// ttySudoConfig is a host whose sudo refuses to run without a terminal
// (CentOS 7's `Defaults requiretty`).
func ttySudoConfig(t *testing.T) Config {
	bin := fakeBin(t, map[string]string{"sudo": `[ "$TEST_PTY" = 1 ] || { echo "sudo: sorry, you must have a tty to run sudo" >&2; exit 1; }; [ "$1" = -n ] && shift; exec "$@"`})
	_, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	cfg.User = "deploy"
	return cfg
}

func checkSudoTTY(t *testing.T, c *Client) {
	t.Helper()
	ctx := ctx10(t)
	_, err := c.RunSudo(ctx, "echo root")
	var re *RunError
	if !errors.As(err, &re) || !strings.Contains(re.Stderr, "must have a tty") {
		t.Fatalf("without a pty: want sudo's refusal, got %v", err)
	}
	c.SetSudoTTY(true)
	res, err := c.RunSudo(ctx, "echo root")
	if err != nil || string(res.Stdout) != "root\n" {
		t.Fatalf("with a pty: %v %q", err, res.Stdout)
	}
	if _, err := c.Run(ctx, `[ -z "$TEST_PTY" ]`); err != nil {
		t.Fatalf("a plain Run got a pty too: %v", err)
	}
	_, err = c.RunSudo(ctx, "echo boom >&2; exit 3")
	if !errors.As(err, &re) || re.ExitCode != 3 || !strings.Contains(re.Stderr, "boom") {
		t.Fatalf("with a pty, the error should carry the merged output: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "f")
	if err := c.WriteFile(ctx, dst, []byte("x"), 0o644, ""); err != nil {
		t.Fatalf("WriteFile through sudo with a pty: %v", err)
	}
}

func TestRunSudoPasswordRequired(t *testing.T) {
	bin := fakeBin(t, map[string]string{"sudo": `echo "sudo: a password is required" >&2; exit 1`})
	_, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	cfg.User = "deploy"
	c := dial(t, cfg)
	_, err := c.RunSudo(ctx10(t), "true")
	var se *SudoError
	var re *RunError
	if !errors.As(err, &se) || !errors.As(err, &re) || re.ExitCode != 1 {
		t.Fatalf("want SudoError wrapping RunError, got %v", err)
	}
	for _, s := range []string{"user deploy", "127.0.0.1", "passwordless sudo", "/etc/sudoers.d/", "NOPASSWD"} {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("Error() lacks %q: %s", s, err)
		}
	}
}

func TestReadFile(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	var transcript bytes.Buffer
	cfg.Transcript = &transcript
	c := dial(t, cfg)
	ctx := ctx10(t)
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte("s3cr3t\x00bin"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := c.ReadFile(ctx, f)
	if err != nil || string(b) != "s3cr3t\x00bin" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if strings.Contains(transcript.String(), "s3cr3t") {
		t.Fatal("file contents leaked into the transcript")
	}
	_, err = c.ReadFile(ctx, f+".missing")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// echoSocket listens on a unix socket that echoes what it is sent.
func echoSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "echo.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(conn, conn); conn.Close() }()
		}
	}()
	return sock
}

func TestDialUnix(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	checkDialUnix(t, dial(t, cfg))
}

// checkDialUnix asks c for an echo socket on the host, and for one that
// is not there.
func checkDialUnix(t *testing.T, c *Client) {
	t.Helper()
	sock := echoSocket(t)
	conn, err := c.DialUnix(ctx10(t), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	if _, err := c.DialUnix(ctx10(t), sock+".nope"); err == nil {
		t.Fatal("dial to missing socket succeeded")
	}
}

func TestRunInputStreams(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	data := make([]byte, 3<<20)
	rand.Read(data)
	res, err := c.RunInput(ctx10(t), "cat", bytes.NewReader(data))
	if err != nil || !bytes.Equal(res.Stdout, data) {
		t.Fatalf("cat round trip: %v, %d bytes back", err, len(res.Stdout))
	}
	res, err = c.RunInput(ctx10(t), "wc -l", strings.NewReader("a\nb\n"))
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "2" {
		t.Fatalf("wc: %v %q", err, res.Stdout)
	}
}

func TestSessionsCount(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	ctx := ctx10(t)
	for i := 0; i < 3; i++ {
		c.Run(ctx, "true")
	}
	if n := c.Sessions(); n != 3 {
		t.Fatalf("Sessions = %d, want 3", n)
	}
	dst := filepath.Join(t.TempDir(), "f")
	c.WriteFile(ctx, dst, []byte("a"), 0o644, "")
	c.WriteFile(ctx, dst, []byte("b"), 0o644, "")
	// One SFTP session reused, plus one command per write.
	if n := c.Sessions(); n != 6 {
		t.Fatalf("Sessions = %d, want 6", n)
	}
}

func TestConcurrentRuns(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	var transcript bytes.Buffer
	cfg.Transcript = &lockedWriter{w: &transcript}
	c := dial(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Run(context.Background(), fmt.Sprintf("echo %d", i))
			if err == nil && string(res.Stdout) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("run %d got %q", i, res.Stdout)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(transcript.String(), "--- exit 0"); n != 20 {
		t.Fatalf("%d transcript entries", n)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestKeepAliveDetectsDeadConnection(t *testing.T) {
	srv, cfg := setup(t, serverOpts{})
	p := newFreezeProxy(t, srv.addr)
	cfg.Port = p.ln.Addr().(*net.TCPAddr).Port
	cfg.KeepAlive = 100 * time.Millisecond
	c := dial(t, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), "sleep 30")
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	p.frozen.Store(true)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "keepalive") {
			t.Fatalf("want keepalive error, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending Run not failed by keepalive")
	}
}

func TestShellQuoteRoundTrip(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	for _, s := range []string{"", "plain", "it's", `a"b`, "$HOME `id` $(id)", "back\\slash", "new\nline", "*?[x]; rm -rf /nope"} {
		res, err := c.Run(ctx10(t), "printf %s "+ShellQuote(s))
		if err != nil || string(res.Stdout) != s {
			t.Errorf("quote %q: got %q, %v", s, res.Stdout, err)
		}
	}
	if c.Sudo("id") != "id" {
		t.Fatal("root must not be wrapped in sudo")
	}
}

func TestRedactor(t *testing.T) {
	var nilR *Redactor
	if nilR.Redact("x secret") != "x secret" {
		t.Fatal("nil Redactor must pass through")
	}
	r := &Redactor{}
	r.Add("")
	r.Add("ab1")
	r.Add("ab1-ef") // contains the shorter one: must go whole
	if got := r.Redact("1 ab1-ef 2 ab1 3"); got != "1 [REDACTED] 2 [REDACTED] 3" {
		t.Fatalf("Redact = %q", got)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Add(fmt.Sprintf("s%d", i))
			r.Redact("s1 s2 s3")
		}()
	}
	wg.Wait()
	if got := r.Redact("s7"); got != "[REDACTED]" {
		t.Fatalf("got %q", got)
	}
}

func TestGenerateKey(t *testing.T) {
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.PublicKey().Marshal(), pk.Marshal()) || pk.Type() != ssh.KeyAlgoED25519 || strings.HasSuffix(pub, "\n") {
		t.Fatalf("mismatched pair or format: %q", pub)
	}
	if !strings.Contains(string(priv), "BEGIN OPENSSH PRIVATE KEY") {
		t.Fatal("not OpenSSH PEM")
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// assertOnly fails unless dir holds exactly the named entries.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

func TestWriteFilesOneSession(t *testing.T) {
	srv, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	ctx := ctx10(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := c.Sessions()
	err := c.WriteFiles(ctx, []File{{Path: a, Data: []byte("A\n"), Mode: 0o600}, {Path: b, Data: []byte("B"), Mode: 0o644}})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{a: "A\n", b: "B"} {
		if got, _ := os.ReadFile(p); string(got) != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
	if st, _ := os.Stat(a); st.Mode().Perm() != 0o600 {
		t.Errorf("a: mode %v", st.Mode())
	}
	// One root session (and the SFTP session, once per connection).
	if n := c.Sessions() - before; n > 2 {
		t.Errorf("%d sessions for two files, want at most 2", n)
	}
	assertOnly(t, dir, "a", "b")
	assertOnly(t, srv.home)

	// The first that fails stops the rest, and the error names it.
	missing := filepath.Join(dir, "missing", "f")
	err = c.WriteFiles(ctx, []File{{Path: missing, Data: []byte("x"), Mode: 0o644}, {Path: filepath.Join(dir, "c"), Data: []byte("c"), Mode: 0o644}})
	if err == nil || !strings.Contains(err.Error(), "parent directory "+filepath.Join(dir, "missing")+" does not exist") {
		t.Fatalf("missing parent: %v", err)
	}
	assertOnly(t, dir, "a", "b")
	assertOnly(t, srv.home)
}

// DirMode makes a missing parent in the same round trip, with its mode;
// an existing one is left as it is.
func TestWriteFilesMakesParent(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	ctx := ctx10(t)
	dir := t.TempDir()
	newDir := filepath.Join(dir, "new")
	keep := filepath.Join(dir, "keep")
	if err := os.Mkdir(keep, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keep, 0o711); err != nil {
		t.Fatal(err)
	}
	err := c.WriteFiles(ctx, []File{
		{Path: filepath.Join(newDir, "f"), Data: []byte("f"), Mode: 0o644, DirMode: 0o750},
		{Path: filepath.Join(keep, "g"), Data: []byte("g"), Mode: 0o644, DirMode: 0o755},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(newDir); err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("the new parent: %v %v", st, err)
	}
	if st, _ := os.Stat(keep); st.Mode().Perm() != 0o711 {
		t.Errorf("an existing parent's mode changed: %v", st.Mode())
	}
	if got, _ := os.ReadFile(filepath.Join(newDir, "f")); string(got) != "f" {
		t.Errorf("f: %q", got)
	}
	// One file alone goes the same way.
	one := filepath.Join(dir, "one", "h")
	if err := c.WriteFiles(ctx, []File{{Path: one, Data: []byte("h"), Mode: 0o600, DirMode: 0o700}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(one); string(got) != "h" {
		t.Errorf("h: %q", got)
	}
}

// RunBatch runs commands and writes files in order in one root session and
// stops at the first op that fails, naming it.
func TestRunBatch(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	ctx := ctx10(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	f := filepath.Join(dir, "sub", "f")
	before := c.Sessions()
	err := c.RunBatch(ctx, []Op{
		{Label: "one", Cmd: "echo one >> " + shell.Quote(log)},
		{Label: "file", File: &File{Path: f, Data: []byte("data"), Mode: 0o640, DirMode: 0o700}},
		{Label: "two", Cmd: "test -f " + shell.Quote(f) + " && echo two >> " + shell.Quote(log)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(log); string(got) != "one\ntwo\n" {
		t.Errorf("log %q: the ops did not run in order", got)
	}
	if got, _ := os.ReadFile(f); string(got) != "data" {
		t.Errorf("file: %q", got)
	}
	if n := c.Sessions() - before; n > 2 {
		t.Errorf("%d sessions, want one root session (and SFTP's)", n)
	}

	// A failing op stops the batch; the error says which and keeps stderr.
	err = c.RunBatch(ctx, []Op{
		{Label: "fine", Cmd: "echo three >> " + shell.Quote(log)},
		{Label: "broken", Cmd: "echo 'it broke' >&2; exit 7"},
		{Label: "never", Cmd: "echo never >> " + shell.Quote(log)},
	})
	var be *BatchError
	if !errors.As(err, &be) || be.Label != "broken" || be.Index != 1 || !strings.Contains(err.Error(), "it broke") {
		t.Fatalf("a failed op: %v", err)
	}
	var re *RunError
	if !errors.As(err, &re) || re.ExitCode != 7 {
		t.Errorf("the exit code is lost: %v", err)
	}
	if got, _ := os.ReadFile(log); string(got) != "one\ntwo\nthree\n" {
		t.Errorf("log %q: an op after the failed one ran", got)
	}
	// A file whose parent is missing (and not asked to be made).
	err = c.RunBatch(ctx, []Op{{Label: "w", File: &File{Path: filepath.Join(dir, "none", "x"), Data: []byte("x"), Mode: 0o644}}})
	if !errors.As(err, &be) || be.Label != "w" || !strings.Contains(err.Error(), "parent directory "+filepath.Join(dir, "none")+" does not exist") {
		t.Errorf("missing parent: %v", err)
	}
}
