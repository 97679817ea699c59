package sshrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/shoal-dev/shoal/internal/shell"
)

// Result is what a command produced. Output is not redacted: callers need
// the real bytes. Each stream is kept up to a bound (maxStdout, maxStderr):
// beyond it only the tail is kept and Truncated is set.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int // -1 when there is no exit status (cancelled, connection lost)
	Truncated      bool
}

const (
	stderrTailLines = 15
	stderrTailBytes = 4 << 10
	// transcriptMax caps each stream in the transcript so a chatty command
	// (docker pull) does not bloat provision.log.
	transcriptMax = 64 << 10
	// A host's output is kept in memory up to these bounds, the tail of it
	// beyond: a runaway command cannot exhaust memory, and errors show how
	// it ended. stdout is larger: the facts probe carries /etc/hosts.
	maxStdout = 16 << 20
	maxStderr = 1 << 20
	// cancelGrace is how long Run waits for the session to wind down after
	// ctx ends, so late output is kept without blocking the caller long.
	cancelGrace = 500 * time.Millisecond
)

// RunError is a command that ran and exited non-zero.
type RunError struct {
	Host     string
	Cmd      string // redacted
	ExitCode int
	Stderr   string // last ~15 lines, redacted
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "on %s: command %q exited with status %d", e.Host, shorten(e.Cmd, 300), e.ExitCode)
	if e.Stderr != "" {
		for _, line := range strings.Split(e.Stderr, "\n") {
			b.WriteString("\n    ")
			b.WriteString(line)
		}
	}
	return b.String()
}

// SudoError is a RunSudo (or root file operation) that failed because sudo
// is missing or wants a password; it wraps the *RunError.
type SudoError struct {
	Host    string
	User    string
	Missing bool // sudo is not installed
	// WrongPassword: sudo refused the password given (tried once).
	WrongPassword bool
	Err           *RunError
}

func (e *SudoError) Error() string {
	if e.WrongPassword {
		return fmt.Sprintf("on %s: sudo refused the password given for user %s (tried once, so the account is not locked out; nothing was changed). "+
			"Check the sudo password (--sudo-password-file, $SHOAL_SUDO_PASSWORD, --sudo-ask-password, or ssh { sudo_password } in a cluster file).\n    %s",
			e.Host, e.User, strings.ReplaceAll(e.Err.Stderr, "\n", "\n    "))
	}
	if e.Missing {
		return fmt.Sprintf("on %s: sudo is not installed, but user %s is not root; install sudo and grant %s passwordless sudo, or connect as root", e.Host, e.User, e.User)
	}
	file := shell.Word("/etc/sudoers.d/90-shoal-" + sudoersName(e.User))
	fix := "echo " + shell.Quote(e.User+" ALL=(ALL) NOPASSWD:ALL") + " > " + file + " && chmod 0440 " + file
	return fmt.Sprintf("on %s: user %s needs passwordless sudo, or its sudo password (sudo asked for one): give it with --sudo-password-file FILE, "+
		"$SHOAL_SUDO_PASSWORD or --sudo-ask-password (ssh { sudo_password = var.NAME } in a cluster file). Or, as root on %s, run:\n    %s\nor connect as root.",
		e.Host, e.User, e.Host, fix)
}

func (e *SudoError) Unwrap() error { return e.Err }

// sudoersName makes a user name safe as a sudoers.d file name: sudo skips
// files whose names contain '.' or end in '~'.
func sudoersName(user string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, user)
}

// Run runs cmd in a new session. A non-zero exit returns the filled Result
// and a *RunError. When ctx ends the session is signalled and closed and the
// error wraps ctx.Err().
func (c *Client) Run(ctx context.Context, cmd string) (Result, error) {
	return c.run(ctx, cmd, nil, false, false)
}

// RunInput is Run with stdin streamed from r.
func (c *Client) RunInput(ctx context.Context, cmd string, stdin io.Reader) (Result, error) {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	return c.run(ctx, cmd, stdin, false, false)
}

// Sudo returns cmd wrapped to run as root.
func (c *Client) Sudo(cmd string) string {
	if c.isRoot() {
		return cmd
	}
	if c.sudoPW.Load() {
		return sudoStdin + "sh -c " + shell.Quote(cmd)
	}
	return "sudo -n sh -c " + shell.Quote(cmd)
}

func (c *Client) isRoot() bool { return c.cfg.User == "root" }

// RunSudo runs cmd as root. When sudo wants a password the error is a
// *SudoError explaining how to grant passwordless sudo.
func (c *Client) RunSudo(ctx context.Context, cmd string) (Result, error) {
	res, err := c.run(ctx, c.Sudo(cmd), nil, false, c.wantPTY())
	return res, c.sudoError(err)
}

// runRoot runs a POSIX sh script as root. It goes through sh explicitly
// because root's login shell need not be POSIX.
func (c *Client) runRoot(ctx context.Context, script string, hideStdout bool) (Result, error) {
	cmd := "sh -c " + shell.Quote(script)
	if !c.isRoot() {
		cmd = c.Sudo(script)
	}
	res, err := c.run(ctx, cmd, nil, hideStdout, c.wantPTY())
	return res, c.sudoError(err)
}

func (c *Client) sudoError(err error) error {
	var re *RunError
	if c.isRoot() || !errors.As(err, &re) {
		return err
	}
	switch {
	case strings.Contains(re.Stderr, "a password is required"),
		strings.Contains(re.Stderr, "a terminal is required"),
		strings.Contains(re.Stderr, "no tty present"):
		return &SudoError{Host: c.cfg.Host, User: c.cfg.User, Err: re}
	case re.ExitCode == 127 && (strings.Contains(re.Stderr, "sudo: not found") ||
		strings.Contains(re.Stderr, "sudo: command not found")):
		return &SudoError{Host: c.cfg.Host, User: c.cfg.User, Missing: true, Err: re}
	}
	return err
}

// SetSudoTTY makes later root commands (RunSudo, the root half of
// WriteFile and ReadFile) run on a pty: old sudoers files with `Defaults
// requiretty` (CentOS 7) refuse sudo without a terminal. The pty echoes
// nothing and translates no newlines; stderr arrives merged into stdout.
func (c *Client) SetSudoTTY(on bool) { c.sudoTTY.Store(on) }

func (c *Client) wantPTY() bool { return c.sudoTTY.Load() && !c.isRoot() }

func (c *Client) run(ctx context.Context, cmd string, stdin io.Reader, hideStdout, pty bool) (Result, error) {
	res := Result{ExitCode: -1}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("on %s: command %q not started: %w", c.cfg.Host, c.redact(cmd), err)
	}
	sess, err := c.newSession()
	if err != nil {
		return res, fmt.Errorf("on %s: command %q: open session: %w", c.cfg.Host, c.redact(cmd), err)
	}
	defer sess.Close()

	stdout, stderr := lockedBuffer{max: maxStdout}, lockedBuffer{max: maxStderr}
	sess.Stdout, sess.Stderr = &stdout, &stderr
	in := c.setInput(sess, cmd, stdin)
	if pty {
		if err := requestQuietPTY(sess); err != nil {
			return res, fmt.Errorf("on %s: command %q: request a pty for sudo: %w", c.cfg.Host, c.redact(cmd), err)
		}
	}
	start := time.Now()
	if err := sess.Start(cmd); err != nil {
		return res, fmt.Errorf("on %s: command %q: start: %w", c.cfg.Host, c.redact(cmd), err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		stopSession(sess, done)
		res.collect(&stdout, &stderr)
		c.record(cmd, in, hideStdout, res, "cancelled: "+ctx.Err().Error(), time.Since(start))
		return res, fmt.Errorf("on %s: command %q: %w", c.cfg.Host, c.redact(cmd), ctx.Err())
	}
	res.collect(&stdout, &stderr)
	return c.finish(cmd, in, hideStdout, pty, res, waitErr, start)
}

// requestQuietPTY asks for a pty that echoes nothing and translates no
// newlines.
func requestQuietPTY(sess *ssh.Session) error {
	modes := ssh.TerminalModes{ssh.ECHO: 0, ssh.ONLCR: 0, ssh.OPOST: 0}
	return sess.RequestPty("dumb", 0, 0, modes)
}

// collect takes the command's output, and whether any was cut.
func (res *Result) collect(stdout, stderr *lockedBuffer) {
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	res.Truncated = stdout.Cut() > 0 || stderr.Cut() > 0
}

// setInput gives the session its stdin, counted for the transcript, with
// the sudo password in front when the command asks for it.
func (c *Client) setInput(sess *ssh.Session, cmd string, stdin io.Reader) *countingReader {
	var in *countingReader
	if stdin != nil {
		in = &countingReader{r: stdin}
		sess.Stdin = in
	}
	if c.wantsSudoPassword(cmd) {
		if in != nil {
			sess.Stdin = c.withSudoPassword(in)
		} else {
			sess.Stdin = c.withSudoPassword(nil)
		}
	}
	return in
}

// stopSession ends a cancelled command: TERM so sudo and the shell can
// pass it on; closing the channel covers servers that ignore signals. It
// waits for the command's end at most cancelGrace.
func stopSession(sess *ssh.Session, done <-chan error) {
	_ = sess.Signal(ssh.SIGTERM)
	_ = sess.Close()
	t := time.NewTimer(cancelGrace)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
}

// finish reads how the command ended into res and the error run returns,
// and records it.
func (c *Client) finish(cmd string, in *countingReader, hideStdout, pty bool, res Result, waitErr error, start time.Time) (Result, error) {
	var exit *ssh.ExitError
	switch {
	case waitErr == nil:
		res.ExitCode = 0
	case errors.As(waitErr, &exit):
		res.ExitCode = exit.ExitStatus()
	default:
		c.record(cmd, in, hideStdout, res, "failed: "+waitErr.Error(), time.Since(start))
		if lost := c.lostErr(); lost != nil {
			waitErr = fmt.Errorf("%w (%w)", lost, waitErr)
		}
		return res, fmt.Errorf("on %s: command %q: %w", c.cfg.Host, c.redact(cmd), waitErr)
	}
	c.record(cmd, in, hideStdout, res, fmt.Sprintf("exit %d", res.ExitCode), time.Since(start))
	if res.ExitCode != 0 {
		errText := res.Stderr
		if pty {
			errText = res.Stdout // a pty merges the two streams
		}
		return res, &RunError{
			Host:     c.cfg.Host,
			Cmd:      c.redact(cmd),
			ExitCode: res.ExitCode,
			Stderr:   tail(c.redact(string(errText)), stderrTailLines, stderrTailBytes),
		}
	}
	return res, nil
}

func (c *Client) redact(s string) string { return c.cfg.Redactor.Redact(s) }

// record appends one whole entry to the transcript; write errors are
// ignored because logging must not fail provisioning.
func (c *Client) record(cmd string, in *countingReader, hideStdout bool, res Result, status string, took time.Duration) {
	if c.cfg.Transcript == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s %s@%s\n$ %s\n", time.Now().UTC().Format(time.RFC3339), c.cfg.User, c.cfg.Host, c.redact(cmd))
	if in != nil {
		fmt.Fprintf(&b, "(stdin: %d bytes, not logged)\n", in.n())
	}
	if hideStdout {
		fmt.Fprintf(&b, "(stdout: %d bytes, not logged)\n", len(res.Stdout))
	} else {
		writeStream(&b, "", c.redact(string(res.Stdout)))
	}
	writeStream(&b, "stderr: ", c.redact(string(res.Stderr)))
	fmt.Fprintf(&b, "--- %s after %s\n", status, took.Round(time.Millisecond))
	c.logMu.Lock()
	defer c.logMu.Unlock()
	_, _ = io.WriteString(c.cfg.Transcript, b.String())
}

func writeStream(b *strings.Builder, prefix, s string) {
	if s == "" {
		return
	}
	if len(s) > transcriptMax {
		fmt.Fprintf(b, "%s[... %d bytes cut ...]\n", prefix, len(s)-transcriptMax)
		s = s[len(s)-transcriptMax:]
	}
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix)
		b.WriteString(line)
		b.WriteByte('\n')
	}
}

// tail keeps the last n lines and at most max bytes of s.
func tail(s string, n, max int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s = strings.Join(lines, "\n")
	if len(s) > max {
		s = "..." + s[len(s)-max:]
	}
	return s
}

func shorten(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max]) + "..."
}

// ShellQuote is shell.Quote, kept for callers that already use it.
func ShellQuote(s string) string { return shell.Quote(s) }

// Redactor removes registered secrets from text. It is safe for concurrent
// use; the zero value is ready.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string // longest first, so a secret containing another goes whole
}

// Add registers a secret; empty strings are ignored.
func (r *Redactor) Add(secret string) {
	if secret == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.secrets {
		if s == secret {
			return
		}
	}
	i := 0
	for i < len(r.secrets) && len(r.secrets[i]) >= len(secret) {
		i++
	}
	r.secrets = append(r.secrets, "")
	copy(r.secrets[i+1:], r.secrets[i:])
	r.secrets[i] = secret
}

// Redact replaces each secret in s with "[REDACTED]" (a short one only
// where it stands as a value: redactSecret). A nil Redactor returns s
// unchanged.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, secret := range r.secrets {
		s = redactSecret(s, secret)
	}
	return s
}

// lockedBuffer lets Run read output while a cancelled session may still be
// writing to it. It keeps at most max bytes, the last ones.
type lockedBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut int64 // bytes dropped before they reached buf
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) > b.max {
		p = p[len(p)-b.max:]
	}
	b.buf = append(b.buf, p...)
	// Compact only past twice the bound: the copying stays linear.
	if len(b.buf) > 2*b.max {
		b.cut += int64(len(b.buf) - b.max)
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	b.cut += int64(n - len(p))
	return n, nil
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > b.max {
		return bytes.Clone(b.buf[len(b.buf)-b.max:])
	}
	return bytes.Clone(b.buf)
}

// Cut is how many bytes were dropped to keep within max.
func (b *lockedBuffer) Cut() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cut + int64(max(len(b.buf)-b.max, 0))
}

type countingReader struct {
	r  io.Reader
	mu sync.Mutex
	nr int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.nr += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) n() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nr
}
