package sshrun

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// testServer is a minimal in-process sshd: exec via /bin/sh -c, the sftp
// subsystem, and direct-streamlocal forwarding.
type testServer struct {
	t      *testing.T
	ln     net.Listener
	addr   string
	port   int
	home   string // cwd of commands and SFTP working directory
	env    []string
	cfg    *ssh.ServerConfig
	conns  atomic.Int32 // TCP connections accepted
	logins atomic.Int32 // connections that logged in
	live   atomic.Int32 // logged-in connections still open
	drop   atomic.Int32 // close this many new connections before the handshake

	tcpForwards atomic.Int32 // direct-tcpip channels served (as a jump host)
	hostKeys    []ssh.Signer
	// keyFiles is what the host's /etc/ssh/ssh_host_*_key.pub hold (what
	// hostKeysCmd prints); none: the command fails.
	keyFiles atomic.Pointer[string]

	mu   sync.Mutex
	open []net.Conn
}

type serverOpts struct {
	addr       string // default 127.0.0.1:0
	hostKeys   []ssh.Signer
	authorized ssh.PublicKey
	env        []string
	drop       int32
	password   string // accepted by "password" (and kbdInteractive)
	kbdOnly    bool   // ask the password by keyboard-interactive only
}

func newTestServer(t *testing.T, o serverOpts) *testServer {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	if len(o.hostKeys) == 0 {
		o.hostKeys = []ssh.Signer{newEd25519Signer(t)}
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, ln: ln, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port, home: t.TempDir(), env: o.env}
	s.drop.Store(o.drop)
	s.hostKeys = o.hostKeys
	s.setKeyFiles(o.hostKeys...)
	var authorized []byte
	if o.authorized != nil {
		authorized = o.authorized.Marshal()
	}
	s.cfg = &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if authorized != nil && string(key.Marshal()) == string(authorized) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	addPasswordAuth(s.cfg, o)
	for _, k := range o.hostKeys {
		s.cfg.AddHostKey(k)
	}
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.open {
		c.Close()
	}
}

func (s *testServer) serve() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		if s.drop.Add(-1) >= 0 {
			nc.Close()
			continue
		}
		s.mu.Lock()
		s.open = append(s.open, nc)
		s.mu.Unlock()
		go s.handle(nc)
	}
}

func (s *testServer) handle(nc net.Conn) {
	_, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		nc.Close()
		return
	}
	s.logins.Add(1)
	s.live.Add(1)
	defer s.live.Add(-1)
	go ssh.DiscardRequests(reqs) // answers keepalives with "false", which is a reply
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			go s.session(nch)
		case "direct-streamlocal@openssh.com":
			go s.streamLocal(nch)
		case "direct-tcpip":
			go s.directTCP(nch)
		default:
			nch.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
}

func (s *testServer) session(nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	var mu sync.Mutex
	var running *exec.Cmd
	pty := false // a pty-req came: stderr goes to stdout, as on a terminal
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		if running != nil {
			syscall.Kill(-running.Process.Pid, syscall.SIGKILL)
		}
	}
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			if p.Command == hostKeysCmd {
				req.Reply(true, nil)
				status := uint32(1)
				if files := s.keyFiles.Load(); files != nil {
					io.WriteString(ch, *files)
					status = 0
				}
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
				ch.Close()
				continue
			}
			cmd := exec.Command("/bin/sh", "-c", p.Command)
			cmd.Dir = s.home
			cmd.Env = append(os.Environ(), s.env...)
			cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
			if pty {
				cmd.Env = append(cmd.Env, "TEST_PTY=1")
				cmd.Stderr = ch
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stdin, _ := cmd.StdinPipe()
			if err := cmd.Start(); err != nil {
				req.Reply(false, nil)
				continue
			}
			mu.Lock()
			running = cmd
			mu.Unlock()
			req.Reply(true, nil)
			go func() {
				io.Copy(stdin, ch)
				stdin.Close()
			}()
			go func() {
				cmd.Wait()
				mu.Lock()
				running = nil
				mu.Unlock()
				code := cmd.ProcessState.ExitCode()
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int(ws.Signal())
				}
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
				ch.Close()
			}()
		case "subsystem":
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() {
				srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.home))
				if err == nil {
					srv.Serve()
					srv.Close()
				}
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
				ch.Close()
			}()
		case "pty-req":
			pty = true
			req.Reply(true, nil)
		case "signal":
			kill()
			if req.WantReply {
				req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				req.Reply(req.Type == "env", nil)
			}
		}
	}
	kill() // channel closed by the client
}

func (s *testServer) streamLocal(nch ssh.NewChannel) {
	var p struct {
		SocketPath string
		Reserved0  string
		Reserved1  uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
		nch.Reject(ssh.Prohibited, "bad payload")
		return
	}
	uc, err := net.Dial("unix", p.SocketPath)
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		uc.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{})
	go func() {
		io.Copy(uc, ch)
		uc.(*net.UnixConn).CloseWrite()
		close(done)
	}()
	io.Copy(ch, uc)
	ch.CloseWrite()
	<-done
	ch.Close()
	uc.Close()
}

func newEd25519Signer(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newECDSASigner(t *testing.T) ssh.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newClientKey writes a fresh private key file made by GenerateKey and
// returns its path and public key.
func newClientKey(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	return path, pk
}

// freezeProxy forwards TCP to target until frozen, then swallows traffic
// without closing anything: a connection that died silently.
type freezeProxy struct {
	ln     net.Listener
	frozen atomic.Bool
	hold   chan struct{}
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, hold: make(chan struct{})}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		close(p.hold)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, a, b)
			mu.Unlock()
			go p.pipe(a, b)
			go p.pipe(b, a)
		}
	}()
	return p
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.frozen.Load() {
			<-p.hold
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// cfgHostKey is the server's first host key.
func (s *testServer) cfgHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	return s.hostKeys[0].PublicKey()
}

// setKeyFiles makes the host's public key files hold keys (none: no
// files).
func (s *testServer) setKeyFiles(keys ...ssh.Signer) {
	if len(keys) == 0 {
		s.keyFiles.Store(nil)
		return
	}
	var b strings.Builder
	for _, k := range keys {
		b.Write(ssh.MarshalAuthorizedKey(k.PublicKey()))
	}
	files := b.String()
	s.keyFiles.Store(&files)
}
