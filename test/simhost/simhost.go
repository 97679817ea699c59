// Package simhost simulates hosts for `cluster up` at a scale no lab
// reaches: each host is an in-process SSH server (on 127.0.0.1, a port of
// its own) that answers shoal's provisioning protocol as a Debian 12 host
// with Docker would, and its engine is a node of an in-memory swarm
// (bootstrap/enginetest), reached through machine.Manager.OpenEngine. It
// is for tests and benchmarks: nothing in shoal's commands uses it.
package simhost

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/shoal-dev/shoal/bootstrap/enginetest"
)

// Lab is a set of simulated hosts sharing one in-memory swarm world.
type Lab struct {
	World *enginetest.World
	// RegistryPort is where the registry answers on every host (set
	// before the run).
	RegistryPort int
	dir          string
	cfg          *ssh.ServerConfig

	mu    sync.Mutex
	hosts map[string]*Host

	// Sessions counts the SSH sessions (exec and SFTP) the hosts opened;
	// Logins the SSH connections they took; BytesIn what clients sent
	// (stdin, SFTP data and commands).
	Sessions, Logins, BytesIn atomic.Int64
	// open counts the sockets the simulation itself holds (listeners and
	// accepted connections), to tell them from the client's.
	open atomic.Int64
}

// New returns an empty lab whose hosts keep their uploads under dir.
func New(dir string) (*Lab, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	// Any client key is taken: the hosts are shoal's own simulation.
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	cfg.AddHostKey(signer)
	return &Lab{World: enginetest.NewWorld(), RegistryPort: 5000, dir: dir, cfg: cfg, hosts: map[string]*Host{}}, nil
}

// Add starts a host: name is its machine's name and hostname, addr its
// cluster address. It answers SSH on h.Port until Close.
func (l *Lab) Add(name, addr string) (*Host, error) {
	home := filepath.Join(l.dir, name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	h := newHost(l, name, addr, home)
	h.ln, h.Port = ln, ln.Addr().(*net.TCPAddr).Port
	enginetest.NewEngine(l.World, name, addr)
	l.mu.Lock()
	l.hosts[name] = h
	l.mu.Unlock()
	go h.serve()
	return h, nil
}

// Host returns the host of that name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// Hosts returns every host, by name.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Host, 0, len(l.hosts))
	for _, h := range l.hosts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// OpenSockets is how many sockets the simulation itself holds open.
func (l *Lab) OpenSockets() int64 { return l.open.Load() }

// Close stops every host and closes their connections.
func (l *Lab) Close() {
	for _, h := range l.Hosts() {
		h.close()
	}
}

func (h *Host) serve() {
	for {
		nc, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.lab.open.Add(1)
		h.mu.Lock()
		h.conns = append(h.conns, nc)
		h.mu.Unlock()
		go h.handle(nc)
	}
}

func (h *Host) close() {
	if h.ln.Close() == nil {
		h.lab.open.Add(-1)
	}
	h.mu.Lock()
	conns := h.conns
	h.conns = nil
	h.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// countConn counts what the client sends.
type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (h *Host) handle(nc net.Conn) {
	defer h.lab.open.Add(-1)
	defer nc.Close()
	_, chans, reqs, err := ssh.NewServerConn(countConn{nc, &h.lab.BytesIn}, h.lab.cfg)
	if err != nil {
		return
	}
	h.lab.Logins.Add(1)
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			go h.session(nch)
		case "direct-tcpip":
			go h.directTCP(nch)
		default:
			nch.Reject(ssh.UnknownChannelType, "not simulated")
		}
	}
}

func exitStatus(ch ssh.Channel, code int) {
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
	ch.Close()
}

func (h *Host) session(nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	h.lab.Sessions.Add(1)
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() {
				// The commands read no stdin but the fake's: drain it.
				go func() { _, _ = io.Copy(io.Discard, ch) }()
				code := h.Exec(p.Command, ch, ch.Stderr())
				exitStatus(ch, code)
			}()
		case "subsystem":
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() {
				srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(h.home))
				if err == nil {
					_ = srv.Serve()
					srv.Close()
				}
				exitStatus(ch, 0)
			}()
		default:
			if req.WantReply {
				req.Reply(req.Type == "env", nil)
			}
		}
	}
}

// directTCP answers a forwarded connection to the registry's port with
// what a registry says to /v2/; any other port refuses.
func (h *Host) directTCP(nch ssh.NewChannel) {
	var p struct {
		Host  string
		Port  uint32
		OHost string
		OPort uint32
	}
	if ssh.Unmarshal(nch.ExtraData(), &p) != nil || !h.registryAt(int(p.Port)) {
		nch.Reject(ssh.ConnectionFailed, fmt.Sprintf("connect %s:%d: connection refused", p.Host, p.Port))
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	serveRegistry(ch)
}

// Addr is simulated host i's cluster address (from 0): distinct for
// millions of hosts, never a .0 or .255.
func Addr(i int) string { return fmt.Sprintf("10.%d.%d.%d", 20+i/62500, i/250%250, i%250+1) }

// Name is simulated host i's machine name (from 0).
func Name(i int) string { return fmt.Sprintf("h%04d", i+1) }

// Endpoint is where a simulated host answers.
type Endpoint struct {
	Name, Addr string
	Port       int
}

// ClusterFile is a cluster file for the hosts: the first managers are
// managers, the others workers, all through the fake driver as root, with
// the registry on the first.
func ClusterFile(hosts []Endpoint, managers int) string {
	var b strings.Builder
	b.WriteString("cluster \"sim\" {}\n")
	for i, h := range hosts {
		role := "worker"
		if i < managers {
			role = "manager"
		}
		fmt.Fprintf(&b, "machine %q {\n  role = %q\n  driver = \"fake\"\n  fake {\n    host = \"127.0.0.1\"\n    port = %d\n    user = \"root\"\n    address = %q\n  }\n}\n",
			h.Name, role, h.Port, h.Addr)
	}
	if len(hosts) > 0 {
		fmt.Fprintf(&b, "registry {\n  node = %q\n  port = 5000\n}\n", hosts[0].Name)
	}
	return b.String()
}
