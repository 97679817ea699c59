package virtualbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/drivers/virtualbox/internal/fakevbox"
	"github.com/shoal-dev/shoal/internal/cloudinit"
)

// The VBoxManage calls of a first Create on a host with nothing on it.
func createCalls61() []string {
	return []string{
		"--version",
		"showvminfo n1 --machinereadable  => exit 1",
		"list hostonlyifs",
		"hostonlyif create",
		"list hostonlyifs",
		"hostonlyif ipconfig vboxnet0 --ip 192.168.56.1 --netmask 255.255.255.0",
		"clonemedium disk $T/images/cloud.qcow2 $T/cache/cloud-$KEY.partial.vdi --format VDI",
		"closemedium disk $T/images/cloud.qcow2",
		"closemedium disk $T/cache/cloud-$KEY.partial.vdi",
		"clonemedium disk $T/cache/cloud-$KEY.vdi $T/store/machines/n1/disk.vdi --format VDI",
		"closemedium disk $T/cache/cloud-$KEY.vdi",
		"modifymedium disk $T/store/machines/n1/disk.vdi --resize 20480",
		"createvm --name n1 --uuid $UUID --ostype Linux26_64 --basefolder $T/store/machines/n1 --register",
		"modifyvm n1 --cpus 2 --memory 2048 --acpi on --ioapic on --rtcuseutc on --boot1 disk --boot2 dvd --boot3 none --boot4 none" +
			" --nic1 nat --nictype1 82540EM --macaddress1 $NATMAC --cableconnected1 on --natpf1 ssh,tcp,127.0.0.1,$PORT,,22" +
			" --nic2 hostonly --hostonlyadapter2 vboxnet0 --nictype2 82540EM --macaddress2 $HOMAC --cableconnected2 on" +
			" --uart1 0x3F8 4 --uartmode1 file $T/store/machines/n1/console.log",
		"storagectl n1 --name SATA --add sata --controller IntelAhci --portcount 2 --bootable on",
		"storageattach n1 --storagectl SATA --port 0 --device 0 --type hdd --medium $T/store/machines/n1/disk.vdi",
		"storageattach n1 --storagectl SATA --port 1 --device 0 --type dvddrive --medium $T/store/machines/n1/seed.iso",
		"showvminfo n1 --machinereadable",
		"startvm n1 --type headless",
	}
}

// VirtualBox 7.1 on macOS: a host-only network instead of an interface,
// and modifyvm's new option names.
func createCalls71() []string {
	return []string{
		"--version",
		"showvminfo n1 --machinereadable  => exit 1",
		"list systemproperties",
		"list hostonlynets",
		"hostonlynet add --name=shoal-192.168.56.0-24 --netmask=255.255.255.0 --lower-ip=192.168.56.1 --upper-ip=192.168.56.9 --enable",
		"clonemedium disk $T/images/cloud.qcow2 $T/cache/cloud-$KEY.partial.vdi --format VDI",
		"closemedium disk $T/images/cloud.qcow2",
		"closemedium disk $T/cache/cloud-$KEY.partial.vdi",
		"clonemedium disk $T/cache/cloud-$KEY.vdi $T/store/machines/n1/disk.vdi --format VDI",
		"closemedium disk $T/cache/cloud-$KEY.vdi",
		"modifymedium disk $T/store/machines/n1/disk.vdi --resize 20480",
		"createvm --name n1 --uuid $UUID --ostype Linux26_64 --basefolder $T/store/machines/n1 --register",
		"modifyvm n1 --cpus 2 --memory 2048 --acpi on --ioapic on --rtc-use-utc on --boot1 disk --boot2 dvd --boot3 none --boot4 none" +
			" --nic1 nat --nic-type1 82540EM --mac-address1 $NATMAC --cable-connected1 on --nat-pf1 ssh,tcp,127.0.0.1,$PORT,,22" +
			" --nic2 hostonlynet --host-only-net2 shoal-192.168.56.0-24 --nic-type2 82540EM --mac-address2 $HOMAC --cable-connected2 on" +
			" --uart1 0x3F8 4 --uart-mode1 file $T/store/machines/n1/console.log",
		"storagectl n1 --name SATA --add sata --controller IntelAhci --portcount 2 --bootable on",
		"storageattach n1 --storagectl SATA --port 0 --device 0 --type hdd --medium $T/store/machines/n1/disk.vdi",
		"storageattach n1 --storagectl SATA --port 1 --device 0 --type dvddrive --medium $T/store/machines/n1/seed.iso",
		"showvminfo n1 --machinereadable",
		"startvm n1 --type headless",
	}
}

var host61 = fakevbox.Host{Version: fakevbox.Version61}
var host71 = fakevbox.Host{Version: fakevbox.Version71, OS: "darwin"}
var host70linux = fakevbox.Host{Version: fakevbox.Version70, OS: "linux"}
var host71linux = fakevbox.Host{Version: fakevbox.Version71, OS: "linux"}

func TestCreate61(t *testing.T) {
	h := newHarness(t, host61)
	d := h.driver("n1", nil)
	must(t, d.Create(ctx(t)))
	h.wantCalls(0, createCalls61())
	wantState(t, d, drivers.Running)
	checkCreated(t, h, d, "hostonly", "vboxnet0")

	// The fake VirtualBox holds the VM as configured.
	vm := h.fake().FindVM("n1")
	st, _ := loadState(d.m.Dir)
	if vm.CPUs != 2 || vm.Memory != 2048 {
		t.Errorf("VM has %d CPUs and %d MiB", vm.CPUs, vm.Memory)
	}
	if nic := vm.NIC(2); nic.Attachment != "hostonly" || nic.HostOnlyAdapter != "vboxnet0" || nic.MAC != st.HostOnlyMAC {
		t.Errorf("NIC 2 = %+v", nic)
	}
	if nic := vm.NIC(1); nic.Attachment != "nat" || len(nic.Forwards) != 1 || nic.Forwards[0].String() != fmt.Sprintf("ssh,tcp,127.0.0.1,%d,,22", st.SSHPort) {
		t.Errorf("NIC 1 = %+v", nic)
	}
	if len(h.fake().HostOnlyIfs) != 1 || h.fake().HostOnlyIfs[0].IP != "192.168.56.1" {
		t.Errorf("host-only interfaces = %+v", h.fake().HostOnlyIfs)
	}
}

func TestCreate71HostOnlyNetwork(t *testing.T) {
	h := newHarness(t, host71)
	d := h.driver("n1", nil)
	must(t, d.Create(ctx(t)))
	h.wantCalls(0, createCalls71())
	wantState(t, d, drivers.Running)
	checkCreated(t, h, d, "hostonlynet", "shoal-192.168.56.0-24")
	if nets := h.fake().HostOnlyNets; len(nets) != 1 || nets[0].LowerIP != "192.168.56.1" || !nets[0].Enabled {
		t.Errorf("host-only networks = %+v", nets)
	}
}

// VirtualBox 7.1 on Linux still has host-only interfaces (no vmnet): the
// driver falls back to them, with 7.x option names.
func TestCreate71Linux(t *testing.T) {
	h := newHarness(t, fakevbox.Host{Version: fakevbox.Version71, OS: "linux"})
	d := h.driver("n1", nil)
	must(t, d.Create(ctx(t)))
	calls := h.callsSince(0)
	if calls[2] != "list systemproperties" || calls[3] != "list hostonlynets  => exit 2" || calls[4] != "list hostonlyifs" || calls[5] != "hostonlyif create" {
		t.Errorf("calls = %s", strings.Join(calls, "\n"))
	}
	if !strings.Contains(strings.Join(calls, "\n"), "--nic2 hostonly --host-only-adapter2 vboxnet0") {
		t.Errorf("modifyvm does not use 7.x names for the host-only adapter:\n%s", strings.Join(calls, "\n"))
	}
	checkCreated(t, h, d, "hostonly", "vboxnet0")
}

// VirtualBox 7.0 is detected as modern too.
func TestCreate70(t *testing.T) {
	h := newHarness(t, fakevbox.Host{Version: fakevbox.Version70, OS: "darwin"})
	d := h.driver("n1", nil)
	must(t, d.Create(ctx(t)))
	if !strings.Contains(strings.Join(h.callsSince(0), "\n"), "--nat-pf1 ssh,tcp,127.0.0.1,") {
		t.Error("7.0 is not given the 7.x option names")
	}
}

// checkCreated checks what Create leaves: the machine's files, the SSH
// endpoint, the address.
func checkCreated(t *testing.T, h *harness, d *Driver, kind, adapterName string) {
	t.Helper()
	st, err := loadState(d.m.Dir)
	if err != nil || st == nil {
		t.Fatalf("state file: %v", err)
	}
	if !st.Complete || st.Adapter.Kind != kind || st.Adapter.Name != adapterName || st.Network != "192.168.56.0/24" {
		t.Errorf("state = %+v", st)
	}
	ep, err := d.SSH(ctx(t))
	must(t, err)
	if ep.Host != "127.0.0.1" || ep.Port != st.SSHPort || ep.User != DefaultSSHUser || ep.KeyPath != d.m.PrivateKeyPath {
		t.Errorf("SSH endpoint = %+v", ep)
	}
	fp, _ := cloudinit.HostKeyFingerprint(st.HostKeyPublic)
	if ep.HostKeyFingerprint == "" || ep.HostKeyFingerprint != fp {
		t.Errorf("host key fingerprint = %q, want %q", ep.HostKeyFingerprint, fp)
	}
	addr, err := drivers.Address(ctx(t), d)
	if err != nil || addr != "192.168.56.10" {
		t.Errorf("Address = %q, %v; want 192.168.56.10", addr, err)
	}
	iso, err := os.ReadFile(filepath.Join(d.m.Dir, SeedFile))
	if err != nil || len(iso) < 32774 || string(iso[32769:32774]) != "CD001" {
		t.Errorf("seed ISO: %v (%d bytes)", err, len(iso))
	}
	for _, f := range []string{SeedFile, DiskFile, StateFile} {
		if fi, err := os.Stat(filepath.Join(d.m.Dir, f)); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v (mode %v): want it private", f, err, fi.Mode())
		}
	}
}

func TestCreateIsIdempotent(t *testing.T) {
	for _, host := range []fakevbox.Host{host61, host71} {
		t.Run(host.Version, func(t *testing.T) {
			h := newHarness(t, host)
			d := h.driver("n1", nil)
			must(t, d.Create(ctx(t)))
			st1, _ := loadState(d.m.Dir)
			mark := h.mark()
			must(t, d.Create(ctx(t)))
			h.wantCalls(mark, []string{"showvminfo n1 --machinereadable"})
			// Stopped: Create starts it again, changing nothing else.
			must(t, d.Kill(ctx(t)))
			mark = h.mark()
			must(t, d.Create(ctx(t)))
			h.wantCalls(mark, []string{"showvminfo n1 --machinereadable", "startvm n1 --type headless"})
			st2, _ := loadState(d.m.Dir)
			if *st1 != *st2 {
				t.Errorf("state changed:\n%+v\n%+v", st1, st2)
			}
		})
	}
}

// A second machine reuses the host-only interface and the converted image,
// and gets the next address and its own port.
func TestSecondMachine(t *testing.T) {
	h := newHarness(t, host61)
	must(t, h.driver("n1", nil).Create(ctx(t)))
	mark := h.mark()
	d2 := h.driver("n2", nil)
	must(t, d2.Create(ctx(t)))
	calls := strings.Join(h.callsSince(mark), "\n")
	if strings.Contains(calls, "hostonlyif create") || strings.Contains(calls, ".partial.vdi") {
		t.Errorf("the second machine made an interface or converted the image again:\n%s", calls)
	}
	if !strings.Contains(calls, "--hostonlyadapter2 vboxnet0") {
		t.Errorf("the second machine is not on vboxnet0:\n%s", calls)
	}
	if a, _ := d2.Address(ctx(t)); a != "192.168.56.11" {
		t.Errorf("second address = %s, want 192.168.56.11", a)
	}
	e1, _ := h.driver("n1", nil).SSH(ctx(t))
	e2, _ := d2.SSH(ctx(t))
	if e1.Port == e2.Port {
		t.Errorf("both machines forward port %d", e1.Port)
	}
}

func TestHostOnlyIPFlag(t *testing.T) {
	h := newHarness(t, host61)
	cfg := h.config()
	cfg.HostOnlyIP = "192.168.56.50"
	d := h.driver("n1", cfg)
	must(t, d.Create(ctx(t)))
	if a, _ := d.Address(ctx(t)); a != "192.168.56.50" {
		t.Errorf("Address = %s", a)
	}
	// Another machine cannot have it.
	cfg2 := h.config()
	cfg2.HostOnlyIP = "192.168.56.50"
	err := h.driver("n2", cfg2).Create(ctx(t))
	if err == nil || !strings.Contains(err.Error(), `machine "n1" already has this address`) {
		t.Fatalf("Create with a taken address = %v", err)
	}
	// The next free address skips over it.
	cfg3 := h.config()
	must(t, h.driver("n3", cfg3).Create(ctx(t)))
	if a, _ := h.driver("n3", cfg3).Address(ctx(t)); a != "192.168.56.10" {
		t.Errorf("next free address = %s", a)
	}
}

func TestStop(t *testing.T) {
	for _, host := range []fakevbox.Host{host61, host71} {
		t.Run(host.Version, func(t *testing.T) {
			host.ShutdownPolls = 2 // the guest takes a moment
			h := newHarness(t, host)
			d := h.driver("n1", nil)
			must(t, d.Create(ctx(t)))
			mark := h.mark()
			must(t, d.Stop(ctx(t)))
			h.wantCalls(mark, []string{
				"showvminfo n1 --machinereadable",
				"controlvm n1 acpipowerbutton",
				"showvminfo n1 --machinereadable",
				"showvminfo n1 --machinereadable",
				"showvminfo n1 --machinereadable",
			})
			wantState(t, d, drivers.Stopped)
			// Stopped already: nothing to do.
			mark = h.mark()
			must(t, d.Stop(ctx(t)))
			h.wantCalls(mark, []string{"showvminfo n1 --machinereadable"})
		})
	}
}

// A guest that ignores the ACPI power button is powered off after the
// stop timeout.
func TestStopStuckGuestIsPoweredOff(t *testing.T) {
	for _, host := range []fakevbox.Host{host61, host71} {
		t.Run(host.Version, func(t *testing.T) {
			host.ShutdownPolls = -1
			h := newHarness(t, host)
			d := h.driver("n1", nil)
			must(t, d.Create(ctx(t)))
			mark := h.mark()
			must(t, d.Stop(ctx(t)))
			calls := h.callsSince(mark)
			if calls[1] != "controlvm n1 acpipowerbutton" || calls[len(calls)-1] != "controlvm n1 poweroff" || len(calls) < 4 {
				t.Errorf("calls:\n%s", strings.Join(calls, "\n"))
			}
			wantState(t, d, drivers.Stopped)
		})
	}
}

func TestStopCancelled(t *testing.T) {
	host := host61
	host.ShutdownPolls = -1
	h := newHarness(t, host)
	h.mgr.opts.stopTimeout = time.Hour
	d := h.driver("n1", nil)
	must(t, d.Create(ctx(t)))
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Stop(c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with a context that ends = %v", err)
	}
}

func TestKillStartRestart(t *testing.T) {
	for _, host := range []fakevbox.Host{host61, host71} {
		t.Run(host.Version, func(t *testing.T) {
			h := newHarness(t, host)
			d := h.driver("n1", nil)
			must(t, d.Create(ctx(t)))
			mark := h.mark()
			must(t, d.Kill(ctx(t)))
			h.wantCalls(mark, []string{"showvminfo n1 --machinereadable", "controlvm n1 poweroff"})
			wantState(t, d, drivers.Stopped)

			mark = h.mark()
			must(t, d.Start(ctx(t)))
			h.wantCalls(mark, []string{"showvminfo n1 --machinereadable", "startvm n1 --type headless"})
			wantState(t, d, drivers.Running)

			mark = h.mark()
			must(t, d.Restart(ctx(t)))
			h.wantCalls(mark, []string{
				"showvminfo n1 --machinereadable", "controlvm n1 acpipowerbutton", "showvminfo n1 --machinereadable",
				"showvminfo n1 --machinereadable", "startvm n1 --type headless",
			})
			wantState(t, d, drivers.Running)
		})
	}
}

func TestRemove(t *testing.T) {
	for _, tc := range []struct {
		host  fakevbox.Host
		natpf string
	}{{host61, "--natpf1"}, {host71, "--nat-pf1"}} {
		t.Run(tc.host.Version, func(t *testing.T) {
			h := newHarness(t, tc.host)
			d := h.driver("n1", nil)
			must(t, d.Create(ctx(t)))
			// The store's own files stay.
			must(t, os.WriteFile(filepath.Join(d.m.Dir, "config.json"), []byte("{}"), 0o600))
			mark := h.mark()
			must(t, d.Remove(ctx(t)))
			h.wantCalls(mark, []string{
				"showvminfo n1 --machinereadable",
				"controlvm n1 poweroff",
				"modifyvm n1 " + tc.natpf + " delete ssh",
				"unregistervm n1 --delete",
				"closemedium dvd $T/store/machines/n1/seed.iso --delete",
			})
			wantState(t, d, drivers.NotFound)
			f := h.fake()
			if len(f.VMs) != 0 || len(f.Media) != 0 {
				for _, m := range f.Media {
					t.Logf("medium %+v", *m)
				}
				t.Errorf("VirtualBox still has VMs %v / media %v", f.VMs, f.Media)
			}
			entries, _ := os.ReadDir(d.m.Dir)
			if len(entries) != 1 || entries[0].Name() != "config.json" {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("machine folder after Remove holds %v, want only config.json", names)
			}
			// The converted image stays cached for the next machine.
			if cached, _ := filepath.Glob(filepath.Join(h.root, "cache", "*.vdi")); len(cached) != 1 {
				t.Errorf("image cache = %v", cached)
			}
			// Removing again is fine.
			mark = h.mark()
			must(t, d.Remove(ctx(t)))
			h.wantCalls(mark, []string{"showvminfo n1 --machinereadable  => exit 1"})
		})
	}
}

// A VM of the same name that the machine did not make is never touched.
func TestForeignVMIsLeftAlone(t *testing.T) {
	h := newHarness(t, host61)
	v, err := h.mgr.vbox(ctx(t), "")
	must(t, err)
	_, err = h.mgr.run(ctx(t), v, "createvm", "--name", "n1", "--ostype", "Linux26_64", "--basefolder", filepath.Join(h.root, "elsewhere"), "--register")
	must(t, err)
	d := h.driver("n1", nil)
	wantState(t, d, drivers.NotFound)
	must(t, d.Remove(ctx(t)))
	if h.fake().FindVM("n1") == nil {
		t.Fatal("Remove deleted a VM the machine did not make")
	}
	err = d.Create(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "did not make") {
		t.Fatalf("Create over a foreign VM = %v", err)
	}
}

// Create fails at once without VirtualBox, before anything is made.
func TestVBoxManageMissing(t *testing.T) {
	h := newHarness(t, host61)
	h.mgr.opts.lookPath = func(string) (string, error) { return "", exec.ErrNotFound }
	h.mgr.opts.searchDirs = []string{filepath.Join(h.root, "nowhere")}
	d := h.driver("n1", nil)
	err := d.Create(ctx(t))
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Create without VBoxManage = %v", err)
	}
	for _, want := range []string{"VirtualBox is not installed", "--virtualbox-vboxmanage", "nowhere"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if entries, _ := os.ReadDir(d.m.Dir); len(entries) != 0 {
		t.Errorf("Create left %d files in the machine folder", len(entries))
	}
	if calls := h.fake().Calls; len(calls) != 0 {
		t.Errorf("VBoxManage was called %d times", len(calls))
	}
	for _, f := range []func(context.Context) error{d.Start, d.Stop, d.Kill, d.Remove} {
		if err := f(ctx(t)); !errors.Is(err, ErrNotInstalled) {
			t.Errorf("got %v, want ErrNotInstalled", err)
		}
	}
	cfg := h.config()
	cfg.VBoxManage = filepath.Join(h.root, "no", "VBoxManage")
	if err := h.driver("n2", cfg).Create(ctx(t)); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), cfg.VBoxManage) {
		t.Errorf("Create with a wrong --virtualbox-vboxmanage = %v", err)
	}
}

// Off PATH, VBoxManage is found in the install folders, and on Windows in
// %VBOX_MSI_INSTALL_PATH%.
func TestVBoxManageLocations(t *testing.T) {
	h := newHarness(t, host61)
	h.mgr.opts.lookPath = func(string) (string, error) { return "", exec.ErrNotFound }
	h.mgr.opts.searchDirs = []string{filepath.Join(h.root, "nowhere"), fakeBin}
	p, err := h.mgr.locate("")
	if err != nil || p != filepath.Join(fakeBin, "VBoxManage") {
		t.Fatalf("locate in install folders = %q, %v", p, err)
	}

	win := filepath.Join(h.root, "Program Files", "Oracle", "VirtualBox")
	must(t, os.MkdirAll(win, 0o755))
	must(t, os.WriteFile(filepath.Join(win, "VBoxManage.exe"), []byte("x"), 0o755))
	h.mgr.opts.goos = "windows"
	h.mgr.opts.searchDirs = nil
	h.mgr.opts.getenv = func(k string) string {
		if k == "VBOX_MSI_INSTALL_PATH" {
			return win
		}
		return ""
	}
	p, err = h.mgr.locate("")
	if err != nil || p != filepath.Join(win, "VBoxManage.exe") {
		t.Fatalf("locate with VBOX_MSI_INSTALL_PATH = %q, %v", p, err)
	}
	if defaultSearchDirs("darwin")[1] != "/Applications/VirtualBox.app/Contents/MacOS" {
		t.Error("macOS install folder missing")
	}
}

func TestVersionTooOld(t *testing.T) {
	h := newHarness(t, fakevbox.Host{Version: fakevbox.Version52})
	err := h.driver("n1", nil).Create(ctx(t))
	if !errors.Is(err, ErrTooOld) || !strings.Contains(err.Error(), "5.2.44") || !strings.Contains(err.Error(), "6.1 or newer") {
		t.Fatalf("Create on VirtualBox 5.2 = %v", err)
	}
	if n := len(h.fake().Calls); n != 1 {
		t.Errorf("%d calls after --version, want none", n-1)
	}
}

// On Linux without the vboxdrv module, --version prints a warning first.
func TestVersionAfterKernelModuleWarning(t *testing.T) {
	host := host61
	host.KernelModuleWarning = true
	h := newHarness(t, host)
	v, err := h.mgr.vbox(ctx(t), "")
	must(t, err)
	if v.version.String() != "6.1.50" || v.modern() {
		t.Fatalf("version = %+v", v.version)
	}
}

// A range outside 192.168.56.0/21 is refused before anything is made, with
// the remedy.
func TestRangeRefused(t *testing.T) {
	h := newHarness(t, host61)
	cfg := h.config()
	cfg.HostOnlyCIDR = "10.10.0.1/24"
	err := h.driver("n1", cfg).Create(ctx(t))
	if !errors.Is(err, ErrRangeRefused) {
		t.Fatalf("Create on 10.10.0.0/24 = %v", err)
	}
	// Without the file only the default is allowed, and a file that
	// lists the new range must keep the default, or it is lost.
	for _, want := range []string{`"* 192.168.56.0/21 10.10.0.0/24"`, h.mgr.opts.networksConf + " does not exist", "no restart needed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	h.wantCalls(0, []string{"--version", "showvminfo n1 --machinereadable  => exit 1", "list hostonlyifs"})
}

// networks.conf lists the range: the pre-check lets it through and
// VirtualBox, reading the same file at the ipconfig, takes it at once.
// Were the file to change between the two, VirtualBox's E_ACCESSDENIED is
// reported with what the file says now, and the interface is removed.
func TestRangeAllowedByNetworksConf(t *testing.T) {
	for _, host := range []fakevbox.Host{host61, host70linux, host71linux} {
		t.Run(host.Version, func(t *testing.T) {
			h := newHarness(t, host)
			must(t, os.WriteFile(h.mgr.opts.networksConf, []byte("# allowed\n* 10.10.0.0/16 192.168.100.0/24\n"), 0o644))
			cfg := h.config()
			cfg.HostOnlyCIDR = "10.10.0.1/24"
			d := h.driver("n1", cfg)
			must(t, d.Create(ctx(t)))
			if a, _ := d.Address(ctx(t)); a != "10.10.0.10" {
				t.Errorf("Address = %s", a)
			}

			// VirtualBox refuses what the pre-check allowed (the file
			// changed in between): the error says what the file says now.
			ifs := len(h.fake().HostOnlyIfs)
			cfg2 := h.config()
			cfg2.HostOnlyCIDR = "10.20.0.1/24"
			must(t, os.WriteFile(h.mgr.opts.networksConf, []byte("* 10.20.0.0/16\n"), 0o644))
			h.fault(fakevbox.Fault{Args: []string{"hostonlyif", "ipconfig", "**"}, Exit: 1, Times: 1,
				Stderr: "VBoxManage: error: Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)\n"})
			err := h.driver("n2", cfg2).Create(ctx(t))
			if !errors.Is(err, ErrRangeRefused) || !strings.Contains(err.Error(), "E_ACCESSDENIED") || strings.Contains(err.Error(), "restart") ||
				!strings.Contains(err.Error(), "allows only 10.20.0.0/16") {
				t.Fatalf("Create = %v", err)
			}
			if n := len(h.fake().HostOnlyIfs); n != ifs {
				t.Errorf("%d interfaces after the refusal, want %d", n, ifs)
			}
		})
	}
}

// "The object is not ready" is retried; it is not a refused range even
// though it comes with E_ACCESSDENIED.
func TestTransientErrorRetried(t *testing.T) {
	h := newHarness(t, host61)
	d := h.driver("n1", nil)
	must(t, d.Create(ctx(t)))
	h.fault(fakevbox.Fault{Args: []string{"showvminfo", "n1", "--machinereadable"}, Exit: 1, Times: 2, Stderr: notReady})
	mark := h.mark()
	wantState(t, d, drivers.Running)
	h.wantCalls(mark, []string{
		"showvminfo n1 --machinereadable  => exit 1",
		"showvminfo n1 --machinereadable  => exit 1",
		"showvminfo n1 --machinereadable",
	})

	// Forever not ready: it gives up after the retries, with the error.
	h.fault(fakevbox.Fault{Args: []string{"showvminfo", "**"}, Exit: 1, Stderr: notReady})
	mark = h.mark()
	_, err := d.State(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "The object is not ready") || errors.Is(err, ErrRangeRefused) {
		t.Fatalf("State when VirtualBox is never ready = %v", err)
	}
	if n := len(h.callsSince(mark)); n != h.mgr.opts.retries+1 {
		t.Errorf("%d attempts, want %d", n, h.mgr.opts.retries+1)
	}
}

const notReady = `VBoxManage: error: The object is not ready
VBoxManage: error: Details: code E_ACCESSDENIED (0x80070005), component SessionMachine, interface IMachine, callee nsISupports
VBoxManage: error: Context: "COMGETTER(BandwidthControl)(bwCtrl.asOutParam())" at line 2322 of file VBoxManageInfo.cpp
`

// VBoxManage printing an error with exit code 0 (VT-x missing on Windows)
// is a failure.
func TestErrorWithExitCodeZero(t *testing.T) {
	host := host61
	host.NoVTx = true
	h := newHarness(t, host)
	err := h.driver("n1", nil).Create(ctx(t))
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 0 || ce.Args[0] != "startvm" {
		t.Fatalf("Create without VT-x = %v", err)
	}
	for _, want := range []string{"exit status 0 but it reported an error", "VT-x is not available", "hint: enable VT-x/AMD-V"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	calls := h.fake().Calls
	if last := calls[len(calls)-1]; last.Exit != 0 || !strings.Contains(last.Stderr, "VERR_VMX_NO_VMX") {
		t.Errorf("the fake's last call = %+v", last)
	}
}

// Create that never sees SSH answer fails with where to look.
func TestSSHWaitTimeout(t *testing.T) {
	host := host61
	host.GuestAdditions = true
	h := newHarness(t, host)
	h.silent.Store(true) // the NAT accepts, nothing speaks SSH
	h.mgr.opts.sshTimeout = 300 * time.Millisecond
	d := h.driver("n1", nil)
	err := d.Create(ctx(t))
	if err == nil {
		t.Fatal("Create succeeded without SSH")
	}
	for _, want := range []string{"SSH did not answer", filepath.Join(d.m.Dir, ConsoleLog), "reports the addresses 10.0.2.15"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// The VM is made and running: a later Create only waits again.
	h.silent.Store(false)
	mark := h.mark()
	must(t, d.Create(ctx(t)))
	h.wantCalls(mark, []string{"showvminfo n1 --machinereadable"})
}

// A Create interrupted after createvm is finished by the next Create: the
// half-made VM is removed and made again.
func TestInterruptedCreateIsRedone(t *testing.T) {
	h := newHarness(t, host61)
	h.fault(fakevbox.Fault{Args: []string{"storagectl", "**"}, Exit: 1, Times: 1, Stderr: "VBoxManage: error: simulated failure\n"})
	d := h.driver("n1", nil)
	if err := d.Create(ctx(t)); err == nil || !strings.Contains(err.Error(), "storagectl") {
		t.Fatalf("first Create = %v", err)
	}
	st, _ := loadState(d.m.Dir)
	if st == nil || st.Complete {
		t.Fatalf("state after a failed Create = %+v", st)
	}
	mark := h.mark()
	must(t, d.Create(ctx(t)))
	calls := h.callsSince(mark)
	if calls[1] != "modifyvm n1 --natpf1 delete ssh" || calls[2] != "unregistervm n1 --delete" {
		t.Errorf("the half-made VM was not removed first:\n%s", strings.Join(calls, "\n"))
	}
	wantState(t, d, drivers.Running)
	if n := len(h.fake().VMs); n != 1 {
		t.Errorf("%d VMs", n)
	}
}

// A VM unregistered by hand (files kept) is registered again by Create.
func TestUnregisteredVMIsRegisteredAgain(t *testing.T) {
	h := newHarness(t, host61)
	d := h.driver("n1", nil)
	must(t, d.Create(ctx(t)))
	must(t, d.Kill(ctx(t)))
	v, _ := h.mgr.vbox(ctx(t), "")
	_, err := h.mgr.run(ctx(t), v, "unregistervm", "n1")
	must(t, err)
	wantState(t, d, drivers.NotFound)
	mark := h.mark()
	must(t, d.Create(ctx(t)))
	h.wantCalls(mark, []string{
		"showvminfo n1 --machinereadable  => exit 1",
		"registervm $T/store/machines/n1/n1/n1.vbox",
		"showvminfo n1 --machinereadable",
		"startvm n1 --type headless",
	})
}

func TestImageFormats(t *testing.T) {
	h := newHarness(t, host61)
	raw := filepath.Join(h.root, "images", "disk.raw")
	must(t, os.WriteFile(raw, make([]byte, 4<<20), 0o644))
	cfg := h.config()
	cfg.Image = raw
	must(t, h.driver("n1", cfg).Create(ctx(t)))
	if calls := strings.Join(h.callsSince(0), "\n"); !strings.Contains(calls, "convertfromraw $T/images/disk.raw $T/cache/disk-$KEY.partial.vdi --format VDI") {
		t.Errorf("a raw image is not converted with convertfromraw:\n%s", calls)
	}

	for _, tc := range []struct {
		head []byte
		want string
	}{
		{[]byte("QFI\xfb\x00\x00\x00\x03"), "qcow2"},
		{[]byte("KDMV\x01\x00\x00\x00"), "vmdk"},
		{[]byte("# Disk DescriptorFile\nversion=1\n"), "vmdk"},
		{append(append(make([]byte, 0x40), 0x7f, 0x10, 0xda, 0xbe), make([]byte, 64)...), "vdi"},
		{[]byte("conectix"), "vhd"},
		{[]byte("\x00\x00\x00\x00anything"), "raw"},
	} {
		p := filepath.Join(h.root, "images", "probe")
		must(t, os.WriteFile(p, tc.head, 0o644))
		if got, err := imageFormat(p); err != nil || got != tc.want {
			t.Errorf("imageFormat(%q) = %q, %v; want %q", tc.head[:4], got, err, tc.want)
		}
	}
	gz := filepath.Join(h.root, "images", "cloud.img.gz")
	must(t, os.WriteFile(gz, []byte("\x1f\x8b\x08\x00"), 0o644))
	if _, err := imageFormat(gz); err == nil || !strings.Contains(err.Error(), "decompress") {
		t.Errorf("compressed image: %v", err)
	}
}

// The image is never shrunk: a disk size below the image's keeps its size.
func TestDiskNotShrunk(t *testing.T) {
	h := newHarness(t, host61)
	cfg := h.config()
	cfg.DiskSize = 1024 // the image is 2 GiB
	must(t, h.driver("n1", cfg).Create(ctx(t)))
	if calls := strings.Join(h.callsSince(0), "\n"); strings.Contains(calls, "--resize") {
		t.Errorf("resized below the image's size:\n%s", calls)
	}
}

// Every VBoxManage call of the process runs alone, also when machines are
// created at once; they get different addresses and ports.
func TestCallsSerialisedAcrossMachines(t *testing.T) {
	h := newHarness(t, host61)
	h.mgr.opts.env = append(h.mgr.opts.env, fakevbox.EnvDelay+"=2")
	const n = 4
	ds := make([]*Driver, n)
	for i := range ds {
		ds[i] = h.driver("m"+strconv.Itoa(i), nil)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Create(ctx(t))
		}()
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	if data, err := os.ReadFile(h.state + fakevbox.OverlapSuffix); err == nil {
		t.Fatalf("VBoxManage calls overlapped:\n%s", data)
	}
	ips, ports := map[string]bool{}, map[int]bool{}
	for _, d := range ds {
		a, _ := d.Address(ctx(t))
		ep, _ := d.SSH(ctx(t))
		ips[a], ports[ep.Port] = true, true
	}
	if len(ips) != n || len(ports) != n {
		t.Errorf("addresses %v, ports %v: want %d different", ips, ports, n)
	}
	if conversions := strings.Count(strings.Join(h.callsSince(0), "\n"), ".partial.vdi --format VDI"); conversions != 1 {
		t.Errorf("the image was converted %d times", conversions)
	}
	if creates := strings.Count(strings.Join(h.callsSince(0), "\n"), "hostonlyif create"); creates != 1 {
		t.Errorf("%d host-only interfaces made for one network", creates)
	}
}

func TestConformance(t *testing.T) {
	for _, host := range []fakevbox.Host{host61, host71} {
		t.Run(host.Version, func(t *testing.T) {
			h := newHarness(t, host)
			var n int
			drivertest.Conformance(t, func(t *testing.T) drivers.Driver {
				n++
				return h.driver("c"+strconv.Itoa(n), nil)
			})
		})
	}
}

func TestSpecFlags(t *testing.T) {
	s := Spec()
	if s.Name != "virtualbox" {
		t.Fatalf("Name = %q", s.Name)
	}
	cfg := s.NewConfig().(*Config)
	fs := pflag.NewFlagSet("create", pflag.ContinueOnError)
	s.BindFlags(fs, cfg)
	for _, name := range []string{"image", "cpus", "memory", "disk-size", "hostonly-cidr", "hostonly-ip", "ssh-user", "vboxmanage", "image-cache"} {
		f := fs.Lookup("virtualbox-" + name)
		if f == nil || f.Usage == "" {
			t.Errorf("flag --virtualbox-%s missing or undocumented", name)
		}
	}
	if got := fs.Lookup("virtualbox-hostonly-cidr").DefValue; got != "192.168.56.1/24" {
		t.Errorf("--virtualbox-hostonly-cidr default = %s", got)
	}
	if got := fs.Lookup("virtualbox-ssh-user").DefValue; got == "docker" || got == "" {
		t.Errorf("--virtualbox-ssh-user default = %q", got)
	}
	must(t, fs.Parse([]string{"--virtualbox-image", "/i.qcow2", "--virtualbox-cpus", "4", "--virtualbox-hostonly-ip", "192.168.56.20"}))
	if cfg.Image != "/i.qcow2" || cfg.CPUs != 4 || cfg.HostOnlyIP != "192.168.56.20" {
		t.Errorf("config = %+v", cfg)
	}
	must(t, s.Validate(cfg))

	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Image = "" }, "--virtualbox-image is required"},
		{func(c *Config) { c.SSHUser = "docker" }, `"docker"`},
		{func(c *Config) { c.SSHUser = "root" }, `"root"`},
		{func(c *Config) { c.SSHUser = "Bad User" }, "not a valid user name"},
		{func(c *Config) { c.CPUs = 0 }, "--virtualbox-cpus"},
		{func(c *Config) { c.Memory = 64 }, "--virtualbox-memory"},
		{func(c *Config) { c.DiskSize = 10 }, "--virtualbox-disk-size"},
		{func(c *Config) { c.HostOnlyCIDR = "192.168.56.1" }, "--virtualbox-hostonly-cidr"},
		{func(c *Config) { c.HostOnlyCIDR = "fd00::1/64" }, "not an IPv4 network"},
		{func(c *Config) { c.HostOnlyIP = "192.168.57.5" }, "not in the host-only network"},
		{func(c *Config) { c.HostOnlyIP = "192.168.56.1" }, "host's address"},
		{func(c *Config) { c.HostOnlyIP = "192.168.56.255" }, "broadcast"},
	} {
		c := *cfg
		tc.edit(&c)
		if err := s.Validate(&c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", c, err, tc.want)
		}
	}
	if _, err := s.New(drivers.Identity{Name: "x"}, &struct{}{}); err == nil {
		t.Error("New accepted a foreign config")
	}
}

func TestHostOnlyNetworkMath(t *testing.T) {
	h, err := parseHostOnlyCIDR("192.168.56.0/24")
	must(t, err)
	if h.Host.String() != "192.168.56.1" || h.netmask() != "255.255.255.0" || h.String() != "192.168.56.0/24" {
		t.Errorf("parsed %+v", h)
	}
	first, last := h.pool()
	if first.String() != "192.168.56.10" || last.String() != "192.168.56.254" {
		t.Errorf("pool %s-%s", first, last)
	}
	h2, _ := parseHostOnlyCIDR("192.168.60.1/22")
	if err := checkAllowedRange(h2, "linux", false, readNetworksConf("/nonexistent")); err != nil {
		t.Errorf("192.168.60.0/22 is inside 192.168.56.0/21: %v", err)
	}
	h3, _ := parseHostOnlyCIDR("192.168.54.1/23")
	if err := checkAllowedRange(h3, "linux", false, readNetworksConf("/nonexistent")); !errors.Is(err, ErrRangeRefused) {
		t.Errorf("192.168.54.0/23 allowed: %v", err)
	}
	if err := checkAllowedRange(h3, "windows", false, readNetworksConf("/nonexistent")); err != nil {
		t.Errorf("Windows has no range rule: %v", err)
	}
	if err := checkAllowedRange(h3, "darwin", true, networksConf{Path: "x", Exists: true}); err != nil {
		t.Errorf("vmnet networks are not checked: %v", err)
	}
	if got := colonMAC("080027AABBCC"); got != "08:00:27:aa:bb:cc" {
		t.Errorf("colonMAC = %s", got)
	}
	if ip := net.ParseIP("192.168.56.10"); h.checkAddress(ip) != nil {
		t.Errorf("checkAddress(%s) = %v", ip, h.checkAddress(ip))
	}
}
