package sshrun

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// Stream runs cmd with the caller's stdin, stdout and stderr, as `machine
// ssh NAME -- CMD` does, and returns the command's exit code.
func (c *Client) Stream(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s, err := c.newSession()
	if err != nil {
		return -1, err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	if err := s.Start(cmd); err != nil {
		return -1, err
	}
	return waitSession(ctx, s)
}

// Shell opens an interactive login shell on a pty sized like the local
// terminal, which is put in raw mode for the time of the session.
func (c *Client) Shell(ctx context.Context, in *os.File, out io.Writer, errOut io.Writer) (int, error) {
	s, err := c.newSession()
	if err != nil {
		return -1, err
	}
	defer s.Close()
	fd := int(in.Fd())
	if term.IsTerminal(fd) {
		w, h, err := term.GetSize(fd)
		if err != nil {
			w, h = 80, 24
		}
		termName := os.Getenv("TERM")
		termName = cmp.Or(termName, "xterm")
		if err := s.RequestPty(termName, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
			return -1, err
		}
		old, err := term.MakeRaw(fd)
		if err != nil {
			return -1, err
		}
		defer term.Restore(fd, old)
	}
	s.Stdin, s.Stdout, s.Stderr = in, out, errOut
	if err := s.Shell(); err != nil {
		return -1, err
	}
	return waitSession(ctx, s)
}

func waitSession(ctx context.Context, s *ssh.Session) (int, error) {
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		var exit *ssh.ExitError
		if errors.As(err, &exit) {
			return exit.ExitStatus(), nil
		}
		if err != nil {
			return -1, err
		}
		return 0, nil
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGTERM)
		s.Close()
		return -1, ctx.Err()
	}
}

// SFTP returns the connection's SFTP client (shared; do not close it).
func (c *Client) SFTP() (*sftp.Client, error) { return c.sftpClient() }

// DialCommand runs cmd and returns a connection over its stdin and stdout,
// e.g. `docker system dial-stdio` when the unix socket cannot be forwarded
// (the login user may not read it; sudo can).
func (c *Client) DialCommand(ctx context.Context, cmd string) (net.Conn, error) {
	s, err := c.newSession()
	if err != nil {
		return nil, err
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Start(cmd); err != nil {
		s.Close()
		return nil, err
	}
	if c.wantsSudoPassword(cmd) {
		if _, err := stdin.Write(append(bytes.Clone(c.cfg.SudoPassword), '\n')); err != nil {
			s.Close()
			return nil, err
		}
	}
	return &commandConn{s: s, r: stdout, w: stdin, host: c.cfg.Host}, nil
}

// commandConn is a net.Conn over a command's stdio; deadlines are not
// supported, as with forwarded SSH channels.
type commandConn struct {
	s    *ssh.Session
	r    io.Reader
	w    io.WriteCloser
	host string
}

func (c *commandConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *commandConn) Write(b []byte) (int, error) { return c.w.Write(b) }
func (c *commandConn) Close() error {
	c.w.Close()
	return c.s.Close()
}
func (c *commandConn) LocalAddr() net.Addr              { return stdioAddr("local") }
func (c *commandConn) RemoteAddr() net.Addr             { return stdioAddr(c.host) }
func (c *commandConn) SetDeadline(time.Time) error      { return nil }
func (c *commandConn) SetReadDeadline(time.Time) error  { return nil }
func (c *commandConn) SetWriteDeadline(time.Time) error { return nil }

type stdioAddr string

func (a stdioAddr) Network() string { return "stdio" }
func (a stdioAddr) String() string  { return string(a) }
