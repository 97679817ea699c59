package libvirt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	lv "github.com/digitalocean/go-libvirt"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"golang.org/x/crypto/ssh"
)

// The integration test runs a real VM under libvirtd and QEMU. It is gated:
// SHOAL_LIBVIRT_E2E=1 runs it, and so does CI=true, where a missing
// prerequisite is a failure rather than a skip.
func integrationGate(t *testing.T) {
	t.Helper()
	if os.Getenv("SHOAL_LIBVIRT_E2E") != "1" && os.Getenv("CI") != "true" {
		t.Skip("set SHOAL_LIBVIRT_E2E=1 to run a real VM (libvirtd + QEMU)")
	}
}

// missing fails in CI and skips elsewhere.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// labImage runs the lab script: libvirtd up, the cloud image built when
// missing. It returns the image's path.
func labImage(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "the lab needs root (libvirtd, qemu:///system)")
	}
	script := filepath.Join(repoRoot(t), "test", "lab", "libvirt.sh")
	for _, verb := range []string{"setup", "image"} {
		start := time.Now()
		cmd := exec.Command("bash", script, verb)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			missing(t, "%s %s: %v\n%s", script, verb, err, stderr.String())
		}
		t.Logf("lab %s: %s", verb, time.Since(start).Round(time.Second))
		if verb == "image" {
			img := strings.TrimSpace(string(out))
			if img == "" {
				missing(t, "%s image printed no path", script)
			}
			return img
		}
	}
	return ""
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newTestMachine makes a machine folder inside a store layout with its SSH key.
func newTestMachine(t *testing.T, name string) drivers.Identity {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "machines", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return drivers.Identity{
		Name:           name,
		Dir:            dir,
		PublicKey:      strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))),
		PrivateKeyPath: keyPath,
	}
}

// sshRun connects with the machine's key, accepting only the host key
// whose fingerprint the driver announced, and runs cmd.
func sshRun(t *testing.T, ep drivers.Endpoint, cmd string) string {
	t.Helper()
	keyPEM, err := os.ReadFile(ep.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ClientConfig{
		User: ep.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != ep.HostKeyFingerprint {
				return fmt.Errorf("host key %s, pinned %s", got, ep.HostKeyFingerprint)
			}
			return nil
		},
		// Only the pinned key's type: a server offering others must still
		// present the pinned one.
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           10 * time.Second,
	}
	client, err := ssh.Dial("tcp", ep.Address(), cfg)
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", ep.User, ep.Address(), err)
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("ssh %s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

func TestIntegrationRealVM(t *testing.T) {
	integrationGate(t)
	image := os.Getenv("SHOAL_LIBVIRT_IMAGE")
	if image == "" {
		image = labImage(t)
	}
	name := "shoal-it-" + randomSuffix(t)
	m := newTestMachine(t, name)
	cfg := NewConfig()
	cfg.Image = image
	if dt := os.Getenv("SHOAL_LIBVIRT_DOMAIN_TYPE"); dt != "" {
		cfg.DomainType = dt
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	drv, err := Spec().New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}

	// The test's own connection lives as long as the test: a dial without
	// a deadline is bounded by callTimeout (5 min), which a slow boot
	// outlasts, and the socket would close under the checks at the end.
	connCtx, connCancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer connCancel()
	conn, err := dial(connCtx, cfg.URI, os.Getenv, os.Geteuid())
	if err != nil {
		missing(t, "libvirt at %s: %v", cfg.URI, err)
	}
	defer conn.close()

	// Whatever happens, the VM, its volumes and its reservation go.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if st, _, _ := loadState(m.Dir); t.Failed() && st.ConsoleLog != "" {
			if b, err := os.ReadFile(st.ConsoleLog); err == nil {
				t.Logf("guest console (last 6000 bytes):\n%s", tail(b, 6000))
			}
		}
		if err := drv.Remove(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	if err := drv.Create(ctx); err != nil {
		t.Fatalf("create: %v", err)
	}
	createTime := time.Since(start)
	st, _, err := loadState(m.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := drv.SSH(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host == "" || ep.Port != 22 || ep.User != DefaultSSHUser || ep.KeyPath != m.PrivateKeyPath || !strings.HasPrefix(ep.HostKeyFingerprint, "SHA256:") {
		t.Fatalf("endpoint %+v", ep)
	}
	uptime := sshRun(t, ep, "cat /proc/uptime")
	t.Logf("create -> SSH ready: %s (domain type %s, %s); guest uptime at SSH ready: %ss",
		createTime.Round(time.Second), st.DomainType, ep.Host, strings.Fields(uptime)[0])
	t.Logf("guest: %s", strings.TrimSpace(sshRun(t, ep, "systemd-analyze time 2>&1 | head -1; sudo -n true && echo sudo ok; hostname; docker --version 2>&1 || true")))
	if got := strings.TrimSpace(sshRun(t, ep, "hostname")); got != name {
		t.Errorf("hostname %q, want %q", got, name)
	}
	if s, err := drv.State(ctx); err != nil || s != drivers.Running {
		t.Fatalf("state %s, %v; want Running", s, err)
	}
	if !hasReservation(t, conn, st.Network, st.MAC, ep.Host) {
		t.Fatalf("no DHCP reservation %s -> %s in network %s", st.MAC, ep.Host, st.Network)
	}
	// Create again is a no-op on a running machine.
	if err := drv.Create(ctx); err != nil {
		t.Fatalf("second create: %v", err)
	}

	start = time.Now()
	if err := drv.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("stop (ACPI): %s", time.Since(start).Round(time.Second))
	if s, err := drv.State(ctx); err != nil || s != drivers.Stopped {
		t.Fatalf("state after stop %s, %v; want Stopped", s, err)
	}
	if err := drv.Stop(ctx); err != nil {
		t.Fatalf("stop of a stopped machine: %v", err)
	}
	start = time.Now()
	if err := drv.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("start -> SSH ready: %s", time.Since(start).Round(time.Second))
	ep2, err := drv.SSH(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ep2.Host != ep.Host {
		t.Fatalf("address changed across stop/start: %s -> %s", ep.Host, ep2.Host)
	}
	sshRun(t, ep2, "true") // same pinned host key after a reboot

	if err := drv.Kill(ctx); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if s, err := drv.State(ctx); err != nil || s != drivers.Stopped {
		t.Fatalf("state after kill %s, %v; want Stopped", s, err)
	}

	if err := drv.Remove(ctx); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if s, err := drv.State(ctx); err != nil || s != drivers.NotFound {
		t.Fatalf("state after remove %s, %v; want NotFound", s, err)
	}
	if _, err := conn.l.DomainLookupByName(name); err == nil {
		t.Errorf("domain %s still defined after remove", name)
	}
	pool, err := conn.l.StoragePoolLookupByName(st.Pool)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.l.StoragePoolRefresh(pool, 0)
	names, err := conn.l.StoragePoolListVolumes(pool, 4096)
	if err != nil {
		t.Fatal(err)
	}
	baseLeft := false
	for _, v := range names {
		if strings.HasPrefix(v, name) {
			t.Errorf("volume %s still in pool %s after remove", v, st.Pool)
		}
		baseLeft = baseLeft || v == st.BaseVolume
	}
	if !baseLeft {
		t.Errorf("shared base volume %s was removed", st.BaseVolume)
	}
	if hasReservation(t, conn, st.Network, st.MAC, "") {
		t.Errorf("DHCP reservation for %s still in network %s after remove", st.MAC, st.Network)
	}
	if err := drv.Remove(ctx); err != nil {
		t.Errorf("second remove: %v", err)
	}
}

// hasReservation says whether the network (live or persistent) reserves an
// address for mac (ip when not empty).
func hasReservation(t *testing.T, c *conn, network, mac, ip string) bool {
	t.Helper()
	n, err := c.l.NetworkLookupByName(network)
	if err != nil {
		t.Fatal(err)
	}
	for _, flags := range []lv.NetworkXMLFlags{0, lv.NetworkXMLInactive} {
		x, err := c.l.NetworkGetXMLDesc(n, uint32(flags))
		if err != nil {
			t.Fatal(err)
		}
		hosts, err := reservationsFor(x, mac)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if ip == "" || h.IP == ip {
				return true
			}
		}
	}
	return false
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TestIntegrationConformance runs the suite every driver passes against
// real VMs.
func TestIntegrationConformance(t *testing.T) {
	integrationGate(t)
	image := os.Getenv("SHOAL_LIBVIRT_IMAGE")
	if image == "" {
		image = labImage(t)
	}
	drivertest.Conformance(t, func(t *testing.T) drivers.Driver {
		name := "shoal-ct-" + randomSuffix(t)
		cfg := NewConfig()
		cfg.Image = image
		if dt := os.Getenv("SHOAL_LIBVIRT_DOMAIN_TYPE"); dt != "" {
			cfg.DomainType = dt
		}
		d, err := Spec().New(newTestMachine(t, name), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// TestIntegrationUpload streams a volume larger than one RPC packet (4 MiB)
// into the pool and reads it back; a context that ends aborts an upload.
func TestIntegrationUpload(t *testing.T) {
	integrationGate(t)
	if os.Geteuid() != 0 {
		missing(t, "the lab needs root (libvirtd, qemu:///system)")
	}
	// Cleanups, not defers: the volumes are removed on this connection
	// after the test's function returned.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	c, err := dial(ctx, DefaultURI, os.Getenv, os.Geteuid())
	if err != nil {
		missing(t, "libvirt at %s: %v", DefaultURI, err)
	}
	t.Cleanup(c.close) // after the volumes' removal
	pool, _, err := ensurePool(c, DefaultPool)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 9<<20+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	newVol := func(name string) lv.StorageVol {
		t.Helper()
		x, err := volumeXML(name, uint64(len(data)), formatRaw, "", "", "0600").Marshal()
		if err != nil {
			t.Fatal(err)
		}
		vol, err := c.l.StorageVolCreateXML(pool, x, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.l.StorageVolDelete(vol, 0); err != nil {
				t.Errorf("remove volume %s: %v", name, err)
			}
		})
		return vol
	}

	vol := newVol("shoal-it-upload-" + randomSuffix(t) + ".raw")
	start := time.Now()
	sum, err := upload(ctx, c, vol, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(data); sum != hex.EncodeToString(want[:]) {
		t.Fatalf("upload returned sha256 %s, want %x", sum, want)
	}
	p, err := c.l.StorageVolGetPath(vol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.l.ConnectGetLibVersion(); err != nil {
		t.Fatalf("connection after upload: %v", err)
	}
	// The pool is local (qemu:///system, as root): read the file itself.
	back, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, data) {
		t.Fatalf("%s: %d bytes that differ from the %d uploaded", p, len(back), len(data))
	}
	t.Logf("%d MiB uploaded in %s", len(data)>>20, time.Since(start).Round(time.Millisecond))

	// Cancelled after the first packet: the upload stops with the
	// context's error, on a connection of its own (the cancelled one is
	// closed).
	c2, err := dial(ctx, DefaultURI, os.Getenv, os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.close()
	cctx, ccancel := context.WithCancel(ctx)
	r := &cancelAfter{r: bytes.NewReader(data), n: 4 << 20, cancel: ccancel}
	vol2 := newVol("shoal-it-upload-" + randomSuffix(t) + ".raw")
	if _, err := upload(cctx, c2, vol2, r, int64(len(data))); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled upload: %v", err)
	}
	if _, err := c2.l.ConnectGetLibVersion(); err != nil {
		t.Fatalf("connection after a cancelled upload: %v", err)
	}
}

// cancelAfter cancels a context once n bytes were read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}
