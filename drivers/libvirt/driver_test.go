//go:build cgo && libvirt_dlopen

package libvirt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/drivers"
	lv "libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"
)

// testURI is libvirt's in-process test hypervisor: domains, pools, volumes
// and networks without root, daemons or QEMU. Its state lives as long as a
// connection to it is open, so each test keeps one open throughout.
const testURI = "test:///default"

func testConn(t *testing.T) *lv.Connect {
	t.Helper()
	conn, err := lv.NewConnect(testURI)
	if err != nil {
		if strings.Contains(err.Error(), "libvirt.so") && os.Getenv("CI") != "true" {
			t.Skipf("libvirt library not installed (make lab-setup): %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Close() })
	return conn
}

// testDriver returns a driver on the test hypervisor for machine name.
func testDriver(t *testing.T, name string) *Driver {
	t.Helper()
	cfg := NewConfig()
	cfg.URI = testURI
	cfg.Pool = "default-pool" // the test hypervisor's pool
	cfg.Image = "/nonexistent.qcow2"
	d, err := Spec().New(drivers.Machine{Name: name, Dir: filepath.Join(t.TempDir(), "machines", name)}, cfg)
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
func defineTestMachine(t *testing.T, conn *lv.Connect, d *Driver) machineState {
	t.Helper()
	st, err := d.loadOrInitState()
	if err != nil {
		t.Fatal(err)
	}
	pool, _, err := ensurePool(conn, st.Pool)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Free()
	base := volumeXML("shoal-base-test-000000000000.qcow2", 1<<30, "qcow2", "", "", "0644")
	bx, _ := base.Marshal()
	bvol, err := pool.StorageVolCreateXML(bx, 0)
	if err != nil && !isCode(err, lv.ERR_STORAGE_VOL_EXIST) {
		t.Fatal(err)
	}
	if bvol == nil {
		bvol, err = pool.LookupStorageVolByName(base.Name)
		if err != nil {
			t.Fatal(err)
		}
	}
	defer bvol.Free()
	basePath, _ := bvol.GetPath()
	st.BaseVolume = base.Name
	diskPath, err := d.ensureDisk(pool, &st, 10<<30, basePath, "qcow2")
	if err != nil {
		t.Fatal(err)
	}
	// The test hypervisor cannot upload: the seed volume is only created.
	st.SeedVolume = st.Domain + "-seed.iso"
	sx, _ := volumeXML(st.SeedVolume, 64<<10, "raw", "", "", "0644").Marshal()
	svol, err := pool.StorageVolCreateXML(sx, 0)
	if err != nil {
		t.Fatal(err)
	}
	seedPath, _ := svol.GetPath()
	svol.Free()

	x, err := domainXML(domainSpec{
		Name: st.Domain, Type: "test", MemoryMiB: 512, CPUs: 1,
		DiskPath: diskPath, BasePath: basePath, BaseFormat: "qcow2", SeedPath: seedPath,
		Network: st.Network, MAC: st.MAC, MachineDir: d.m.Dir,
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dom, err := conn.DomainDefineXML(x)
	if err != nil {
		t.Fatalf("define: %v\n%s", err, x)
	}
	defer dom.Free()
	if st.UUID, err = dom.GetUUIDString(); err != nil {
		t.Fatal(err)
	}
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
	dom, err := conn.LookupDomainByName("vm1")
	if err != nil {
		t.Fatal(err)
	}
	x, err := dom.GetXMLDesc(0)
	if err != nil {
		t.Fatal(err)
	}
	dom.Free()
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
	dom, _ = conn.LookupDomainByName("vm1")
	if err := dom.Create(); err != nil {
		t.Fatal(err)
	}
	dom.Free()
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
	dom, _ = conn.LookupDomainByName("vm1")
	_ = dom.Create()
	dom.Free()
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
	dom, _ = conn.LookupDomainByName("vm1")
	_ = dom.Create()
	dom.Free()
	if err := d.Remove(ctx); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := conn.LookupDomainByName("vm1"); !isCode(err, lv.ERR_NO_DOMAIN) {
		t.Fatalf("domain after remove: %v", err)
	}
	pool, err := conn.LookupStoragePoolByName("default-pool")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Free()
	names, _ := pool.ListStorageVolumes()
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
	dom, err := conn.LookupDomainByName("test")
	if err != nil {
		t.Fatalf("foreign domain removed: %v", err)
	}
	dom.Free()
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
	defer n.Free()
	mac := "52:54:00:0a:0b:0c"
	if err := ensureReservation(n, mac, "192.168.122.77"); err != nil {
		if strings.Contains(err.Error(), "not supported") {
			t.Skipf("test hypervisor: %v", err)
		}
		t.Fatal(err)
	}
	x, _ := n.GetXMLDesc(0)
	if hosts, _ := reservationsFor(x, mac); len(hosts) != 1 || hosts[0].IP != "192.168.122.77" {
		t.Fatalf("reservation not added:\n%s", x)
	}
	// Idempotent, and a new address replaces the old.
	if err := ensureReservation(n, mac, "192.168.122.77"); err != nil {
		t.Fatal(err)
	}
	if err := ensureReservation(n, mac, "192.168.122.78"); err != nil {
		t.Fatal(err)
	}
	x, _ = n.GetXMLDesc(0)
	if hosts, _ := reservationsFor(x, mac); len(hosts) != 1 || hosts[0].IP != "192.168.122.78" {
		t.Fatalf("reservation not replaced:\n%s", x)
	}
	if err := removeReservations(n, mac); err != nil {
		t.Fatal(err)
	}
	x, _ = n.GetXMLDesc(0)
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
	pool, path, err := ensurePool(conn, DefaultPool)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Free()
	if path != DefaultPoolPath {
		t.Fatalf("default pool at %s", path)
	}
}

func TestUnavailable(t *testing.T) {
	err := unavailable("qemu:///system", lv.Error{Message: "libvirt.so.0: cannot open shared object file: No such file or directory"})
	if !strings.HasPrefix(err.Error(), "libvirt is not available") || !strings.Contains(err.Error(), "install libvirt-daemon-system") {
		t.Fatal(err)
	}
	err = unavailable("qemu:///system", lv.Error{Message: "Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory"})
	if !strings.Contains(err.Error(), "start libvirtd") {
		t.Fatal(err)
	}
	d := &Driver{m: drivers.Machine{Name: "x", Dir: t.TempDir()}, cfg: Config{URI: "qemu+unix:///system?socket=/nonexistent/sock"}.withDefaults()}
	if err := saveState(d.m.Dir, machineState{Domain: "x", UUID: "u"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.State(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "libvirt is not available") {
		t.Fatalf("state without libvirtd: %v", err)
	}
}
