package sshrun

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// The keeper's side (see keeper.go for what it is and the run's side).

// keeper is the server side: the connections it holds and the links of
// the runs that use them.
type keeper struct {
	socket   string
	hostKey  ssh.Signer
	mu       sync.Mutex
	conns    map[string]*keptConn
	links    int
	lastSeen time.Time
}

type keptConn struct {
	id      string
	req     keptRequest
	c       *Client
	persist time.Duration
	users   int
	idle    time.Time
	ready   chan struct{} // closed when the dial ended (c or err set)
	err     error
	lost    chan struct{} // closed when c's connection ends
	renew   bool          // forgotten by its run: a fresh login replaces it once the run is done
}

// ServeKeeper runs a keeper on socket until it has had nothing to keep for
// a while, or its socket is removed (the store deleted). It returns nil at
// once when another keeper holds the socket.
func ServeKeeper(ctx context.Context, socket string) error {
	dir := filepath.Dir(socket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := privateDirOK(dir); err != nil {
		return err
	}
	lock, err := os.OpenFile(socket+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // another keeper serves this store
	}
	_ = os.Remove(socket) // a dead keeper's
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	defer ln.Close()
	if err := os.Chmod(socket, 0o600); err != nil {
		return err
	}
	st, err := os.Stat(socket)
	if err != nil {
		return err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	k := &keeper{socket: socket, hostKey: signer, conns: map[string]*keptConn{}, lastSeen: time.Now()}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go k.reap(ctx, cancel, st)
	for {
		nc, err := ln.Accept()
		if err != nil {
			k.closeAll()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !samePeer(nc) {
			nc.Close()
			continue
		}
		go k.serveLink(ctx, nc)
	}
}

// privateDirOK refuses a directory that others may enter or that is not
// this user's.
func privateDirOK(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("keeper: %s must be a directory of this user's that nobody else may enter (mode 0700)", dir)
	}
	return nil
}

// reap closes connections unused for their persist time or whose machine
// was forgotten, and ends the keeper when it has nothing left to keep or its socket is gone.
func (k *keeper) reap(ctx context.Context, stop context.CancelFunc, sock os.FileInfo) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if fi, err := os.Stat(k.socket); err != nil || !os.SameFile(fi, sock) {
			stop()
			return
		}
		now := time.Now()
		var drop []*Client
		k.mu.Lock()
		for id, kc := range k.conns {
			if kc.c != nil && kc.users == 0 && (now.Sub(kc.idle) > kc.persist || forgotten(kc.req)) {
				drop = append(drop, kc.c)
				delete(k.conns, id)
			}
		}
		empty := len(k.conns) == 0 && k.links == 0 && now.Sub(k.lastSeen) > keeperLinger
		k.mu.Unlock()
		for _, c := range drop {
			c.Close()
		}
		if empty {
			stop()
			return
		}
	}
}

// forgotten tells whether the machine is gone from its store (`machine
// rm`, `cluster down`): its pinned host keys went with it, and shoal no
// longer keeps a login on a host it forgot.
func forgotten(r keptRequest) bool {
	if r.KnownHostsPath == "" {
		return false
	}
	_, err := os.Stat(r.KnownHostsPath)
	return errors.Is(err, os.ErrNotExist)
}

func (k *keeper) closeAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, kc := range k.conns {
		if kc.c != nil {
			kc.c.Close()
		}
		delete(k.conns, id)
	}
}

// serveLink serves one client: its dial request, then its channels on the
// machine's connection.
func (k *keeper) serveLink(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	cfg := &ssh.ServerConfig{NoClientAuth: true, ServerVersion: "SSH-2.0-shoal-keeper"}
	cfg.AddHostKey(k.hostKey)
	_ = nc.SetDeadline(time.Now().Add(keeperStart + attemptTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	k.mu.Lock()
	k.links++
	k.lastSeen = time.Now()
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.links--
		k.lastSeen = time.Now()
		k.mu.Unlock()
	}()

	var kc *keptConn
	for kc == nil {
		r, ok := <-reqs
		if !ok {
			return
		}
		switch r.Type {
		case keepDialRequest:
			var kr keptRequest
			var rep keptReply
			if err := json.Unmarshal(r.Payload, &kr); err != nil {
				rep.Error = "bad request"
			} else if kc, err = k.take(ctx, kr); err != nil {
				rep.Error = err.Error()
			} else {
				rep.HostKey = kc.c.hostKey.Marshal()
			}
			b, _ := json.Marshal(rep)
			_ = r.Reply(true, b)
			if kc == nil {
				return
			}
		default:
			_ = r.Reply(false, nil)
		}
	}
	_ = nc.SetDeadline(time.Time{})
	defer k.release(ctx, kc)
	go func() {
		for r := range reqs {
			if r.Type == keepForgetRequest {
				k.mu.Lock()
				kc.renew = true
				k.mu.Unlock()
				if k.forget(kc) {
					k.renew(ctx, kc)
				}
			}
			// keepalive@openssh.com and anything else: this end is alive.
			_ = r.Reply(r.Type == "keepalive@openssh.com" || r.Type == keepForgetRequest, nil)
		}
	}()
	// The machine's connection lost ends the link: the client's sessions
	// fail as they would on its own connection.
	linkDone := make(chan struct{})
	defer close(linkDone)
	go func() {
		select {
		case <-kc.c.done:
		case <-kc.lost:
		case <-linkDone:
		}
		sc.Close()
	}()
	for nch := range chans {
		go bridge(nch, kc.c.conn)
	}
}

// take returns the kept connection for r, dialing it (once, however many
// ask at the same time) when there is none or it no longer answers.
func (k *keeper) take(ctx context.Context, r keptRequest) (*keptConn, error) {
	id := r.identity()
	for {
		k.mu.Lock()
		kc := k.conns[id]
		dialed := kc == nil
		if dialed {
			kc = &keptConn{id: id, req: r, persist: r.Persist, ready: make(chan struct{}), idle: time.Now()}
			k.conns[id] = kc
			k.mu.Unlock()
			k.dial(ctx, kc, r)
		} else {
			kc.persist = max(kc.persist, r.Persist)
			k.mu.Unlock()
		}
		<-kc.ready
		if kc.err != nil {
			return nil, kc.err
		}
		// A connection made just now needs no check.
		if dialed || stillVerified(ctx, kc) {
			k.mu.Lock()
			if k.conns[kc.id] == kc {
				kc.users++
				k.mu.Unlock()
				return kc, nil
			}
			k.mu.Unlock()
		}
		k.forget(kc)
	}
}

// dial makes kc's connection: one attempt, as Dial's own.
func (k *keeper) dial(ctx context.Context, kc *keptConn, r keptRequest) {
	defer close(kc.ready)
	cfg := r.config()
	if err := cfg.check(); err != nil {
		kc.err = err
		k.forget(kc)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	c, err := dialOnce(ctx, cfg, cfg.Address())
	if err != nil {
		kc.err = err
		k.forget(kc)
		return
	}
	lost := make(chan struct{})
	go func() {
		_ = c.conn.Wait()
		close(lost)
	}()
	k.mu.Lock()
	kc.c, kc.lost = c, lost
	k.mu.Unlock()
	// The pins this dial wrote are part of what the next run will ask for.
	if id := r.identity(); id != kc.id {
		k.mu.Lock()
		if k.conns[kc.id] == kc {
			delete(k.conns, kc.id)
		}
		if old := k.conns[id]; old == nil {
			kc.id = id
			k.conns[id] = kc
		}
		k.mu.Unlock()
	}
}

// renew replaces kc, which its run asked the keeper to forget and is done
// with, by a fresh login made now: the next run finds it ready.
func (k *keeper) renew(ctx context.Context, kc *keptConn) {
	r := kc.req
	id := r.identity()
	k.mu.Lock()
	if k.conns[id] != nil {
		k.mu.Unlock()
		return
	}
	fresh := &keptConn{id: id, req: r, persist: kc.persist, ready: make(chan struct{}), idle: time.Now()}
	k.conns[id] = fresh
	k.mu.Unlock()
	go k.dial(ctx, fresh, r)
}

// forget drops kc, closing its connection when nobody uses it (and then
// returns true).
func (k *keeper) forget(kc *keptConn) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conns[kc.id] == kc {
		delete(k.conns, kc.id)
	}
	if kc.c != nil && kc.users == 0 {
		kc.c.Close()
		return true
	}
	return false
}

func (k *keeper) release(ctx context.Context, kc *keptConn) {
	k.mu.Lock()
	kc.users--
	kc.idle = time.Now()
	gone := k.conns[kc.id] != kc && kc.users == 0
	renew := gone && kc.renew
	k.mu.Unlock()
	if gone {
		kc.c.Close()
	}
	if renew {
		k.renew(ctx, kc)
	}
}

// hostKeysCmd prints the machine's public host keys where sshd keeps them
// by default (world-readable: no sudo).
const hostKeysCmd = "cat /etc/ssh/ssh_host_*_key.pub"

// errKeyChecked ends a host key check's handshake before any login.
var errKeyChecked = errors.New("host key checked")

// bridge opens nch's channel on the machine's connection and carries its
// data and requests both ways until both ends have closed.
func bridge(nch ssh.NewChannel, up *ssh.Client) {
	uch, ureqs, err := up.OpenChannel(nch.ChannelType(), nch.ExtraData())
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			_ = nch.Reject(oce.Reason, oce.Message)
		} else {
			_ = nch.Reject(ssh.ConnectionFailed, err.Error())
		}
		return
	}
	cch, creqs, err := nch.Accept()
	if err != nil {
		uch.Close()
		return
	}
	var out sync.WaitGroup
	out.Add(3)
	go func() { // the client's input
		_, _ = io.Copy(uch, cch)
		_ = uch.CloseWrite()
	}()
	go func() {
		defer out.Done()
		_, _ = io.Copy(cch, uch)
	}()
	go func() {
		defer out.Done()
		_, _ = io.Copy(cch.Stderr(), uch.Stderr())
	}()
	go func() { // exit-status and the like, before the close
		defer out.Done()
		for r := range ureqs {
			ok, _ := cch.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				_ = r.Reply(ok, nil)
			}
		}
	}()
	go func() {
		for r := range creqs {
			ok, _ := uch.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				_ = r.Reply(ok, nil)
			}
		}
		// The client closed its channel (a cancelled command).
		uch.Close()
	}()
	out.Wait()
	_ = cch.CloseWrite()
	cch.Close()
	uch.Close()
}
