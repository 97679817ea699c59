package sshrun

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/remote"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// addPasswordAuth lets the test server take a password, as "password" or
// only as "keyboard-interactive".
func addPasswordAuth(cfg *ssh.ServerConfig, o serverOpts) {
	if o.password == "" {
		return
	}
	if !o.kbdOnly {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == o.password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	cfg.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		ans, err := ask("", "", []string{"Password: "}, []bool{false})
		if err != nil {
			return nil, err
		}
		if len(ans) == 1 && ans[0] == o.password {
			return nil, nil
		}
		return nil, errors.New("wrong password")
	}
}

// directTCP serves direct-tcpip: the server as a jump host.
func (s *testServer) directTCP(nch ssh.NewChannel) {
	var p struct {
		Host       string
		Port       uint32
		OriginHost string
		OriginPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
		nch.Reject(ssh.Prohibited, "bad payload")
		return
	}
	tc, err := net.Dial("tcp", net.JoinHostPort(p.Host, fmt.Sprint(p.Port)))
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		tc.Close()
		return
	}
	s.tcpForwards.Add(1)
	go ssh.DiscardRequests(reqs)
	go func() {
		io.Copy(tc, ch)
		tc.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(ch, tc)
	ch.Close()
	tc.Close()
}

func TestPasswordLoginThenKey(t *testing.T) {
	for _, kbd := range []bool{false, true} {
		t.Run(fmt.Sprintf("kbdOnly=%v", kbd), func(t *testing.T) {
			keyPath, pub := newClientKey(t)
			srv := newTestServer(t, serverOpts{password: "s3cret pw", kbdOnly: kbd, authorized: nil})
			var transcript bytes.Buffer
			cfg := Config{
				Endpoint: remote.Endpoint{
					Host:    "127.0.0.1",
					Port:    srv.port,
					User:    "root",
					KeyPath: keyPath,
				},

				KnownHostsPath: filepath.Join(t.TempDir(), "known_hosts"),
				Transcript:     &transcript, Redactor: &Redactor{},
			}
			cfg.Password = []byte("s3cret pw")
			c := dial(t, cfg)
			if !c.PasswordUsed() {
				t.Fatal("PasswordUsed = false, but the key was not authorized")
			}
			// The home of the test server is $HOME for AuthorizeKey's shell.
			t.Setenv("HOME", srv.home)
			authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
			for i := 0; i < 2; i++ {
				if err := c.AuthorizeKey(ctx10(t), authorized); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(filepath.Join(srv.home, ".ssh", "authorized_keys"))
			if err != nil || strings.Count(string(b), authorized) != 1 {
				t.Fatalf("authorized_keys: %v\n%s", err, b)
			}
			st, _ := os.Stat(filepath.Join(srv.home, ".ssh", "authorized_keys"))
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("authorized_keys mode %o", st.Mode().Perm())
			}
			if strings.Contains(transcript.String(), "s3cret") {
				t.Fatalf("password in the transcript:\n%s", transcript.String())
			}
		})
	}
}

func TestKeyLoginDoesNotUsePassword(t *testing.T) {
	_, cfg := setup(t, serverOpts{password: "pw"})
	cfg.Password = []byte("pw")
	if c := dial(t, cfg); c.PasswordUsed() {
		t.Fatal("PasswordUsed with a key that works")
	}
}

func TestWrongPasswordIsAuthError(t *testing.T) {
	srv := newTestServer(t, serverOpts{password: "right"})
	cfg := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: srv.port, User: "root"}, KnownHostsPath: filepath.Join(t.TempDir(), "kh")}
	cfg.Password = []byte("wrong-one")
	start := time.Now()
	_, err := Dial(ctx10(t), cfg)
	var ae *AuthError
	if !errors.As(err, &ae) || !ae.Password {
		t.Fatalf("want an AuthError with Password, got %v", err)
	}
	if strings.Contains(err.Error(), "wrong-one") || !strings.Contains(err.Error(), "PasswordAuthentication") {
		t.Fatalf("error: %s", err)
	}
	if srv.conns.Load() != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("a wrong password must not be retried: %d connections", srv.conns.Load())
	}
}

// fakeSudo asks for a password like sudo -S: it reads one line from stdin
// and compares it with want.
func fakeSudo(t *testing.T, want string) string {
	return fakeBin(t, map[string]string{"sudo": `
if [ "$1" = -n ]; then echo "sudo: a password is required" >&2; exit 1; fi
[ "$1 $2 $3" = "-S -k -p" ] || { echo "unexpected sudo $*" >&2; exit 9; }
shift 4
IFS= read -r pw || pw=
if [ "$pw" != '` + want + `' ]; then echo "Sorry, try again." >&2; echo "sudo: 1 incorrect password attempt" >&2; exit 1; fi
exec "$@"`})
}

func TestSudoPasswordOnStdin(t *testing.T) {
	bin := fakeSudo(t, "sudo pw")
	_, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	cfg.User = "hadoop"
	var transcript bytes.Buffer
	cfg.Transcript, cfg.Redactor = &transcript, &Redactor{}
	cfg.SudoPassword = []byte("sudo pw")
	c := dial(t, cfg)
	ctx := ctx10(t)
	res, err := c.RunSudo(ctx, "id -u >/dev/null; echo root")
	if err != nil || string(res.Stdout) != "root\n" {
		t.Fatalf("RunSudo: %v %q", err, res.Stdout)
	}
	// The command's own stdin comes after the password line.
	res, err = c.RunInput(ctx, c.Sudo("cat"), strings.NewReader("data"))
	if err != nil || string(res.Stdout) != "data" {
		t.Fatalf("stdin after the password: %v %q", err, res.Stdout)
	}
	dst := filepath.Join(t.TempDir(), "f")
	if err := c.WriteFile(ctx, dst, []byte("x"), 0o644, ""); err != nil {
		t.Fatal(err)
	}
	conn, err := c.DialCommand(ctx, c.Sudo("cat"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("DialCommand through sudo -S: %v %q", err, buf)
	}
	conn.Close()
	if strings.Contains(transcript.String(), "sudo pw") || strings.Contains(c.Sudo("x"), "pw") {
		t.Fatalf("the sudo password leaked:\n%s", transcript.String())
	}
}

func TestWrongSudoPasswordFailsAtOnce(t *testing.T) {
	bin := fakeSudo(t, "right")
	srv, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	cfg.User = "hadoop"
	cfg.SudoPassword = []byte("wrong")
	_, err := Dial(ctx10(t), cfg)
	var se *SudoError
	if !errors.As(err, &se) || !se.WrongPassword {
		t.Fatalf("want SudoError{WrongPassword}, got %v", err)
	}
	if !strings.Contains(err.Error(), "refused the password") || strings.Contains(err.Error(), "wrong\n") {
		t.Fatalf("error: %s", err)
	}
	if srv.conns.Load() != 1 {
		t.Fatalf("%d connections, want 1", srv.conns.Load())
	}
}

func TestPasswordlessSudoGetsNoPassword(t *testing.T) {
	bin := fakeBin(t, map[string]string{"sudo": `[ "$1" = -n ] || { echo "asked for a password" >&2; exit 9; }; shift; exec "$@"`})
	_, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	cfg.User = "hadoop"
	cfg.SudoPassword = []byte("unused")
	c := dial(t, cfg)
	res, err := c.RunInput(ctx10(t), c.Sudo("cat"), strings.NewReader("only this"))
	if err != nil || string(res.Stdout) != "only this" {
		t.Fatalf("%v %q", err, res.Stdout)
	}
}

func TestJumpHostShared(t *testing.T) {
	keyPath, pub := newClientKey(t)
	jump := newTestServer(t, serverOpts{authorized: pub})
	var targets []*testServer
	for i := 0; i < 3; i++ {
		targets = append(targets, newTestServer(t, serverOpts{authorized: pub}))
	}
	pool := NewJumpPool()
	defer pool.Close()
	hop := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: jump.port, User: "ops", KeyPath: keyPath}, KnownHostsPath: filepath.Join(t.TempDir(), "jump_known_hosts")}
	for _, tg := range targets {
		cfg := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: tg.port, User: "root", KeyPath: keyPath}, KnownHostsPath: filepath.Join(t.TempDir(), "kh")}
		cfg.Dial = pool.Dialer([]Config{hop})
		c := dial(t, cfg)
		if res, err := c.Run(ctx10(t), "echo hi"); err != nil || string(res.Stdout) != "hi\n" {
			t.Fatalf("through the jump host: %v %q", err, res.Stdout)
		}
	}
	if n := jump.conns.Load(); n != 1 {
		t.Fatalf("jump host got %d connections, want 1 shared", n)
	}
	if n := jump.tcpForwards.Load(); n != 3 {
		t.Fatalf("jump host forwarded %d connections, want 3", n)
	}
	if pool.Connections() != 1 {
		t.Fatalf("pool holds %d connections", pool.Connections())
	}
	b, _ := os.ReadFile(hop.KnownHostsPath)
	if !strings.Contains(string(b), fmt.Sprintf("[127.0.0.1]:%d", jump.port)) {
		t.Fatalf("the jump host's key is not pinned:\n%s", b)
	}
	pool.Close()
	if pool.Connections() != 0 {
		t.Fatal("Close left connections")
	}
}

func TestJumpHostKeyMismatch(t *testing.T) {
	keyPath, pub := newClientKey(t)
	jump := newTestServer(t, serverOpts{authorized: pub})
	target := newTestServer(t, serverOpts{authorized: pub})
	pool := NewJumpPool()
	defer pool.Close()
	hop := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: jump.port, User: "ops", KeyPath: keyPath, HostKeyFingerprint: "SHA256:" + strings.Repeat("A", 43)}}
	cfg := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: target.port, User: "root", KeyPath: keyPath}, KnownHostsPath: filepath.Join(t.TempDir(), "kh")}
	cfg.Dial = pool.Dialer([]Config{hop})
	_, err := Dial(ctx10(t), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) || !strings.Contains(err.Error(), "jump host") {
		t.Fatalf("want the jump host's HostKeyError, got %v", err)
	}
	if target.conns.Load() != 0 {
		t.Fatal("the target was reached through an unverified jump host")
	}
}

func TestJumpHostChain(t *testing.T) {
	keyPath, pub := newClientKey(t)
	j1 := newTestServer(t, serverOpts{authorized: pub})
	j2 := newTestServer(t, serverOpts{authorized: pub})
	target := newTestServer(t, serverOpts{authorized: pub})
	pool := NewJumpPool()
	defer pool.Close()
	dir := t.TempDir()
	hops := []Config{
		{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: j1.port, User: "a", KeyPath: keyPath}, KnownHostsPath: filepath.Join(dir, "j1")},
		{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: j2.port, User: "b", KeyPath: keyPath}, KnownHostsPath: filepath.Join(dir, "j2")},
	}
	cfg := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: target.port, User: "root", KeyPath: keyPath}, KnownHostsPath: filepath.Join(dir, "kh")}
	cfg.Dial = pool.Dialer(hops)
	c := dial(t, cfg)
	if _, err := c.Run(ctx10(t), "true"); err != nil {
		t.Fatal(err)
	}
	if j1.tcpForwards.Load() != 1 || j2.tcpForwards.Load() != 1 {
		t.Fatalf("forwards: j1 %d j2 %d", j1.tcpForwards.Load(), j2.tcpForwards.Load())
	}
}

func TestJumpHostReconnects(t *testing.T) {
	keyPath, pub := newClientKey(t)
	jump := newTestServer(t, serverOpts{authorized: pub})
	target := newTestServer(t, serverOpts{authorized: pub})
	pool := NewJumpPool()
	defer pool.Close()
	hop := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: jump.port, User: "ops", KeyPath: keyPath}, KnownHostsPath: filepath.Join(t.TempDir(), "kh")}
	cfg := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: target.port, User: "root", KeyPath: keyPath}, KnownHostsPath: filepath.Join(t.TempDir(), "kh")}
	cfg.Dial = pool.Dialer([]Config{hop})
	dial(t, cfg).Close()
	// The jump host drops every connection: the pool notices and dials again.
	jump.mu.Lock()
	for _, c := range jump.open {
		c.Close()
	}
	jump.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for pool.Connections() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if pool.Connections() != 0 {
		t.Fatal("the pool kept a dead jump host connection")
	}
	c := dial(t, cfg)
	if _, err := c.Run(ctx10(t), "true"); err != nil {
		t.Fatal(err)
	}
	if n := jump.conns.Load(); n != 2 {
		t.Fatalf("jump host connections: %d, want 2", n)
	}
}

// ttyFakeSudo is sudo under `Defaults requiretty` (CentOS 7): without a pty
// it refuses whatever it is asked. On a pty it wants the password want on
// stdin (sudo -S), or, with want "", none (NOPASSWD: -S reads nothing).
func ttyFakeSudo(t *testing.T, want string) string {
	check := `IFS= read -r pw || pw=
if [ "$pw" != '` + want + `' ]; then echo "Sorry, try again." >&2; echo "sudo: 1 incorrect password attempt" >&2; exit 1; fi`
	if want == "" {
		check = ""
	}
	return fakeBin(t, map[string]string{"sudo": `
[ "$TEST_PTY" = 1 ] || { echo "sudo: sorry, you must have a tty to run sudo" >&2; exit 1; }
if [ "$1" = -n ]; then
	[ -z '` + want + `' ] || { echo "sudo: a password is required" >&2; exit 1; }
	shift; exec "$@"
fi
[ "$1 $2 $3" = "-S -k -p" ] || { echo "unexpected sudo $*" >&2; exit 9; }
shift 4
` + check + `
exec "$@"`})
}

// TestSudoPasswordRequireTTY: with requiretty the password is given on a
// pty, once, and the root commands run on a pty after it.
func TestSudoPasswordRequireTTY(t *testing.T) {
	bin := ttyFakeSudo(t, "sudo pw")
	srv, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	cfg.User = "hadoop"
	var transcript bytes.Buffer
	cfg.Transcript, cfg.Redactor = &transcript, &Redactor{}
	cfg.SudoPassword = []byte("sudo pw")
	c := dial(t, cfg)
	ctx := ctx10(t)
	res, err := c.RunSudo(ctx, "echo root")
	if err != nil || string(res.Stdout) != "root\n" {
		t.Fatalf("RunSudo: %v %q", err, res.Stdout)
	}
	dst := filepath.Join(t.TempDir(), "f")
	if err := c.WriteFile(ctx, dst, []byte("x"), 0o644, ""); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if strings.Contains(transcript.String(), "sudo pw") {
		t.Fatalf("the sudo password leaked:\n%s", transcript.String())
	}
	if srv.conns.Load() != 1 {
		t.Fatalf("%d connections, want 1", srv.conns.Load())
	}

	cfg.SudoPassword = []byte("wrong")
	_, err = Dial(ctx, cfg)
	var se *SudoError
	if !errors.As(err, &se) || !se.WrongPassword {
		t.Fatalf("a wrong password with requiretty: want SudoError{WrongPassword}, got %v", err)
	}
}

// TestNoPasswdSudoRequireTTY: NOPASSWD sudo with requiretty, a password
// given anyway: it connects, and the password never reaches a command's
// stdin.
func TestNoPasswdSudoRequireTTY(t *testing.T) {
	bin := ttyFakeSudo(t, "")
	_, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	cfg.User = "hadoop"
	cfg.SudoPassword = []byte("unused pw")
	c := dial(t, cfg)
	res, err := c.RunSudo(ctx10(t), "cat; echo root")
	if err != nil || string(res.Stdout) != "root\n" {
		t.Fatalf("RunSudo: %v %q", err, res.Stdout)
	}
}

// TestJumpHostPinCheckedForEveryCaller: a machine whose jump host is pinned
// does not reuse the pooled connection another machine opened without the
// pin: its pin is checked, and a wrong one fails.
func TestJumpHostPinCheckedForEveryCaller(t *testing.T) {
	keyPath, pub := newClientKey(t)
	jump := newTestServer(t, serverOpts{authorized: pub})
	target := newTestServer(t, serverOpts{authorized: pub})
	pool := NewJumpPool()
	defer pool.Close()
	dir := t.TempDir()
	hop := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: jump.port, User: "ops", KeyPath: keyPath}, KnownHostsPath: filepath.Join(dir, "jump_kh")}
	first := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: target.port, User: "root", KeyPath: keyPath}, KnownHostsPath: filepath.Join(dir, "kh1")}
	first.Dial = pool.Dialer([]Config{hop})
	dial(t, first)

	pinned := hop
	pinned.HostKeyFingerprint = "SHA256:" + strings.Repeat("A", 43)
	second := Config{Endpoint: remote.Endpoint{Host: "127.0.0.1", Port: target.port, User: "root", KeyPath: keyPath}, KnownHostsPath: filepath.Join(dir, "kh2")}
	second.Dial = pool.Dialer([]Config{pinned})
	_, err := Dial(ctx10(t), second)
	var hke *HostKeyError
	if !errors.As(err, &hke) || !strings.Contains(err.Error(), "jump host") {
		t.Fatalf("the second machine's pin was not checked: want the jump host's HostKeyError, got %v", err)
	}
	if n := target.conns.Load(); n != 1 {
		t.Fatalf("the target got %d connections, want 1 (none through the unverified jump host)", n)
	}

	// The same pin, right this time, in a fresh known hosts file: checked
	// and shared by the callers that give it.
	pinned.HostKeyFingerprint = Fingerprint(jump.hostKeys[0].PublicKey())
	pinned.KnownHostsPath = filepath.Join(dir, "jump_kh_pinned")
	for i := 0; i < 2; i++ {
		cfg := second
		cfg.Dial = pool.Dialer([]Config{pinned})
		dial(t, cfg)
	}
	// The wrong pin failed against the key pinned by the first: no dial.
	if n := jump.conns.Load(); n != 2 {
		t.Fatalf("jump host connections: %d, want 2 (unpinned, right pin shared)", n)
	}
}
