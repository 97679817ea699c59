package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
)

// TunnelFile, in a machine's folder, records the running `machine tunnel`
// of the machine: the local port its engine is forwarded to, and the
// process that serves it.
const TunnelFile = "tunnel.json"

// Tunnel is a TunnelFile.
type Tunnel struct {
	Port int `json:"port"`
	PID  int `json:"pid"`
}

// ParseTunnel reads a TunnelFile's contents; anything but a port and a
// process id in range is an error.
func ParseTunnel(b []byte) (*Tunnel, error) {
	var t Tunnel
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", TunnelFile, err)
	}
	if t.Port < 1 || t.Port > 65535 || t.PID < 1 {
		return nil, fmt.Errorf("%s: port %d, pid %d: not a tunnel", TunnelFile, t.Port, t.PID)
	}
	return &t, nil
}

// ReadTunnel returns the machine's recorded tunnel, nil when there is none.
func ReadTunnel(dir string) (*Tunnel, error) {
	b, err := os.ReadFile(filepath.Join(dir, TunnelFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseTunnel(b)
}

// Alive tells whether the tunnel's process runs and its port answers.
func (t *Tunnel) Alive() bool {
	if t == nil || syscall.Kill(t.PID, 0) != nil {
		return false
	}
	c, err := net.DialTimeout("tcp", tunnelAddr(t.Port), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func tunnelAddr(port int) string { return net.JoinHostPort("127.0.0.1", fmt.Sprint(port)) }

// DockerHost decides where `machine env` points the docker CLI: at the
// machine's tunnel when one runs (the engine's certificate names
// 127.0.0.1, so TLS is checked as ever), else at the engine's own URL. A
// machine reached through a jump host without a tunnel gets a note: its
// engine port may be reachable from here only through SSH.
func DockerHost(name, url, proxyJump string, t *Tunnel, alive bool) (host, note string) {
	if t != nil && alive {
		return "tcp://" + tunnelAddr(t.Port), ""
	}
	if proxyJump != "" {
		note = fmt.Sprintf("%s is reached through the jump host %s: if its engine (%s) is not reachable from here, run 'machine tunnel %s' (it keeps running) and run env again", name, proxyJump, url, name)
	}
	return url, note
}

// EngineAddr is the engine's host:port of a tcp:// URL, as the machine
// itself reaches it.
func EngineAddr(url string) (string, error) {
	addr, ok := strings.CutPrefix(url, "tcp://")
	if !ok || addr == "" {
		return "", fmt.Errorf("engine URL %q is not tcp://HOST:PORT", url)
	}
	return addr, nil
}

// ServeTunnel forwards each connection ln accepts to engineAddr, dialled
// from the machine over its SSH connection (through its jump hosts), until
// ctx ends. The bytes are the docker CLI's TLS session with the engine: the
// tunnel sees no secret. It records the tunnel in the machine's folder
// while it serves. A lost SSH connection is made again at the next
// connection.
func (m *Manager) ServeTunnel(ctx context.Context, mach *Machine, ln net.Listener, engineAddr string) error {
	port := ln.Addr().(*net.TCPAddr).Port
	rec, _ := json.Marshal(Tunnel{Port: port, PID: os.Getpid()})
	path := filepath.Join(mach.Dir, TunnelFile)
	if err := fsutil.WriteFileAtomic(path, rec, 0o600); err != nil {
		return err
	}
	defer func() {
		// Another tunnel may have started since: its record stays.
		if b, err := os.ReadFile(path); err == nil && string(b) == string(rec) {
			os.Remove(path)
		}
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	f := &forwarder{m: m, mach: mach, addr: engineAddr}
	defer f.close()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.serve(ctx, c)
		}()
	}
}

// forwarder holds the tunnel's one SSH connection to the machine.
type forwarder struct {
	m    *Manager
	mach *Machine
	addr string

	mu     sync.Mutex
	client *sshrun.Client
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.client != nil {
		f.client.Close()
	}
}

// dial opens a channel to the engine, connecting (again) when needed.
func (f *forwarder) dial(ctx context.Context) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if f.client != nil {
		if c, err := f.client.DialTCP(dctx, f.addr); err == nil {
			return c, nil
		}
		f.client.Close()
		f.client = nil
	}
	client, err := f.m.Connect(ctx, f.mach, io.Discard)
	if err != nil {
		return nil, err
	}
	f.client = client
	return client.DialTCP(dctx, f.addr)
}

func (f *forwarder) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	remote, err := f.dial(ctx)
	if err != nil {
		f.m.Progress.Event(f.mach.Name, "tunnel", ui.Failed, err.Error())
		return
	}
	defer remote.Close()
	// Closed when ctx ends, so that open sessions do not keep the tunnel.
	stop := context.AfterFunc(ctx, func() { c.Close(); remote.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(remote, c)
	go pipe(c, remote)
	<-done
	<-done
}
