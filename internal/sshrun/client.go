// Package sshrun runs commands and moves files on one machine over a single
// SSH connection, with pinned host keys, retries while the machine boots,
// redacted errors and an optional transcript.
package sshrun

import (
	"context"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/remote"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Config describes how to reach and trust one machine.
type Config struct {
	// Endpoint is the host, port, user, key and expected host key.
	remote.Endpoint

	// KnownHostsPath holds the machine's pinned host keys (known_hosts
	// format); created 0600 on first contact. It is one machine's file:
	// every key in it is that machine's, whatever address it was pinned at.
	KnownHostsPath string
	// NoPin checks the host key against what is pinned (and
	// HostKeyFingerprint) but writes nothing: for commands that only read.
	NoPin bool

	// AcceptNewHost takes a host at an address none of the machine's keys
	// was pinned at, offering another key, as the machine's new host: its
	// key (which must match HostKeyFingerprint, if given) replaces the
	// pins. A changed key at a pinned address is refused all the same.
	AcceptNewHost bool

	Transcript io.Writer // optional: commands, exit codes and redacted output
	Redactor   *Redactor // optional: secrets removed from errors and the transcript

	// KeepAlive is the keepalive@openssh.com interval; 0 means 15s. Three
	// intervals without a reply close the connection so pending calls fail.
	KeepAlive time.Duration

	// Access: passwords, more keys, jump hosts (password.go, jump.go).
	Access

	// Keep, when set, runs the sessions on a connection the keeper holds
	// between runs (keeper.go), where the configuration allows it.
	Keep *Keep
	// AgentSocket is the ssh-agent's socket for UseAgent; "" means
	// $SSH_AUTH_SOCK.
	AgentSocket string
}

const (
	defaultKeepAlive = 15 * time.Second
	firstBackoff     = 200 * time.Millisecond
	maxBackoff       = 3 * time.Second
	// attemptTimeout bounds one TCP connect + handshake so a host that
	// accepts but never answers (sshd still starting) is retried.
	attemptTimeout = 30 * time.Second
)

// Client is one authenticated SSH connection to a machine. It is safe for
// concurrent use; each command gets its own session.
type Client struct {
	cfg     Config
	addr    string
	conn    *ssh.Client
	hostKey ssh.PublicKey

	sessions atomic.Int64
	kept     bool        // the sessions run on the keeper's connection
	passUsed bool        // logged in with the password
	sudoPW   atomic.Bool // sudo asks for a password: give it on stdin
	sudoTTY  atomic.Bool // sudo needs a pty (requiretty)
	logMu    sync.Mutex  // keeps transcript entries whole

	sftpMu sync.Mutex
	sftp   *sftp.Client

	lostMu sync.Mutex
	lost   error // why keepalive gave up on the connection

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Dial connects, retrying with backoff on network errors until ctx ends. An
// auth failure (*AuthError) or a host key mismatch (*HostKeyError) returns
// at once.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Redactor != nil {
		cfg.Redactor.Add(string(cfg.Password))
		cfg.Redactor.Add(string(cfg.SudoPassword))
	}
	if keepable(cfg) {
		if c := tryKeeper(ctx, cfg); c != nil {
			return c, nil
		}
	}
	addr := cfg.Address()
	delay := firstBackoff
	var lastErr error
	for {
		c, err := dialOnce(ctx, cfg, addr)
		if err == nil {
			return c.sudoChecked(ctx)
		}
		if ctx.Err() != nil && (errors.Is(err, ctx.Err()) || retryable(err)) {
			return nil, giveUp(ctx, cfg, addr, lastErr)
		}
		if !retryable(err) {
			return nil, err
		}
		lastErr = err
		if !sleepCtx(ctx, delay) {
			return nil, giveUp(ctx, cfg, addr, lastErr)
		}
		delay = min(delay*2, maxBackoff)
	}
}

// tryKeeper returns the keeper's connection, nil when the keeper's one
// attempt failed or there is no keeper: Dial then dials here as ever, and
// the transcript says why.
func tryKeeper(ctx context.Context, cfg Config) *Client {
	c, err := dialKept(ctx, cfg)
	if err == nil {
		return c
	}
	if cfg.Transcript != nil {
		fmt.Fprintf(cfg.Transcript, "--- %s %s@%s: connecting without the keeper: %s\n", time.Now().UTC().Format(time.RFC3339), cfg.User, cfg.Host, cfg.Redactor.Redact(err.Error()))
	}
	return nil
}

// sudoChecked returns a new connection once sudo is checked on it; one
// that fails the check is closed.
func (c *Client) sudoChecked(ctx context.Context) (*Client, error) {
	if err := c.checkSudo(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// sleepCtx waits d, or less when ctx ends first (then false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func giveUp(ctx context.Context, cfg Config, addr string, lastErr error) error {
	if lastErr == nil {
		return fmt.Errorf("ssh: connect to %s as %s: %w", addr, cfg.User, ctx.Err())
	}
	return fmt.Errorf("ssh: connect to %s as %s: %w (last error: %w)", addr, cfg.User, ctx.Err(), lastErr)
}

func (cfg *Config) check() error {
	if err := cfg.checkAddress(); err != nil {
		return err
	}
	if err := cfg.checkTrust(); err != nil {
		return err
	}
	if cfg.KeepAlive < 0 {
		return fmt.Errorf("ssh: config for %s: negative KeepAlive", cfg.Host)
	}
	if cfg.HostKeyFingerprint != "" {
		if _, err := normalizeFingerprint(cfg.HostKeyFingerprint); err != nil {
			return fmt.Errorf("ssh: config for %s: %w", cfg.Host, err)
		}
	}
	return nil
}

// checkAddress checks that the config names a host, a user and a port.
func (cfg *Config) checkAddress() error {
	switch {
	case cfg.Host == "":
		return errors.New("ssh: config: Host is empty")
	case cfg.User == "":
		return fmt.Errorf("ssh: config for %s: User is empty", cfg.Host)
	case cfg.Port < 0 || cfg.Port > 65535:
		return fmt.Errorf("ssh: config for %s: bad port %d", cfg.Host, cfg.Port)
	}
	return nil
}

// checkTrust checks that the config can log in and verify the host key.
func (cfg *Config) checkTrust() error {
	if cfg.KeyPath == "" && !cfg.UseAgent && cfg.Password == nil && len(cfg.ExtraKeyPaths) == 0 {
		return fmt.Errorf("ssh: config for %s: no KeyPath and UseAgent is off, nothing to authenticate with", cfg.Host)
	}
	if cfg.KnownHostsPath == "" && cfg.HostKeyFingerprint == "" {
		// Refuse rather than silently trusting every key on every connect.
		return fmt.Errorf("ssh: config for %s: neither KnownHostsPath nor HostKeyFingerprint is set, the host key cannot be verified", cfg.Host)
	}
	return nil
}

// dialOnce makes one connection attempt. When only a fingerprint is known it
// may reconnect with other host key types, since a host with several keys
// offers one of them and the fingerprint can be of another.
func dialOnce(ctx context.Context, cfg Config, addr string) (*Client, error) {
	auth, err := newAuth(cfg)
	if err != nil {
		return nil, err
	}
	defer auth.close()

	hk, err := newHostKeys(cfg, addr)
	if err != nil {
		return nil, err
	}
	rejected := map[string]bool{} // key types offered and refused
	for {
		algos := hk.algorithms(rejected)
		if len(algos) == 0 {
			return nil, hk.fingerprintError()
		}
		c, err := connect(ctx, cfg, addr, auth, hk, algos)
		if err == nil {
			return c, nil
		}
		if hke := hk.takeRejection(); hke != nil {
			if !hke.FirstContact {
				return nil, hke
			}
			rejected[hke.OfferedType] = true
			continue
		}
		return nil, attemptError(err, cfg, auth, hk, len(rejected) > 0)
	}
}

// attemptError is the error of a failed attempt the host key check did
// not refuse: no host key type in common says why (types refused against
// the fingerprint, or none pinned offered), a failed login says what was
// offered.
func attemptError(err error, cfg Config, auth *auth, hk *hostKeys, refused bool) error {
	if isNoCommonHostKeyAlgo(err) {
		if refused {
			return hk.fingerprintError()
		}
		if len(hk.pinned) > 0 {
			return hk.missingTypeError()
		}
	}
	if isAuthFailure(err) {
		return auth.error(cfg, err)
	}
	return err
}

func connect(ctx context.Context, cfg Config, addr string, auth *auth, hk *hostKeys, algos []string) (*Client, error) {
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	nc, err := dialTCP(actx, cfg, addr)
	if err != nil {
		return nil, err
	}
	// The handshake has no context of its own: closing the socket is the
	// only way to interrupt it.
	stop := context.AfterFunc(actx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth.methods,
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: algos,
		ClientVersion:     "SSH-2.0-shoal",
	})
	if !stop() {
		if err == nil {
			sc.Close()
		}
		return nil, handshakeTimeout(ctx, addr)
	}
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:      cfg,
		addr:     addr,
		conn:     ssh.NewClient(sc, chans, reqs),
		hostKey:  hk.acceptedKey(),
		done:     make(chan struct{}),
		passUsed: auth.passUsed.Load(),
	}
	go c.keepAlive(cfg.keepAliveInterval())
	return c, nil
}

// handshakeTimeout is the error of a handshake cut off: ctx's when it
// ended, else the attempt's timeout.
func handshakeTimeout(ctx context.Context, addr string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("ssh: handshake with %s: no answer within %s: %w", addr, attemptTimeout, os.ErrDeadlineExceeded)
}

// keepAliveInterval is how often a connection is checked: KeepAlive, or
// the default.
func (cfg Config) keepAliveInterval() time.Duration {
	if cfg.KeepAlive == 0 {
		return defaultKeepAlive
	}
	return cfg.KeepAlive
}

// retryable reports whether err looks like a machine that is not up yet or a
// flaky network, as opposed to a configuration or trust problem.
func retryable(err error) bool {
	var hke *HostKeyError
	var ae *AuthError
	if errors.As(err, &hke) || errors.As(err, &ae) {
		return false
	}
	if jumpRetryable(err) {
		return true
	}
	for _, target := range []error{
		io.EOF, io.ErrUnexpectedEOF, os.ErrDeadlineExceeded,
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
		syscall.EHOSTDOWN, syscall.EPIPE,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && (dns.IsTemporary || dns.IsTimeout) {
		return true
	}
	// x/crypto formats some transport errors with %v; match their text.
	s := err.Error()
	return strings.HasSuffix(s, ": EOF") || strings.Contains(s, "connection reset by peer")
}

func isAuthFailure(err error) bool {
	s := err.Error()
	return strings.Contains(s, "unable to authenticate") ||
		strings.Contains(s, "no supported methods remain") ||
		strings.Contains(s, "Too many authentication failures")
}

func isNoCommonHostKeyAlgo(err error) bool {
	var ane *ssh.AlgorithmNegotiationError
	if errors.As(err, &ane) {
		return ane.What == "host key"
	}
	return strings.Contains(err.Error(), "no common algorithm for host key")
}

// keepAlive closes the connection when the server stops answering, so
// sessions blocked on a dead TCP connection fail instead of hanging.
func (c *Client) keepAlive(interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		wait := time.NewTimer(3 * interval)
		select {
		case err := <-reply:
			wait.Stop()
			if err != nil {
				return // connection already gone
			}
		case <-wait.C:
			c.lostMu.Lock()
			c.lost = fmt.Errorf("connection to %s lost: no keepalive reply in %s", c.addr, 3*interval)
			c.lostMu.Unlock()
			c.conn.Close()
			return
		case <-c.done:
			wait.Stop()
			return
		}
	}
}

func (c *Client) lostErr() error {
	c.lostMu.Lock()
	defer c.lostMu.Unlock()
	return c.lost
}

// Close closes the SFTP session (if any) and the connection.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
			c.sftp = nil
		}
		c.sftpMu.Unlock()
		c.closeErr = c.conn.Close()
	})
	return c.closeErr
}

// Host returns the configured host name or address.
func (c *Client) Host() string { return c.cfg.Host }

// User returns the login user.
func (c *Client) User() string { return c.cfg.User }

// Kept tells whether the sessions run on a connection the keeper holds.
func (c *Client) Kept() bool { return c.kept }

// Sessions counts sessions opened on this connection (commands and SFTP).
func (c *Client) Sessions() int64 { return c.sessions.Load() }

// HostKey returns the server's host key seen at connect.
func (c *Client) HostKey() ssh.PublicKey { return c.hostKey }

// DialUnix opens a connection to a unix socket on the host through the SSH
// connection (direct-streamlocal@openssh.com), e.g. /var/run/docker.sock.
func (c *Client) DialUnix(ctx context.Context, path string) (net.Conn, error) {
	conn, err := c.conn.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("on %s: dial unix socket %s: %w", c.cfg.Host, path, err)
	}
	return conn, nil
}

// Prohibited tells whether err is the host's sshd refusing a channel of
// that kind (forwarding turned off), rather than the connection failing.
func Prohibited(err error) bool {
	var oce *ssh.OpenChannelError
	return errors.As(err, &oce) && oce.Reason == ssh.Prohibited
}

func (c *Client) newSession() (*ssh.Session, error) {
	s, err := c.conn.NewSession()
	if err != nil {
		if lost := c.lostErr(); lost != nil {
			return nil, fmt.Errorf("%w (%w)", lost, err)
		}
		return nil, err
	}
	c.sessions.Add(1)
	return s, nil
}
