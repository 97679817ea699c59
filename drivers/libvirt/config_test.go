package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/spf13/pflag"
	"libvirt.org/go/libvirtxml"
)

func TestSpecDefaultsAndFlags(t *testing.T) {
	s := Spec()
	if s.Name != "libvirt" {
		t.Fatalf("name %q", s.Name)
	}
	cfg := s.NewConfig().(*Config)
	want := Config{URI: "qemu:///system", CPUs: 1, Memory: 1024, DiskSize: 10, Network: "default", DomainType: "auto", SSHUser: "shoal", Pool: "default"}
	if *cfg != want {
		t.Fatalf("defaults %+v, want %+v", *cfg, want)
	}
	fs := pflag.NewFlagSet("create", pflag.ContinueOnError)
	s.BindFlags(fs, cfg)
	err := fs.Parse([]string{
		"--libvirt-uri", "qemu+ssh://root@host/system", "--libvirt-image", "/img.qcow2",
		"--libvirt-cpus", "2", "--libvirt-memory", "2048", "--libvirt-disk-size", "20",
		"--libvirt-network", "lab", "--libvirt-domain-type", "qemu", "--libvirt-ssh-user", "admin",
		"--libvirt-pool", "shoal", "--libvirt-image-checksum", "sha256:" + strings.Repeat("ab", 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	want = Config{URI: "qemu+ssh://root@host/system", Image: "/img.qcow2", ImageChecksum: "sha256:" + strings.Repeat("ab", 32),
		CPUs: 2, Memory: 2048, DiskSize: 20, Network: "lab", DomainType: "qemu", SSHUser: "admin", Pool: "shoal"}
	if *cfg != want {
		t.Fatalf("parsed %+v, want %+v", *cfg, want)
	}
	if err := s.Validate(cfg); err != nil {
		t.Fatal(err)
	}
	// The JSON names are the contract of config.json and the HCL fields.
	b, _ := json.Marshal(cfg)
	for _, k := range []string{"uri", "image", "cpus", "memory", "disk_size", "network", "domain_type", "ssh_user", "pool", "image_checksum"} {
		if !strings.Contains(string(b), `"`+k+`":`) {
			t.Errorf("config.json has no %q: %s", k, b)
		}
	}
}

func TestValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"no image":       func(c *Config) { c.Image = "" },
		"ftp image":      func(c *Config) { c.Image = "ftp://x/y.qcow2" },
		"bad checksum":   func(c *Config) { c.ImageChecksum = "md5:abc" },
		"zero cpus":      func(c *Config) { c.CPUs = 0 },
		"tiny memory":    func(c *Config) { c.Memory = 64 },
		"no disk":        func(c *Config) { c.DiskSize = 0 },
		"domain type":    func(c *Config) { c.DomainType = "xen" },
		"docker user":    func(c *Config) { c.SSHUser = "docker" },
		"root user":      func(c *Config) { c.SSHUser = "root" },
		"bad user":       func(c *Config) { c.SSHUser = "Bad User" },
		"no network":     func(c *Config) { c.Network = "" },
		"no pool":        func(c *Config) { c.Pool = "" },
		"no libvirt uri": func(c *Config) { c.URI = "" },
	} {
		t.Run(name, func(t *testing.T) {
			c := NewConfig()
			c.Image = "/var/lib/images/x.qcow2"
			if err := c.Validate(); err != nil {
				t.Fatalf("base config invalid: %v", err)
			}
			mut(c)
			if err := c.Validate(); err == nil {
				t.Fatal("no error")
			}
		})
	}
	c := NewConfig()
	c.Image = "https://cloud.debian.org/images/debian-12-genericcloud-amd64.qcow2"
	if err := c.Validate(); err != nil {
		t.Fatalf("URL image: %v", err)
	}
}

func TestNewFillsDefaults(t *testing.T) {
	// A cluster file may give only some fields; rm must work whatever the
	// config says, so New does not validate.
	d, err := Spec().New(drivers.Identity{Name: "vm1", Dir: t.TempDir()}, &Config{Image: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "libvirt" {
		t.Fatalf("name %s", d.Name())
	}
	c := Config{Image: "/x"}.withDefaults()
	if c.URI != DefaultURI || c.CPUs != 1 || c.Memory != 1024 || c.DiskSize != 10 || c.Pool != "default" || c.SSHUser != "shoal" || c.DomainType != "auto" {
		t.Fatalf("defaults %+v", c)
	}
	if _, err := Spec().New(drivers.Identity{}, NewConfig()); err == nil {
		t.Fatal("no error for a machine without name and folder")
	}
}

func testSpec() domainSpec {
	return domainSpec{
		Name:       "vm1",
		Type:       "qemu",
		MemoryMiB:  2048,
		CPUs:       2,
		DiskPath:   "/var/lib/libvirt/images/vm1.qcow2",
		BasePath:   "/var/lib/libvirt/images/shoal-base-debian-0123456789ab.qcow2",
		BaseFormat: "qcow2",
		SeedPath:   "/var/lib/libvirt/images/vm1-seed.iso",
		Network:    "default",
		MAC:        "52:54:00:12:34:56",
		ConsoleLog: "/var/log/libvirt/qemu/vm1-serial.log",
		MachineDir: "/root/.machine/machines/vm1",
	}
}

func TestDomainXML(t *testing.T) {
	s := testSpec()
	x, err := domainXML(s).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Read back as libvirt would: every field from the XML text.
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	if d.Type != "qemu" || d.Name != "vm1" {
		t.Fatalf("type %q name %q", d.Type, d.Name)
	}
	if d.Memory.Value != 2048 || d.Memory.Unit != "MiB" || d.VCPU.Value != 2 {
		t.Fatalf("memory %+v vcpu %+v", d.Memory, d.VCPU)
	}
	if d.OS.Type.Type != "hvm" || len(d.OS.BootDevices) != 1 || d.OS.BootDevices[0].Dev != "hd" {
		t.Fatalf("os %+v", d.OS)
	}
	if d.OS.Kernel != "" {
		t.Fatal("direct kernel boot: the image's boot loader should boot it")
	}
	if d.Features == nil || d.Features.ACPI == nil {
		t.Fatal("no ACPI: stop could not shut the guest down")
	}
	if d.CPU != nil {
		t.Fatalf("cpu %+v for TCG", d.CPU)
	}
	if !strings.Contains(d.Metadata.XML, MetadataNamespace) || !strings.Contains(d.Metadata.XML, s.MachineDir) {
		t.Fatalf("metadata %q", d.Metadata.XML)
	}

	disks := d.Devices.Disks
	if len(disks) != 2 {
		t.Fatalf("disks %d", len(disks))
	}
	disk := disks[0]
	if disk.Device != "disk" || disk.Driver.Type != "qcow2" || disk.Source.File.File != s.DiskPath || disk.Target.Bus != "virtio" || disk.Target.Dev != "vda" {
		t.Fatalf("disk %+v", disk)
	}
	if disk.BackingStore == nil || disk.BackingStore.Source.File.File != s.BasePath || disk.BackingStore.Format.Type != "qcow2" {
		t.Fatalf("backing store %+v", disk.BackingStore)
	}
	cd := disks[1]
	if cd.Device != "cdrom" || cd.Source.File.File != s.SeedPath || cd.ReadOnly == nil || cd.Driver.Type != "raw" || cd.Target.Bus != "scsi" {
		t.Fatalf("seed cdrom %+v", cd)
	}
	if len(d.Devices.Controllers) != 1 || d.Devices.Controllers[0].Model != "virtio-scsi" {
		t.Fatalf("controllers %+v", d.Devices.Controllers)
	}
	ifs := d.Devices.Interfaces
	if len(ifs) != 1 || ifs[0].MAC.Address != s.MAC || ifs[0].Source.Network.Network != "default" || ifs[0].Model.Type != "virtio" {
		t.Fatalf("interfaces %+v", ifs)
	}
	if len(d.Devices.Serials) != 1 || d.Devices.Serials[0].Source.Pty == nil || d.Devices.Serials[0].Log.File != s.ConsoleLog {
		t.Fatalf("serial %+v", d.Devices.Serials)
	}
	if len(d.Devices.Consoles) != 1 || d.Devices.Consoles[0].Target.Type != "serial" {
		t.Fatalf("console %+v", d.Devices.Consoles)
	}

	s.Type = "kvm"
	s.ConsoleLog = ""
	d2 := domainXML(s)
	if d2.Type != "kvm" || d2.CPU == nil || d2.CPU.Mode != "host-passthrough" || d2.Devices.Serials[0].Log != nil {
		t.Fatalf("kvm domain %+v", d2)
	}
}

func TestVolumeAndNetworkXML(t *testing.T) {
	x, err := volumeXML("vm1.qcow2", 10<<30, "qcow2", "/p/base.qcow2", "raw", "").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	if v.Name != "vm1.qcow2" || v.Capacity.Value != 10<<30 || v.Target.Format.Type != "qcow2" || v.BackingStore.Path != "/p/base.qcow2" || v.BackingStore.Format.Type != "raw" {
		t.Fatalf("volume %s", x)
	}

	h, err := dhcpHostXML("52:54:00:aa:bb:cc", "192.168.122.10")
	if err != nil {
		t.Fatal(err)
	}
	if h != `<host mac="52:54:00:aa:bb:cc" ip="192.168.122.10"></host>` {
		t.Fatalf("host %s", h)
	}
	netXML := `<network><name>default</name><ip address="192.168.122.1" netmask="255.255.255.0"><dhcp>
<range start="192.168.122.2" end="192.168.122.254"/>
<host mac="52:54:00:AA:BB:CC" ip="192.168.122.10"/><host mac="52:54:00:00:00:01" ip="192.168.122.11"/>
</dhcp></ip></network>`
	hosts, err := reservationsFor(netXML, "52:54:00:aa:bb:cc")
	if err != nil || len(hosts) != 1 || hosts[0].IP != "192.168.122.10" {
		t.Fatalf("reservations %+v %v", hosts, err)
	}
	if ok, err := networkHasDHCP(netXML); !ok || err != nil {
		t.Fatalf("dhcp %v %v", ok, err)
	}
	if ok, _ := networkHasDHCP(`<network><name>iso</name><ip address="10.0.0.1" netmask="255.0.0.0"/></network>`); ok {
		t.Fatal("network without dhcp")
	}
	mac, err := randomMAC()
	if err != nil || !strings.HasPrefix(mac, "52:54:00:") || len(mac) != 17 {
		t.Fatalf("mac %q %v", mac, err)
	}
}

func TestChooseDomainType(t *testing.T) {
	ctx := context.Background()
	if got, _ := chooseDomainType(ctx, "qemu", true, true); got != "qemu" {
		t.Fatal(got)
	}
	if got, _ := chooseDomainType(ctx, "kvm", false, true); got != "kvm" {
		t.Fatal(got)
	}
	if got, _ := chooseDomainType(ctx, "auto", false, true); got != "qemu" {
		t.Fatal(got)
	}
	if got, _ := chooseDomainType(ctx, "auto", true, false); got != "kvm" {
		t.Fatal(got)
	}
	got, why := chooseDomainType(ctx, "auto", true, true)
	t.Logf("auto here: %s (%s)", got, why)
	if !cpuHasVirtualization() && got != "qemu" {
		t.Fatalf("auto chose %s on a CPU without vmx/svm", got)
	}
	caps := `<capabilities><host><cpu><arch>x86_64</arch></cpu></host>
<guest><os_type>hvm</os_type><arch name="x86_64"><domain type="qemu"/><domain type="kvm"/></arch></guest></capabilities>`
	if ok, err := capsHaveKVM(caps); !ok || err != nil {
		t.Fatalf("caps kvm %v %v", ok, err)
	}
	if ok, _ := capsHaveKVM(strings.Replace(caps, `<domain type="kvm"/>`, "", 1)); ok {
		t.Fatal("caps without kvm")
	}
	for uri, local := range map[string]bool{
		"qemu:///system": true, "qemu:///session": true, "test:///default": true,
		"qemu+ssh://root@host/system": false, "qemu+unix:///system": true, "qemu://host/system": false,
	} {
		if isLocalURI(uri) != local {
			t.Errorf("isLocalURI(%s) = %v", uri, !local)
		}
	}
}

// qcow2Header is the start of a qcow2 file of the given virtual size.
func qcow2Header(size uint64) []byte {
	b := make([]byte, 2<<20)
	copy(b, "QFI\xfb")
	binary.BigEndian.PutUint32(b[4:], 3)
	binary.BigEndian.PutUint64(b[24:], size)
	return b
}

func TestInspectImage(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "debian-12-genericcloud-amd64.qcow2")
	if err := os.WriteFile(q, qcow2Header(3<<30), 0o600); err != nil {
		t.Fatal(err)
	}
	img, err := resolveImage(context.Background(), q, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if img.Format != "qcow2" || img.VirtualSize != 3<<30 || img.FileSize != 2<<20 || len(img.Key) != 64 {
		t.Fatalf("qcow2 %+v", img)
	}
	name := baseVolumeName(img)
	if !strings.HasPrefix(name, "shoal-base-debian-12-genericcloud-amd64-") || !strings.HasSuffix(name, ".qcow2") {
		t.Fatalf("base name %s", name)
	}
	// The same file gives the same base; a changed one a new base.
	again, _ := resolveImage(context.Background(), q, "", "")
	if baseVolumeName(again) != name {
		t.Fatal("base name not stable")
	}
	if err := os.WriteFile(q, qcow2Header(4<<30), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(q, later, later); err != nil {
		t.Fatal(err)
	}
	changed, _ := resolveImage(context.Background(), q, "", "")
	if baseVolumeName(changed) == name {
		t.Fatal("a changed image kept its base name")
	}

	r := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(r, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if img, err := resolveImage(context.Background(), r, "", ""); err != nil || img.Format != "raw" || img.VirtualSize != 2<<20 {
		t.Fatalf("raw %+v %v", img, err)
	}
	v := filepath.Join(dir, "x.vmdk")
	if err := os.WriteFile(v, append([]byte("KDMV"), make([]byte, 2<<20)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveImage(context.Background(), v, "", ""); err == nil || !strings.Contains(err.Error(), "qemu-img convert") {
		t.Fatalf("vmdk: %v", err)
	}
	if _, err := resolveImage(context.Background(), filepath.Join(dir, "missing.qcow2"), "", ""); err == nil {
		t.Fatal("missing image")
	}
}

func TestDownloadImage(t *testing.T) {
	body := qcow2Header(1 << 30)
	sum := sha256.Sum256(body)
	checksum := "sha256:" + hex.EncodeToString(sum[:])
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	cache := t.TempDir()
	url := srv.URL + "/images/cloud.qcow2"
	img, err := resolveImage(context.Background(), url, checksum, cache)
	if err != nil {
		t.Fatal(err)
	}
	if img.Format != "qcow2" || img.VirtualSize != 1<<30 || img.Key != hex.EncodeToString(sum[:]) || !strings.HasPrefix(img.Path, cache) {
		t.Fatalf("downloaded %+v", img)
	}
	// Downloaded once.
	if _, err := resolveImage(context.Background(), url, checksum, cache); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d downloads", hits.Load())
	}
	// A wrong checksum fails and leaves nothing behind.
	bad := "sha256:" + strings.Repeat("0", 64)
	if _, err := resolveImage(context.Background(), srv.URL+"/other.qcow2", bad, cache); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("bad checksum: %v", err)
	}
	if _, err := resolveImage(context.Background(), url, bad, cache); err == nil {
		t.Fatal("cached copy with another checksum accepted")
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 {
		t.Fatalf("cache holds %d files", len(entries))
	}
	nf := httptest.NewServer(http.NotFoundHandler())
	defer nf.Close()
	if _, err := resolveImage(context.Background(), nf.URL+"/x.qcow2", "", cache); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
}

func TestStateAndHostKey(t *testing.T) {
	dir := t.TempDir()
	if _, found, err := loadState(dir); found || err != nil {
		t.Fatalf("empty dir: %v %v", found, err)
	}
	st := machineState{Domain: "vm1", MAC: "52:54:00:00:00:01", IP: "192.168.122.5"}
	if err := saveState(dir, st); err != nil {
		t.Fatal(err)
	}
	got, found, err := loadState(dir)
	if err != nil || !found || got.IP != st.IP || got.Version != stateVersion {
		t.Fatalf("state %+v %v %v", got, found, err)
	}
	fi, _ := os.Stat(filepath.Join(dir, StateFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state mode %v", fi.Mode())
	}
	k, err := ensureHostKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ensureHostKey(dir)
	if err != nil || string(k.PrivatePEM) != string(k2.PrivatePEM) || k.Public != k2.Public {
		t.Fatal("host key not kept")
	}
	fi, _ = os.Stat(filepath.Join(dir, HostKeyFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v", fi.Mode())
	}
}

func TestCacheDir(t *testing.T) {
	if got := cacheDir("/s/machines/vm1"); got != "/s/cache/libvirt" {
		t.Fatal(got)
	}
}
