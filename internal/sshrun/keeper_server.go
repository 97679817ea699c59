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
	lock, held, err := lockKeeper(socket)
	if err != nil || !held {
		return err // no error: another keeper serves this store
	}
	defer lock.Close()
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
	signer, err := newKeeperHostKey()
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
	return k.accept(ctx, ln)
}

// lockKeeper takes the socket's lock in its private folder: held is
// false, with no error, when another keeper holds it.
func lockKeeper(socket string) (lock *os.File, held bool, err error) {
	dir := filepath.Dir(socket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	if err := privateDirOK(dir); err != nil {
		return nil, false, err
	}
	lock, err = os.OpenFile(socket+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, false, nil
	}
	return lock, true, nil
}

// newKeeperHostKey is a host key for the keeper's SSH server, new each
// run.
func newKeeperHostKey() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// accept serves the links of this user's processes until ln is closed.
func (k *keeper) accept(ctx context.Context, ln net.Listener) error {
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
		drop, empty := k.sweep(time.Now())
		for _, c := range drop {
			c.Close()
		}
		if empty {
			stop()
			return
		}
	}
}

// sweep forgets the connections to drop now (idle past their persist
// time, or of a forgotten machine) and returns them, to be closed, and
// whether the keeper has nothing left to keep.
func (k *keeper) sweep(now time.Time) (drop []*Client, empty bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, kc := range k.conns {
		if kc.c != nil && kc.users == 0 && (now.Sub(kc.idle) > kc.persist || forgotten(kc.req)) {
			drop = append(drop, kc.c)
			delete(k.conns, id)
		}
	}
	return drop, len(k.conns) == 0 && k.links == 0 && now.Sub(k.lastSeen) > keeperLinger
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
	k.countLink(1)
	defer k.countLink(-1)
	kc := k.awaitDial(ctx, reqs)
	if kc == nil {
		return
	}
	_ = nc.SetDeadline(time.Time{})
	defer k.release(ctx, kc)
	go k.serveLinkRequests(ctx, kc, reqs)
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

// countLink counts a link opened (1) or closed (-1); either is activity.
func (k *keeper) countLink(d int) {
	k.mu.Lock()
	k.links += d
	k.lastSeen = time.Now()
	k.mu.Unlock()
}

// awaitDial answers the link's requests until its dial request, and
// returns the kept connection for it; nil when the link ends first or the
// dial fails (the client has the error).
func (k *keeper) awaitDial(ctx context.Context, reqs <-chan *ssh.Request) *keptConn {
	for {
		r, ok := <-reqs
		if !ok {
			return nil
		}
		if r.Type != keepDialRequest {
			_ = r.Reply(false, nil)
			continue
		}
		kc, rep := k.dialRequest(ctx, r.Payload)
		b, _ := json.Marshal(rep)
		_ = r.Reply(true, b)
		return kc
	}
}

// dialRequest takes the kept connection a dial request asks for, with the
// reply: its host key, or the error.
func (k *keeper) dialRequest(ctx context.Context, payload []byte) (*keptConn, keptReply) {
	var kr keptRequest
	if err := json.Unmarshal(payload, &kr); err != nil {
		return nil, keptReply{Error: "bad request"}
	}
	kc, err := k.take(ctx, kr)
	if err != nil {
		return nil, keptReply{Error: err.Error()}
	}
	return kc, keptReply{HostKey: kc.c.hostKey.Marshal()}
}

// serveLinkRequests answers the link's requests once it is dialled: a
// forget request makes a fresh login replace kc once its run is done.
func (k *keeper) serveLinkRequests(ctx context.Context, kc *keptConn, reqs <-chan *ssh.Request) {
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

// rejectAs refuses the client's channel as the machine refused it.
func rejectAs(nch ssh.NewChannel, err error) {
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) {
		_ = nch.Reject(oce.Reason, oce.Message)
		return
	}
	_ = nch.Reject(ssh.ConnectionFailed, err.Error())
}

// forwardRequests passes a channel's requests on to the other side's.
func forwardRequests(reqs <-chan *ssh.Request, to ssh.Channel) {
	for r := range reqs {
		ok, _ := to.SendRequest(r.Type, r.WantReply, r.Payload)
		if r.WantReply {
			_ = r.Reply(ok, nil)
		}
	}
}

// bridge opens nch's channel on the machine's connection and carries its
// data and requests both ways until both ends have closed.
func bridge(nch ssh.NewChannel, up *ssh.Client) {
	uch, ureqs, err := up.OpenChannel(nch.ChannelType(), nch.ExtraData())
	if err != nil {
		rejectAs(nch, err)
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
		forwardRequests(ureqs, cch)
	}()
	go func() {
		forwardRequests(creqs, uch)
		// The client closed its channel (a cancelled command).
		uch.Close()
	}()
	out.Wait()
	_ = cch.CloseWrite()
	cch.Close()
	uch.Close()
}
