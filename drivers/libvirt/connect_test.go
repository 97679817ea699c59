package libvirt

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestResolveURI: each URI shoal accepted with libvirt's C client reaches
// the daemon that client would have used.
func TestResolveURI(t *testing.T) {
	user := env(map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/u", "USER": "u"})
	noXDG := env(map[string]string{"HOME": "/home/u"})
	for _, tc := range []struct {
		uri     string
		getenv  func(string) string
		euid    int
		name    string
		sockets []string
		remote  bool
	}{
		{"qemu:///system", user, 0, "qemu:///system", []string{"/var/run/libvirt/libvirt-sock", "/var/run/libvirt/virtqemud-sock"}, false},
		{"qemu:///system", user, 1000, "qemu:///system", []string{"/var/run/libvirt/libvirt-sock", "/var/run/libvirt/virtqemud-sock"}, false},
		{"qemu:///session", user, 1000, "qemu:///session", []string{"/run/user/1000/libvirt/libvirt-sock", "/run/user/1000/libvirt/virtqemud-sock"}, false},
		{"qemu:///session", noXDG, 1000, "qemu:///session", []string{"/home/u/.cache/libvirt/libvirt-sock", "/home/u/.cache/libvirt/virtqemud-sock"}, false},
		{"qemu+unix:///system", user, 0, "qemu:///system", []string{"/var/run/libvirt/libvirt-sock", "/var/run/libvirt/virtqemud-sock"}, false},
		{"qemu+unix:///system?socket=/tmp/x.sock", user, 0, "qemu:///system", []string{"/tmp/x.sock"}, false},
		{"test:///default", user, 0, "test:///default", []string{"/var/run/libvirt/libvirt-sock"}, false},
		{"test:///default", user, 1000, "test:///default", []string{"/run/user/1000/libvirt/libvirt-sock"}, false},
		{"qemu+ssh://root@host/system", user, 0, "qemu:///system", nil, true},
		{"qemu+ssh://host:2222/system?keyfile=/k&no_verify=1", user, 0, "qemu:///system", nil, true},
		{"qemu+tcp://host/system", user, 0, "qemu:///system", nil, true},
		{"qemu+tls://host:16514/system", user, 0, "qemu:///system", nil, true},
		{"qemu://host/system", user, 0, "qemu:///system", nil, true},
	} {
		tgt, err := resolveURI(tc.uri, tc.getenv, tc.euid)
		if err != nil {
			t.Errorf("%s: %v", tc.uri, err)
			continue
		}
		if string(tgt.name) != tc.name || !reflect.DeepEqual(tgt.sockets, tc.sockets) || (tgt.remote != nil) != tc.remote {
			t.Errorf("%s (euid %d): name %s, sockets %v, remote %v; want %s, %v, %v", tc.uri, tc.euid, tgt.name, tgt.sockets, tgt.remote != nil, tc.name, tc.sockets, tc.remote)
		}
	}
	if tgt, _ := resolveURI("qemu:///session", user, 1000); !tgt.autostart {
		t.Error("the user's session daemon is not started on demand")
	}
	for _, e := range []struct {
		getenv func(string) string
		euid   int
	}{{user, 0}, {env(map[string]string{"LIBVIRT_AUTOSTART": "0"}), 1000}} {
		if tgt, _ := resolveURI("qemu:///session", e.getenv, e.euid); tgt.autostart {
			t.Errorf("session daemon started on demand for euid %d, LIBVIRT_AUTOSTART=%q", e.euid, e.getenv("LIBVIRT_AUTOSTART"))
		}
	}
	if tgt, _ := resolveURI("qemu:///system", user, 1000); tgt.autostart {
		t.Error("root's daemon started on demand")
	}
	for _, uri := range []string{"qemu+ext:///system", "qemu+unix://otherhost/system", "/var/run/libvirt/libvirt-sock", "%zz"} {
		if _, err := resolveURI(uri, user, 0); err == nil {
			t.Errorf("%s: no error", uri)
		}
	}
}

// TestUnavailable: without a daemon the error names the URI and the
// sockets tried, and says what to install and start.
func TestUnavailable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nonexistent-sock")
	_, err := dial(context.Background(), "qemu+unix:///system?socket="+sock, os.Getenv, os.Geteuid())
	if err == nil {
		t.Fatal("connected to a socket that does not exist")
	}
	for _, want := range []string{"libvirt is not available at qemu+unix:///system?socket=" + sock, sock,
		"apt-get install libvirt-daemon-system qemu-system-x86", "dnf install libvirt-daemon-kvm", "start libvirtd", "--libvirt-uri"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	// A socket nobody accepts on (a stale file): refused, same advice.
	stale := filepath.Join(t.TempDir(), "stale-sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := dial(context.Background(), "qemu+unix:///system?socket="+stale, os.Getenv, os.Geteuid()); err == nil || !strings.Contains(err.Error(), "start libvirtd") {
		t.Errorf("stale socket: %v", err)
	}

	// The user's daemon: said so.
	_, err = dial(context.Background(), "qemu:///session", env(map[string]string{"XDG_RUNTIME_DIR": t.TempDir(), "LIBVIRT_AUTOSTART": "0"}), 1000)
	if err == nil || !strings.Contains(err.Error(), "as this user") || !strings.Contains(err.Error(), "apt-get install") {
		t.Errorf("session: %v", err)
	}

	// Through the driver.
	d := &Driver{m: drivers.Identity{Name: "x", Dir: t.TempDir()}, cfg: Config{URI: "qemu+unix:///system?socket=" + sock}.withDefaults()}
	if err := saveState(d.m.Dir, machineState{Domain: "x", UUID: "u"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.State(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "libvirt is not available") {
		t.Fatalf("state without libvirtd: %v", err)
	}
}

// TestCallBounded: a daemon that accepts and never answers holds no call
// past its context.
func TestCallBounded(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mute-sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = dial(ctx, "qemu+unix:///system?socket="+sock, os.Getenv, os.Geteuid())
	if err == nil {
		t.Fatal("connected to a daemon that never answers")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("dial took %s past a 500ms context", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not say the time ran out: %v", err)
	}
}

func TestUUIDString(t *testing.T) {
	u := [16]byte{0x6c, 0x2f, 0x4a, 0x01, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x02, 0x03, 0x04}
	if got := uuidString(u); got != "6c2f4a01-1234-5678-9abc-def001020304" {
		t.Fatal(got)
	}
}
