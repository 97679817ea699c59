package machine

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"golang.org/x/crypto/ssh"
)

// keyOnlySSHD is an SSH server on a local port with a host key of its own
// that lets any key in and runs nothing: enough for Connect.
func keyOnlySSHD(t *testing.T) (port int, key ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	conf := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	conf.AddHostKey(signer)
	addr := drivertest.Serve(t, func(c net.Conn) {
		_, chans, reqs, err := ssh.NewServerConn(c, conf)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for ch := range chans {
			if ch.ChannelType() == "direct-tcpip" {
				go forwardTCP(ch)
				continue
			}
			ch.Reject(ssh.Prohibited, "nothing here")
		}
	})
	return addr.Port, signer.PublicKey()
}

// forwardTCP serves a direct-tcpip channel as sshd does: it dials the
// address asked for and pipes.
func forwardTCP(nch ssh.NewChannel) {
	var req struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &req); err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	c, err := net.Dial("tcp", net.JoinHostPort(req.Host, fmt.Sprint(req.Port)))
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		c.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	go func() { io.Copy(ch, c); ch.CloseWrite() }()
	io.Copy(c, ch)
	c.(*net.TCPConn).CloseWrite()
}

// TestConnectNewHostAtNewAddress: a machine whose address changed to a
// host with another key (a restore onto new hosts) is refused with the
// address connected to and the manager's step that takes it; with the
// machine named in AcceptNewHostKey, it is taken and its key replaces the
// old pin, after which the old host is the stranger.
func TestConnectNewHostAtNewAddress(t *testing.T) {
	m, _ := fakeManager(t)
	ctx := context.Background()
	oldPort, _ := keyOnlySSHD(t)
	newPort, newKey := keyOnlySSHD(t)
	connect := func(port int) error {
		t.Helper()
		mach, err := m.EnsureHost(ctx, fakeOpts("n1", drivertest.FakeConfig{Host: "127.0.0.1", Port: port, User: "root"}))
		if err != nil {
			t.Fatal(err)
		}
		c, err := m.Connect(ctx, mach, nil)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := connect(oldPort); err != nil {
		t.Fatalf("first contact: %v", err)
	}
	m.NewHostStep = func(name string) string { return "cluster up c.hcl --accept-new-host-key " + name }
	err := connect(newPort)
	var hke *sshrun.HostKeyError
	if !errors.As(err, &hke) || !hke.NewHost {
		t.Fatalf("want a new-host refusal, got %v", err)
	}
	for _, want := range []string{fmt.Sprintf("host at 127.0.0.1:%d", newPort), "\n  cluster up c.hcl --accept-new-host-key n1\n"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
	m.AcceptNewHostKey = map[string]bool{"n1": true}
	if err := connect(newPort); err != nil {
		t.Fatalf("new host accepted: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(m.Store.MachineDir("n1"), store.KnownHostsFile))
	if got := strings.Fields(string(b)); len(got) != 3 || got[0] != fmt.Sprintf("[127.0.0.1]:%d", newPort) || got[2] != strings.Fields(string(ssh.MarshalAuthorizedKey(newKey)))[1] {
		t.Errorf("known_hosts = %q, want the new host's key only", b)
	}
	m.AcceptNewHostKey = nil
	if err := connect(oldPort); !errors.As(err, &hke) || !hke.NewHost {
		t.Errorf("the old host after the new was taken: %v", err)
	}
}
