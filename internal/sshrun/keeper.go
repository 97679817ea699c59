package sshrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/remote"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// The keeper holds machines' SSH connections between runs, as OpenSSH's
// ControlPersist does: a run that finds a machine's connection kept
// opens its sessions on it and logs in to nothing. A login is most of what
// a run that has nothing to do costs a host (sshd's per-connection
// process, PAM, and on most distributions a systemd user manager started
// and stopped again), so a re-run within the persist window costs each
// host its facts probe alone.
//
// One keeper serves one store, on a unix socket in a directory only its
// user can enter; it speaks SSH to its clients (a link), and each channel a
// client opens on a link it opens on the machine's connection and bridges.
// It makes a connection with one attempt of Dial's own code: anything else
// (a booting host, a refused key, a changed host key) is left to the
// client's own Dial, which retries and reports as it always did.

// Keep is how a Dial may use the keeper.
type Keep struct {
	// Socket is the keeper's unix socket.
	Socket string
	// Persist is how long an unused connection is kept.
	Persist time.Duration
	// Command starts the keeper when none answers (the socket path is
	// appended); nil starts none.
	Command []string

	startMu sync.Mutex
	failed  chan struct{} // see start
}

const (
	keepDialRequest   = "shoal-keep-dial"
	keepForgetRequest = "shoal-keep-forget"
	// keeperLinger is how long a keeper with no connection and no client
	// waits before it exits.
	keeperLinger = time.Minute
	// keeperStart bounds the wait for a keeper just started.
	keeperStart = 2 * time.Second
	// keeperCheck bounds the round trip that tells a kept connection is
	// still alive before it is reused.
	keeperCheck = 3 * time.Second
)

// keptRequest is what a client asks the keeper for: a connection made with
// this configuration (and no secret: only configurations without passwords
// and custom dialers are kept).
type keptRequest struct {
	Endpoint       remote.Endpoint `json:"endpoint"`
	KnownHostsPath string          `json:"knownHostsPath"`
	NoPin          bool            `json:"noPin"`
	ExtraKeyPaths  []string        `json:"extraKeyPaths"`
	AgentSocket    string          `json:"agentSocket"`
	KeepAlive      time.Duration   `json:"keepAlive"`
	Persist        time.Duration   `json:"persist"`
}

type keptReply struct {
	HostKey []byte `json:"hostKey"` // wire format
	Error   string `json:"error"`
}

// keepable tells whether cfg's connection may be kept: no secret would
// have to reach the keeper, and it dials directly.
func keepable(cfg Config) bool {
	return cfg.Keep != nil && cfg.Keep.Socket != "" && cfg.Keep.Persist > 0 &&
		cfg.Password == nil && cfg.SudoPassword == nil && cfg.Dial == nil
}

func requestOf(cfg Config) keptRequest {
	r := keptRequest{Endpoint: cfg.Endpoint, KnownHostsPath: cfg.KnownHostsPath, NoPin: cfg.NoPin,
		ExtraKeyPaths: cfg.ExtraKeyPaths, KeepAlive: cfg.KeepAlive, Persist: cfg.Keep.Persist}
	if cfg.UseAgent {
		r.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	}
	return r
}

// identity is the connection a request stands for: its configuration and
// the contents of the files it trusts (a key replaced, a host key
// forgotten or re-pinned: a new connection, verified again).
func (r keptRequest) identity() string {
	h := sha256.New()
	cfg := r
	cfg.Persist = 0
	b, _ := json.Marshal(cfg)
	h.Write(b)
	for _, p := range append([]string{r.Endpoint.KeyPath, r.KnownHostsPath}, r.ExtraKeyPaths...) {
		data, err := readTrusted(p)
		fmt.Fprintf(h, "\x00%s\x00%t\x00", p, err == nil)
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// maxTrustedFile bounds what identity reads of a key or known_hosts file.
const maxTrustedFile = 16 << 20

// readTrusted reads a key or known_hosts file for identity: a regular file,
// at most maxTrustedFile of it (a request naming /dev/zero or a FIFO must
// not hold the keeper).
func readTrusted(path string) ([]byte, error) {
	// Non-blocking: opening a FIFO nobody writes to would wait.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return io.ReadAll(io.LimitReader(f, maxTrustedFile))
}

func (r keptRequest) config() Config {
	return Config{Endpoint: r.Endpoint, KnownHostsPath: r.KnownHostsPath, NoPin: r.NoPin, KeepAlive: r.KeepAlive,
		AgentSocket: r.AgentSocket, Access: Access{ExtraKeyPaths: r.ExtraKeyPaths}}
}

// dialKept returns a client whose sessions run on the keeper's connection
// to the machine, the keeper making it when it has none. Any failure
// returns an error and the caller dials on its own.
func dialKept(ctx context.Context, cfg Config) (*Client, error) {
	nc, err := keeperConn(ctx, cfg.Keep)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, "keeper", &ssh.ClientConfig{
		User: "shoal",
		// The socket is in a directory only this user can enter and the
		// keeper checks its peer: what answers is this user's keeper.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		ClientVersion:   "SSH-2.0-shoal",
	})
	if err != nil {
		stop()
		nc.Close()
		return nil, fmt.Errorf("keeper: %w", err)
	}
	conn := ssh.NewClient(sc, chans, reqs)
	payload, _ := json.Marshal(requestOf(cfg))
	ok, answer, err := conn.SendRequest(keepDialRequest, true, payload)
	key, err := keptHostKey(ctx, stop(), ok, answer, err)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{cfg: cfg, addr: cfg.Address(), conn: conn, hostKey: key, done: make(chan struct{}), kept: true}
	go c.keepAlive(cfg.keepAliveInterval())
	return c, nil
}

// keptHostKey reads the keeper's answer to a dial request (ok, answer,
// err as SendRequest returned them; stopped: ctx had not ended the link
// by then): the machine's host key, or why the keeper has no connection.
func keptHostKey(ctx context.Context, stopped, ok bool, answer []byte, err error) (ssh.PublicKey, error) {
	var rep keptReply
	if err == nil && ok {
		err = json.Unmarshal(answer, &rep)
	}
	switch {
	case err != nil:
		return nil, err
	case !stopped:
		return nil, ctx.Err()
	case !ok:
		return nil, errors.New("keeper: request refused")
	case rep.Error != "":
		return nil, fmt.Errorf("keeper: %s", rep.Error)
	}
	return ssh.ParsePublicKey(rep.HostKey)
}

// Forget makes the keeper close this connection once the run is done with
// it, so that the next run logs in again: after something that only a new
// login sees (the login user added to a group). Nothing on a connection of
// the run's own.
func (c *Client) Forget() {
	if c.kept {
		// Answered: the keeper has it before this run can end.
		_, _, _ = c.conn.SendRequest(keepForgetRequest, true, nil)
	}
}

// keeperConn connects to the keeper, starting it (once a run) when none
// answers.
func keeperConn(ctx context.Context, k *Keep) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", k.Socket)
	if err == nil || len(k.Command) == 0 {
		return nc, err
	}
	failed := k.start()
	deadline := time.Now().Add(keeperStart)
	for {
		nc, err = d.DialContext(ctx, "unix", k.Socket)
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return nc, err
		}
		select {
		case <-failed:
			return nil, errors.New("keeper: it did not start")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// start starts the keeper once, however many dials of the run found none;
// the channel is closed when it could not start or exited with an error
// (one that lost the race for the socket to another keeper exits 0).
func (k *Keep) start() <-chan struct{} {
	k.startMu.Lock()
	defer k.startMu.Unlock()
	if k.failed != nil {
		return k.failed
	}
	k.failed = make(chan struct{})
	cmd := exec.Command(k.Command[0], append(k.Command[1:], k.Socket)...)
	// Its own session: it outlives this run and no terminal signal of
	// the user's reaches it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Nothing of the run's: no folder held busy, no environment (a
	// secret in it would outlive the run); the agent's socket, when it is
	// used, comes with each request.
	cmd.Dir, cmd.Env = "/", []string{}
	if err := cmd.Start(); err != nil {
		close(k.failed)
		return k.failed
	}
	go func() {
		if cmd.Wait() != nil {
			close(k.failed)
		}
	}()
	return k.failed
}

// KeeperSocket is where the keeper of the store at root listens: in the
// store when the path is short enough for a unix socket, else in the
// user's runtime directory. "" when there is no such place.
func KeeperSocket(root string) string {
	p := filepath.Join(root, "run", "keeper.sock")
	if len(p) <= 100 {
		return p
	}
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(root))
	p = filepath.Join(dir, "shoal", "keeper-"+hex.EncodeToString(sum[:8])+".sock")
	if len(p) > 100 {
		return ""
	}
	return p
}
