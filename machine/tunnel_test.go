package machine

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers/drivertest"
)

func TestDockerHost(t *testing.T) {
	const url = "tcp://10.0.0.5:2376"
	tun := &Tunnel{Port: 40001, PID: 7}
	cases := []struct {
		name, jump string
		t          *Tunnel
		alive      bool
		host       string
		note       bool
	}{
		{"direct", "", nil, false, url, false},
		{"jump, no tunnel", "ops@bastion", nil, false, url, true},
		{"jump, tunnel", "ops@bastion", tun, true, "tcp://127.0.0.1:40001", false},
		{"jump, dead tunnel", "ops@bastion", tun, false, url, true},
		{"direct, tunnel", "", tun, true, "tcp://127.0.0.1:40001", false},
	}
	for _, c := range cases {
		host, note := DockerHost("edge", url, c.jump, c.t, c.alive)
		if host != c.host || (note != "") != c.note {
			t.Errorf("%s: %q, %q", c.name, host, note)
		}
		if c.note && !strings.Contains(note, "machine tunnel edge") {
			t.Errorf("%s: the note does not name the command: %s", c.name, note)
		}
	}
}

func TestParseTunnel(t *testing.T) {
	for in, ok := range map[string]bool{
		`{"port":40001,"pid":12}`: true,
		`{"port":0,"pid":12}`:     false,
		`{"port":70000,"pid":12}`: false,
		`{"port":22}`:             false,
		`port=22`:                 false,
	} {
		if _, err := ParseTunnel([]byte(in)); (err == nil) != ok {
			t.Errorf("%s: %v", in, err)
		}
	}
}

func FuzzParseTunnel(f *testing.F) {
	f.Add([]byte(`{"port":40001,"pid":12}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if tun, err := ParseTunnel(b); err == nil && (tun.Port < 1 || tun.Port > 65535 || tun.PID < 1) {
			t.Errorf("accepted %+v", tun)
		}
	})
}

// echoServer answers each line with the same line, uppercased.
func echoServer(t *testing.T) string {
	addr := drivertest.Serve(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprint(c, strings.ToUpper(line))
		}
	})
	return addr.String()
}

// TestServeTunnel: connections to the tunnel's port reach the engine's
// address as the machine dials it over SSH; the tunnel is recorded while it
// serves and the record goes with it.
func TestServeTunnel(t *testing.T) {
	m, _ := fakeManager(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port, _ := keyOnlySSHD(t)
	mach, err := m.EnsureHost(ctx, fakeOpts("n1", drivertest.FakeConfig{Host: "127.0.0.1", Port: port, User: "root"}))
	if err != nil {
		t.Fatal(err)
	}
	engine := echoServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- m.ServeTunnel(ctx, mach, ln, engine) }()
	for i := 0; i < 2; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "ping %d\n", i)
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != fmt.Sprintf("PING %d\n", i) {
			t.Fatalf("through the tunnel: %q, %v", got, err)
		}
	}
	tun, err := ReadTunnel(mach.Dir)
	if err != nil || tun == nil || tun.Port != ln.Addr().(*net.TCPAddr).Port || tun.PID != os.Getpid() || !tun.Alive() {
		t.Errorf("tunnel record: %+v, %v", tun, err)
	}
	if st, err := os.Stat(filepath.Join(mach.Dir, TunnelFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("tunnel record mode: %v", err)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeTunnel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeTunnel did not end with its context")
	}
	if _, err := os.Stat(filepath.Join(mach.Dir, TunnelFile)); !os.IsNotExist(err) {
		t.Errorf("the tunnel record stays: %v", err)
	}
}
