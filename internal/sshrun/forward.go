package sshrun

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/term"
)

// SessionOptions are what `machine ssh`'s ssh options ask of a session.
type SessionOptions struct {
	// PTY asks for a pty even without a terminal here (ssh -tt); Terminal
	// asks for one when stdin is a terminal (the default, or ssh -t);
	// neither: no pty (ssh -T, or a command without -t).
	PTY, Terminal bool
	// AgentSocket, when set, forwards that ssh-agent to the session (-A).
	AgentSocket string
	// Subsystem runs cmd as an SSH subsystem (-s; sshfs's sftp).
	Subsystem bool
}

// Interactive runs cmd (a login shell when "") as `machine ssh` does, with
// the caller's streams, and returns its exit code. With a pty, a local
// terminal is put in raw mode for the time of the session.
func (c *Client) Interactive(ctx context.Context, cmd string, o SessionOptions, in io.Reader, out, errOut io.Writer) (int, error) {
	s, err := c.newSession()
	if err != nil {
		return -1, err
	}
	defer s.Close()
	if o.AgentSocket != "" {
		if err := c.forwardAgent(s, o.AgentSocket); err != nil {
			return -1, err
		}
	}
	f, _ := in.(*os.File)
	isTerm := f != nil && term.IsTerminal(int(f.Fd()))
	if o.PTY || (o.Terminal && isTerm) {
		restore, err := requestPTY(s, f, isTerm)
		if err != nil {
			return -1, err
		}
		defer restore()
	}
	if o.Subsystem {
		return runSubsystem(ctx, s, cmd, in, out, errOut)
	}
	s.Stdin, s.Stdout, s.Stderr = in, out, errOut
	if err := startSession(s, cmd); err != nil {
		return -1, err
	}
	return waitSession(ctx, s)
}

// forwardAgent forwards the ssh-agent at sock to the session (-A).
func (c *Client) forwardAgent(s *ssh.Session, sock string) error {
	if err := agent.ForwardToRemote(c.conn, sock); err != nil {
		return fmt.Errorf("agent forwarding (-A): %w", err)
	}
	if err := agent.RequestAgentForwarding(s); err != nil {
		return fmt.Errorf("agent forwarding (-A): %w", err)
	}
	return nil
}

// startSession starts cmd, or a login shell when "".
func startSession(s *ssh.Session, cmd string) error {
	if cmd == "" {
		return s.Shell()
	}
	return s.Start(cmd)
}

// runSubsystem runs an SSH subsystem (ssh -s; sftp for sshfs) with the
// caller's streams: a subsystem session is never "started", so its streams
// are copied here, until the host closes its output or ctx ends.
func runSubsystem(ctx context.Context, s *ssh.Session, name string, in io.Reader, out, errOut io.Writer) (int, error) {
	stdin, err := s.StdinPipe()
	if err != nil {
		return -1, err
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		return -1, err
	}
	stderr, err := s.StderrPipe()
	if err != nil {
		return -1, err
	}
	if err := s.RequestSubsystem(name); err != nil {
		return -1, fmt.Errorf("subsystem %s: %w", name, err)
	}
	go func() {
		io.Copy(stdin, in)
		stdin.Close()
	}()
	go io.Copy(errOut, stderr)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, stdout)
		done <- err
	}()
	select {
	case err := <-done:
		return 0, err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// requestPTY asks for a pty sized like the local terminal (80x24 without
// one) and makes that terminal raw; restore undoes it.
func requestPTY(s *ssh.Session, f *os.File, isTerm bool) (restore func(), err error) {
	w, h := 80, 24
	if isTerm {
		if tw, th, err := term.GetSize(int(f.Fd())); err == nil {
			w, h = tw, th
		}
	}
	termName := os.Getenv("TERM")
	termName = cmp.Or(termName, "xterm")
	if err := s.RequestPty(termName, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return nil, err
	}
	if !isTerm {
		return func() {}, nil
	}
	old, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	return func() { term.Restore(int(f.Fd()), old) }, nil
}

// WaitForwarding holds the connection open for its forwards (ssh -N) until
// ctx ends (nil) or the connection is lost (its error).
func (c *Client) WaitForwarding(ctx context.Context) error {
	lost := make(chan error, 1)
	go func() { lost <- c.conn.Wait() }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-lost:
		if l := c.lostErr(); l != nil {
			return l
		}
		return fmt.Errorf("on %s: the connection closed: %v", c.cfg.Host, err)
	}
}

// ForwardLocal serves ln (ssh -L): each connection is carried to target,
// dialled from the host. It returns when ctx ends or ln is closed.
func (c *Client) ForwardLocal(ctx context.Context, ln net.Listener, target string, errOut io.Writer) {
	serveForward(ctx, ln, func(ctx context.Context) (net.Conn, error) {
		return c.conn.DialContext(ctx, "tcp", target)
	}, "-L "+target, errOut)
}

// ListenRemote asks the host's sshd to listen on bind (ssh -R); its
// connections are served with ServeRemote.
func (c *Client) ListenRemote(bind string) (net.Listener, error) {
	ln, err := c.conn.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("on %s: remote forward %s: %w", c.cfg.Host, bind, err)
	}
	return ln, nil
}

// ServeRemote carries each connection of a remote listener to target,
// dialled from here.
func ServeRemote(ctx context.Context, ln net.Listener, target string, errOut io.Writer) {
	var d net.Dialer
	serveForward(ctx, ln, func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", target)
	}, "-R "+target, errOut)
}

func serveForward(ctx context.Context, ln net.Listener, dial func(context.Context) (net.Conn, error), what string, errOut io.Writer) {
	serveConns(ctx, ln, func(in net.Conn) {
		out, err := dial(ctx)
		if err != nil {
			fmt.Fprintf(errOut, "forward %s: %v\n", what, err)
			return
		}
		defer out.Close()
		pipe(ctx, in, out)
	})
}

// serveConns runs serve for each connection of ln (and closes it after)
// until ctx ends or ln is closed, then waits for them.
func serveConns(ctx context.Context, ln net.Listener, serve func(net.Conn)) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer in.Close()
			serve(in)
		}()
	}
}

// pipe copies both ways until either side ends or ctx does.
func pipe(ctx context.Context, a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	select {
	case <-done:
		<-done
	case <-ctx.Done():
	}
}
