package sshrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// JumpPool holds the connections to jump hosts of one run, so that every
// machine behind a jump host shares one connection to it. It is safe for
// concurrent use; Close ends them all.
type JumpPool struct {
	mu      sync.Mutex
	entries map[string]*jumpEntry
	closed  bool
}

type jumpEntry struct {
	mu     sync.Mutex // held while connecting, so one connection is made
	client *Client
}

// NewJumpPool returns an empty pool.
func NewJumpPool() *JumpPool { return &JumpPool{entries: map[string]*jumpEntry{}} }

// Dialer returns a Config.Dial that reaches addresses through the chain of
// hops, first hop first (each hop's own Dial is ignored: the chain decides).
// With no hops it returns nil (connect directly).
func (p *JumpPool) Dialer(hops []Config) func(ctx context.Context, addr string) (net.Conn, error) {
	if len(hops) == 0 {
		return nil
	}
	hops = append([]Config(nil), hops...)
	return func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := p.client(ctx, hops)
		if err != nil {
			return nil, err
		}
		return c.DialTCP(ctx, addr)
	}
}

// chainKey names a chain by its hops as user@host:port and by what each
// hop's key is checked against (its fingerprint and known hosts file): a
// caller that pins a hop never reuses a connection made without that pin,
// so every caller's pin is checked by a handshake of its own.
func chainKey(hops []Config) string {
	parts := make([]string, len(hops))
	for i, h := range hops {
		fp, err := normalizeFingerprint(h.HostKeyFingerprint)
		if err != nil {
			fp = h.HostKeyFingerprint // refused by Dial's check
		}
		parts[i] = strconv.Quote(h.User+"@"+net.JoinHostPort(h.Host, strconv.Itoa(h.DialPort()))) +
			" " + strconv.Quote(fp) + " " + strconv.Quote(h.KnownHostsPath) + " " + strconv.FormatBool(h.NoPin)
	}
	return strings.Join(parts, ",")
}

// client returns the connection to the last hop, made through the ones
// before it, reusing a live one.
func (p *JumpPool) client(ctx context.Context, hops []Config) (*Client, error) {
	e, err := p.entry(chainKey(hops))
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil && !e.client.isClosed() {
		return e.client, nil
	}
	last := hops[len(hops)-1]
	last.Dial = p.Dialer(hops[:len(hops)-1])
	c, err := Dial(ctx, last)
	if err != nil {
		return nil, fmt.Errorf("jump host %s: %w", last.User+"@"+net.JoinHostPort(last.Host, strconv.Itoa(last.DialPort())), err)
	}
	if p.isClosed() {
		c.Close()
		return nil, errors.New("ssh: jump host pool is closed")
	}
	e.client = c
	// A jump host that goes away is dialled anew by the next machine.
	go func() {
		_ = c.conn.Wait()
		c.Close()
	}()
	return c, nil
}

// entry is the pool's entry of a chain of hops, made on first use.
func (p *JumpPool) entry(key string) (*jumpEntry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("ssh: jump host pool is closed")
	}
	e := p.entries[key]
	if e == nil {
		e = &jumpEntry{}
		p.entries[key] = e
	}
	return e, nil
}

func (p *JumpPool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Close closes every jump host connection.
func (p *JumpPool) Close() error {
	p.mu.Lock()
	p.closed = true
	entries := p.entries
	p.entries = map[string]*jumpEntry{}
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		e.mu.Lock()
		if e.client != nil {
			if err := e.client.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
			e.client = nil
		}
		e.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Connections counts the live jump host connections.
func (p *JumpPool) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.entries {
		e.mu.Lock()
		if e.client != nil && !e.client.isClosed() {
			n++
		}
		e.mu.Unlock()
	}
	return n
}

// DialTCP opens a TCP connection from the host to addr through this SSH
// connection (direct-tcpip), as a jump host does.
func (c *Client) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := c.conn.DialContext(ctx, "tcp", addr)
	if err != nil {
		if lost := c.lostErr(); lost != nil {
			return nil, fmt.Errorf("through %s to %s: %w (%w)", c.cfg.Host, addr, lost, err)
		}
		return nil, fmt.Errorf("through %s to %s: %w", c.cfg.Host, addr, err)
	}
	return conn, nil
}

func (c *Client) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return c.lostErr() != nil
	}
}

// jumpRetryable: the jump host could not reach the target (yet), as a
// refused or timed-out TCP connect would say directly.
func jumpRetryable(err error) bool {
	var oce *ssh.OpenChannelError
	return errors.As(err, &oce) && oce.Reason == ssh.ConnectionFailed
}
