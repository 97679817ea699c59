package libvirt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	lv "github.com/digitalocean/go-libvirt"
	"github.com/shoal-dev/shoal/drivers"
	"libvirt.org/go/libvirtxml"
)

// testURI is libvirt's test hypervisor, built into the daemon: domains,
// pools, volumes and networks without QEMU, in the daemon's memory. Its
// state lives as long as a connection to it is open, so each test keeps
// one open throughout. Without a daemon (make lab-setup starts one) the
// tests skip, and fail in CI.
const testURI = "test:///default"

func testConn(t *testing.T) *conn {
	t.Helper()
	c, err := dial(context.Background(), testURI, os.Getenv, os.Geteuid())
	if err != nil {
		if strings.HasPrefix(err.Error(), "libvirt is not available") && os.Getenv("CI") != "true" {
			t.Skipf("no libvirt daemon (make lab-setup): %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// testDriver returns a driver on the test hypervisor for machine name.
func testDriver(t *testing.T, name string) *Driver {
	t.Helper()
	cfg := NewConfig()
	cfg.URI = testURI
	cfg.Pool = "default-pool" // the test hypervisor's pool
	cfg.Image = "/nonexistent.qcow2"
	d, err := Spec().New(drivers.Identity{Name: name, Dir: filepath.Join(t.TempDir(), "machines", name)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	drv := d.(*Driver)
	if err := os.MkdirAll(drv.m.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return drv
}

// defineTestMachine defines (as Create would) the domain of a machine and
// its volumes on the test hypervisor, and records them in the state.
func defineTestMachine(t *testing.T, c *conn, d *Driver) machineState {
	t.Helper()
	st, err := d.loadOrInitState()
	if err != nil {
		t.Fatal(err)
	}
	pool, _, err := ensurePool(c, st.Pool)
	if err != nil {
		t.Fatal(err)
	}
	base := volumeXML("shoal-base-test-000000000000.qcow2", 1<<30, "qcow2", "", "", "0644")
	bx, _ := base.Marshal()
	bvol, err := c.l.StorageVolCreateXML(pool, bx, 0)
	if isCode(err, lv.ErrStorageVolExist) {
		bvol, err = c.l.StorageVolLookupByName(pool, base.Name)
	}
	if err != nil {
		t.Fatal(err)
	}
	basePath, _ := c.l.StorageVolGetPath(bvol)
	st.BaseVolume = base.Name
	diskPath, err := d.ensureDisk(c, pool, &st, 10<<30, basePath, "qcow2")
	if err != nil {
		t.Fatal(err)
	}
	// The test hypervisor cannot upload: the seed volume is only created.
	st.SeedVolume = st.Domain + "-seed.iso"
	sx, _ := volumeXML(st.SeedVolume, 64<<10, "raw", "", "", "0644").Marshal()
	svol, err := c.l.StorageVolCreateXML(pool, sx, 0)
	if err != nil {
		t.Fatal(err)
	}
	seedPath, _ := c.l.StorageVolGetPath(svol)

	x, err := domainXML(domainSpec{
		Name: st.Domain, Type: "test", MemoryMiB: 512, CPUs: 1,
		DiskPath: diskPath, BasePath: basePath, BaseFormat: "qcow2", SeedPath: seedPath,
		Network: st.Network, MAC: st.MAC, MachineDir: d.m.Dir,
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dom, err := c.l.DomainDefineXML(x)
	if err != nil {
		t.Fatalf("define: %v\n%s", err, x)
	}
	st.UUID = uuidString(dom.UUID)
	if err := saveState(d.m.Dir, st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestTestHypervisorLifecycle(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()
	d := testDriver(t, "vm1")

	if s, err := d.State(ctx); err != nil || s != drivers.NotFound {
		t.Fatalf("state before create: %s %v", s, err)
	}
	st := defineTestMachine(t, conn, d)

	// What libvirt kept of the XML: the disks, the seed, the NIC.
	dom, err := conn.l.DomainLookupByName("vm1")
	if err != nil {
		t.Fatal(err)
	}
	x, err := conn.l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got libvirtxml.Domain
	if err := got.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	if got.Memory.Value != 512*1024 || got.VCPU.Value != 1 || len(got.Devices.Disks) != 2 ||
		got.Devices.Disks[1].Device != "cdrom" || !sameMAC(got.Devices.Interfaces[0].MAC.Address, st.MAC) {
		t.Fatalf("domain as libvirt keeps it:\n%s", x)
	}

	if s, err := d.State(ctx); err != nil || s != drivers.Stopped {
		t.Fatalf("state after define: %s %v", s, err)
	}
	if err := conn.l.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}
	if s, err := d.State(ctx); err != nil || s != drivers.Running {
		t.Fatalf("state after start: %s %v", s, err)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if s, _ := d.State(ctx); s != drivers.Stopped {
		t.Fatalf("state after stop: %s", s)
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("stop when stopped: %v", err)
	}
	_ = conn.l.DomainCreate(dom)
	if err := d.Kill(ctx); err != nil {
		t.Fatalf("kill: %v", err)
	}
	if s, _ := d.State(ctx); s != drivers.Stopped {
		t.Fatalf("state after kill: %s", s)
	}
	if err := d.Kill(ctx); err != nil {
		t.Fatalf("kill when stopped: %v", err)
	}

	ep, err := func() (drivers.Endpoint, error) {
		st.IP = "192.168.122.50"
		if err := saveState(d.m.Dir, st); err != nil {
			return drivers.Endpoint{}, err
		}
		return d.SSH(ctx)
	}()
	if err != nil || ep.Host != "192.168.122.50" || ep.Port != 22 || ep.User != "shoal" {
		t.Fatalf("endpoint %+v %v", ep, err)
	}

	// Running while removed: destroyed, undefined, volumes deleted, the
	// base kept.
	_ = conn.l.DomainCreate(dom)
	if err := d.Remove(ctx); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := conn.l.DomainLookupByName("vm1"); !isCode(err, lv.ErrNoDomain) {
		t.Fatalf("domain after remove: %v", err)
	}
	pool, err := conn.l.StoragePoolLookupByName("default-pool")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := conn.l.StoragePoolListVolumes(pool, 1024)
	for _, n := range names {
		if strings.HasPrefix(n, "vm1") {
			t.Errorf("volume %s left after remove", n)
		}
	}
	if !contains(names, st.BaseVolume) {
		t.Errorf("base volume removed: %v", names)
	}
	if s, err := d.State(ctx); err != nil || s != drivers.NotFound {
		t.Fatalf("state after remove: %s %v", s, err)
	}
	if err := d.Remove(ctx); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := d.SSH(ctx); err == nil {
		t.Fatal("endpoint of a removed machine")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestForeignDomain: a domain of the machine's name that shoal did not make
// for it is never touched: create refuses, rm leaves it.
func TestForeignDomain(t *testing.T) {
	conn := testConn(t)
	ctx := context.Background()
	d := testDriver(t, "test") // the test hypervisor's own domain is "test"
	img := filepath.Join(t.TempDir(), "img.qcow2")
	if err := os.WriteFile(img, qcow2Header(1<<30), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cfg.Image = img
	err := d.Create(ctx)
	var foreign *foreignDomainError
	if !errors.As(err, &foreign) {
		t.Fatalf("create over a foreign domain: %v", err)
	}
	if s, err := d.State(ctx); err != nil || s != drivers.NotFound {
		t.Fatalf("state: %s %v", s, err)
	}
	if err := d.Remove(ctx); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := conn.l.DomainLookupByName("test"); err != nil {
		t.Fatalf("foreign domain removed: %v", err)
	}
	if err := d.Start(ctx); err == nil {
		t.Fatal("start of a foreign domain")
	}
}

// TestReservation adds and removes a DHCP host entry the way Create and
// Remove do, where the test hypervisor supports network updates.
func TestReservation(t *testing.T) {
	conn := testConn(t)
	n, err := ensureNetwork(conn, "default")
	if err != nil {
		t.Fatal(err)
	}
	mac := "52:54:00:0a:0b:0c"
	if err := ensureReservation(conn, n, mac, "192.168.122.77"); err != nil {
		if strings.Contains(err.Error(), "not supported") {
			t.Skipf("test hypervisor: %v", err)
		}
		t.Fatal(err)
	}
	x, _ := conn.l.NetworkGetXMLDesc(n, 0)
	if hosts, _ := reservationsFor(x, mac); len(hosts) != 1 || hosts[0].IP != "192.168.122.77" {
		t.Fatalf("reservation not added:\n%s", x)
	}
	// Idempotent, and a new address replaces the old.
	if err := ensureReservation(conn, n, mac, "192.168.122.77"); err != nil {
		t.Fatal(err)
	}
	if err := ensureReservation(conn, n, mac, "192.168.122.78"); err != nil {
		t.Fatal(err)
	}
	x, _ = conn.l.NetworkGetXMLDesc(n, 0)
	if hosts, _ := reservationsFor(x, mac); len(hosts) != 1 || hosts[0].IP != "192.168.122.78" {
		t.Fatalf("reservation not replaced:\n%s", x)
	}
	if err := removeReservations(conn, n, mac); err != nil {
		t.Fatal(err)
	}
	x, _ = conn.l.NetworkGetXMLDesc(n, 0)
	if hosts, _ := reservationsFor(x, mac); len(hosts) != 0 {
		t.Fatalf("reservation left:\n%s", x)
	}
}

func TestEnsurePoolAndNetworkErrors(t *testing.T) {
	conn := testConn(t)
	if _, _, err := ensurePool(conn, "no-such-pool"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing pool: %v", err)
	}
	if _, err := ensureNetwork(conn, "no-such-net"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing network: %v", err)
	}
	// The default pool is made when missing (the test hypervisor has
	// "default-pool" only).
	_, path, err := ensurePool(conn, DefaultPool)
	if err != nil {
		t.Fatal(err)
	}
	if path != DefaultPoolPath {
		t.Fatalf("default pool at %s", path)
	}
}
