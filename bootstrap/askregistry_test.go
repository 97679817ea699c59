package bootstrap

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"golang.org/x/crypto/ssh"
)

// channelHost is a node's SSH connection as the registry's check uses it:
// DialTCP reaches a local server in the host's stead (or is refused, as
// by an sshd with AllowTcpForwarding no), RunSudo records what it runs.
type channelHost struct {
	srv        *httptest.Server
	prohibited bool
	// hangFirst: the first connection hangs until its context ends (a SYN
	// nothing answers).
	hangFirst bool

	mu     sync.Mutex
	dialed []string
	ran    []string
}

func (c *channelHost) Host() string { return "10.0.0.9" }
func (c *channelHost) DialUnix(context.Context, string) (net.Conn, error) {
	return nil, errors.New("no socket here")
}
func (c *channelHost) DialCommand(context.Context, string) (net.Conn, error) {
	return nil, errors.New("no command here")
}
func (c *channelHost) Sudo(cmd string) string { return "sudo " + cmd }
func (c *channelHost) RunSudo(_ context.Context, cmd string) (sshrun.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ran = append(c.ran, cmd)
	return sshrun.Result{Stdout: []byte("ok\n")}, nil
}
func (c *channelHost) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	c.mu.Lock()
	c.dialed = append(c.dialed, addr)
	hang := c.hangFirst && len(c.dialed) == 1
	c.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if c.prohibited {
		return nil, &ssh.OpenChannelError{Reason: ssh.Prohibited, Message: "administratively prohibited"}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", c.srv.Listener.Addr().String())
}

func registryServer(t *testing.T, status *int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" || r.Host != "reg:5000" {
			http.Error(w, "asked "+r.Host+r.URL.Path, http.StatusNotFound)
			return
		}
		w.WriteHeader(*status)
		w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// AskRegistry asks /v2/ by the registry's name, connecting where it is
// told (an address, else the name), and says no for an error status, a
// refused connection and an sshd that forwards no TCP (which Prohibited
// tells apart).
func TestAskRegistry(t *testing.T) {
	ctx := context.Background()
	status := http.StatusOK
	h := &channelHost{srv: registryServer(t, &status)}
	if err := AskRegistry(ctx, h, "reg", 5000, "10.1.2.3", time.Second); err != nil {
		t.Errorf("a registry that answers: %v", err)
	}
	if err := AskRegistry(ctx, h, "reg", 5000, "", time.Second); err != nil {
		t.Errorf("a registry that answers, by name: %v", err)
	}
	if got := strings.Join(h.dialed, " "); got != "10.1.2.3:5000 reg:5000" {
		t.Errorf("connected to %q; want the address given, then the name", got)
	}
	if err := AskRegistry(ctx, h, "reg", 5000, "fd00::7", time.Second); err != nil || h.dialed[2] != "[fd00::7]:5000" {
		t.Errorf("an IPv6 address: %v, dialed %q", err, h.dialed[2])
	}
	status = http.StatusServiceUnavailable
	if err := AskRegistry(ctx, h, "reg", 5000, "", time.Second); err == nil || sshrun.Prohibited(err) || !strings.Contains(err.Error(), "503") {
		t.Errorf("a registry answering 503: %v; want its status", err)
	}
	h.srv.Close()
	if err := AskRegistry(ctx, h, "reg", 5000, "", time.Second); err == nil || sshrun.Prohibited(err) {
		t.Errorf("no registry: %v; want an error that is not Prohibited", err)
	}
	h.prohibited = true
	if err := AskRegistry(ctx, h, "reg", 5000, "", time.Second); !sshrun.Prohibited(err) {
		t.Errorf("an sshd that forwards no TCP: %v; want Prohibited", err)
	}
}

// WaitRegistry asks through the SSH connection and runs nothing on the
// host; where its sshd forwards no TCP, it asks with curl there.
func TestWaitRegistryFallsBackToCurl(t *testing.T) {
	ctx := context.Background()
	status := http.StatusOK
	h := &channelHost{srv: registryServer(t, &status)}
	n := &Node{Name: "w1", R: h}
	if err := WaitRegistry(ctx, n, "reg", 5000, 5*time.Second); err != nil || len(h.ran) != 0 {
		t.Errorf("through the connection: %v, ran %q; want nothing run on the host", err, h.ran)
	}
	h.prohibited = true
	if err := WaitRegistry(ctx, n, "reg", 5000, 5*time.Second); err != nil || len(h.ran) != 1 || h.ran[0] != RegistryCheckCmd("reg", 5000, 5) {
		t.Errorf("an sshd that forwards no TCP: %v, ran %q; want the curl check once", err, h.ran)
	}
	h.prohibited = false
	h.srv.Close()
	err := WaitRegistry(ctx, n, "reg", 5000, 700*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "w1: the registry does not answer http://reg:5000/v2/") {
		t.Errorf("no registry: %v; want which node and which URL", err)
	}
}

// An ask that hangs does not hold up the next: WaitRegistry asks again
// registryPoll later, not when the hung ask's bound ends.
func TestWaitRegistryPastAHungAsk(t *testing.T) {
	status := http.StatusOK
	h := &channelHost{srv: registryServer(t, &status), hangFirst: true}
	start := time.Now()
	if err := WaitRegistry(context.Background(), &Node{Name: "m1", R: h}, "reg", 5000, 10*time.Second); err != nil {
		t.Fatalf("a registry that answers the second ask: %v", err)
	}
	if d := time.Since(start); d >= registryAskWait/2 {
		t.Errorf("WaitRegistry took %v: it waited for the hung ask (bound %v)", d, registryAskWait)
	}
	if len(h.dialed) != 2 {
		t.Errorf("connected %d times; want 2 (the hung one, then one that answered)", len(h.dialed))
	}
}
