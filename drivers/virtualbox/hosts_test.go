package virtualbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/drivers/virtualbox/internal/fakevbox"
)

// VirtualBox as users have it: the releases of each test, on the host
// systems where what is tested happens.

// The releases whose host-only interfaces networks.conf governs (Linux;
// macOS only before 7.0).
var interfaceHosts = []fakevbox.Host{host61, host70linux, host71linux}

// nothingMade checks that a failed Create left nothing behind: no VM, no
// host-only interface or network, no medium, no image conversion, no file
// in the machine's folder.
func nothingMade(t *testing.T, h *harness, d *Driver) {
	t.Helper()
	f := h.fake()
	if len(f.VMs)+len(f.HostOnlyIfs)+len(f.HostOnlyNets)+len(f.Media) != 0 {
		t.Errorf("VirtualBox holds VMs %d, interfaces %d, networks %d, media %d", len(f.VMs), len(f.HostOnlyIfs), len(f.HostOnlyNets), len(f.Media))
	}
	if entries, _ := os.ReadDir(d.m.Dir); len(entries) != 0 {
		t.Errorf("the machine folder holds %d files", len(entries))
	}
	if cached, _ := filepath.Glob(filepath.Join(h.root, "cache", "*")); len(cached) != 0 {
		t.Errorf("the image cache holds %v", cached)
	}
}

// 1. networks.conf: VirtualBox allows 192.168.56.0/21 only while the file
// does not exist; a file that exists allows exactly its "*" networks, with
// at least their prefix. The check comes before anything is made and says
// what the file says.
func TestNetworksConfRules(t *testing.T) {
	for _, host := range interfaceHosts {
		t.Run(host.Version, func(t *testing.T) {
			for _, tc := range []struct {
				name, conf, cidr string
				file             bool
				want             []string // in the error; none: allowed
			}{
				{name: "no file, default range", cidr: "192.168.56.1/24"},
				{name: "no file, outside", cidr: "10.10.0.1/24",
					want: []string{"does not exist, so VirtualBox allows only 192.168.56.0/21", `"* 192.168.56.0/21 10.10.0.0/24"`}},
				{name: "file without the default range", file: true, conf: "* 10.0.0.0/8\n", cidr: "192.168.56.1/24",
					want: []string{"allows only 10.0.0.0/8", `"* 192.168.56.0/24"`, "no restart needed"}},
				{name: "file without ranges", file: true, conf: "# nothing yet\n", cidr: "192.168.56.1/24",
					want: []string{"has no \"*\" line", "no host-only address at all"}},
				{name: "shorter prefix than allowed", file: true, conf: "* 10.0.0.0/16\n", cidr: "10.0.0.1/8",
					want: []string{"allows only 10.0.0.0/16"}},
				{name: "listed", file: true, conf: "# lab\n* 10.0.0.0/8 192.168.0.0/16\n", cidr: "10.20.30.1/24"},
				{name: "only star lines count", file: true, conf: "10.0.0.0/8\n* 172.16.0.0/12\n", cidr: "10.20.30.1/24",
					want: []string{"allows only 172.16.0.0/12"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					h := newHarness(t, host)
					if tc.file {
						must(t, os.WriteFile(h.mgr.opts.networksConf, []byte(tc.conf), 0o644))
					}
					cfg := h.config()
					cfg.HostOnlyCIDR = tc.cidr
					d := h.driver("n1", cfg)
					err := d.Create(ctx(t))
					if len(tc.want) == 0 {
						must(t, err)
						wantState(t, d, drivers.Running)
						return
					}
					if !errors.Is(err, ErrRangeRefused) {
						t.Fatalf("Create = %v", err)
					}
					for _, w := range append(tc.want, h.mgr.opts.networksConf) {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q does not say %q", err, w)
						}
					}
					if strings.Contains(err.Error(), "restart") && !strings.Contains(err.Error(), "no restart") {
						t.Errorf("error %q asks for a restart VirtualBox does not need", err)
					}
					nothingMade(t, h, d)
				})
			}
		})
	}
}

// VirtualBox reads networks.conf at every change: a range added to it
// works at once, with no restart.
func TestNetworksConfReadAtEveryChange(t *testing.T) {
	for _, host := range interfaceHosts {
		t.Run(host.Version, func(t *testing.T) {
			h := newHarness(t, host)
			must(t, os.WriteFile(h.mgr.opts.networksConf, []byte("* 192.168.56.0/21\n"), 0o644))
			cfg := h.config()
			cfg.HostOnlyCIDR = "10.30.0.1/24"
			if err := h.driver("n1", cfg).Create(ctx(t)); !errors.Is(err, ErrRangeRefused) {
				t.Fatalf("Create before the file lists the range = %v", err)
			}
			must(t, os.WriteFile(h.mgr.opts.networksConf, []byte("* 192.168.56.0/21 10.30.0.0/16\n"), 0o644))
			d := h.driver("n1", cfg)
			must(t, d.Create(ctx(t)))
			if ifs := h.fake().HostOnlyIfs; len(ifs) != 1 || ifs[0].IP != "10.30.0.1" {
				t.Errorf("interfaces = %+v", ifs)
			}
		})
	}
}

// 2. VirtualBox 7's host-only networks on macOS (vmnet) are not subject to
// networks.conf: any valid network is made.
func TestHostOnlyNetworkNotRangeChecked(t *testing.T) {
	for _, version := range []string{fakevbox.Version70, fakevbox.Version71} {
		t.Run(version, func(t *testing.T) {
			h := newHarness(t, fakevbox.Host{Version: version, OS: "darwin"})
			must(t, os.WriteFile(h.mgr.opts.networksConf, []byte("* 192.168.56.0/21\n"), 0o644))
			cfg := h.config()
			cfg.HostOnlyCIDR = "10.40.0.1/24"
			d := h.driver("n1", cfg)
			must(t, d.Create(ctx(t)))
			wantState(t, d, drivers.Running)
			if nets := h.fake().HostOnlyNets; len(nets) != 1 || nets[0].Name != "shoal-10.40.0.0-24" || nets[0].LowerIP != "10.40.0.1" {
				t.Errorf("host-only networks = %+v", nets)
			}
			if a, _ := d.Address(ctx(t)); a != "10.40.0.10" {
				t.Errorf("Address = %s", a)
			}
		})
	}
	// VirtualBox 6.1 on macOS has interfaces, which are checked.
	h := newHarness(t, fakevbox.Host{Version: fakevbox.Version61, OS: "darwin"})
	cfg := h.config()
	cfg.HostOnlyCIDR = "10.40.0.1/24"
	if err := h.driver("n1", cfg).Create(ctx(t)); !errors.Is(err, ErrRangeRefused) {
		t.Fatalf("6.1 on macOS = %v", err)
	}
}

// 3. VirtualBox 7.1 on Apple Silicon runs ARM guests only: it would create
// the driver's x86-64 VM and refuse to start it. The driver refuses first,
// before anything is made, and says why.
func TestArm64HostRefused(t *testing.T) {
	for _, os := range []string{"darwin", "linux"} {
		t.Run(os, func(t *testing.T) {
			h := newHarness(t, fakevbox.Host{Version: fakevbox.Version71, OS: os, Arch: "arm64"})
			d := h.driver("n1", nil)
			err := d.Create(ctx(t))
			if !errors.Is(err, ErrUnsupportedHost) {
				t.Fatalf("Create on an arm64 host = %v", err)
			}
			for _, w := range []string{"runs ARMv8 guests only", "x86-64", "nothing was made"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			h.wantCalls(0, []string{"--version", "showvminfo n1 --machinereadable  => exit 1", "list systemproperties"})
			nothingMade(t, h, d)
		})
	}
	// An x86-64 host with 7.1 lists x86 and goes on; 6.1 and 7.0 run on
	// x86-64 hosts only and are not asked.
	for _, host := range []fakevbox.Host{host61, host70linux, host71linux} {
		h := newHarness(t, host)
		must(t, h.driver("n1", nil).Create(ctx(t)))
	}
}

// The fake VirtualBox on an arm64 host does what the real one does with an
// x86-64 OS type: creates the VM, refuses to start it.
func TestFakeArm64RefusesX86AtStart(t *testing.T) {
	h := newHarness(t, fakevbox.Host{Version: fakevbox.Version71, OS: "darwin", Arch: "arm64"})
	v, err := h.mgr.vbox(ctx(t), "")
	must(t, err)
	base := filepath.Join(h.root, "vms")
	_, err = h.mgr.run(ctx(t), v, "createvm", "--name", "x", "--ostype", "Linux26_64", "--basefolder", base, "--register")
	must(t, err)
	_, err = h.mgr.run(ctx(t), v, "startvm", "x", "--type", "headless")
	if err == nil || !strings.Contains(err.Error(), "platform architecture x86 is not supported on ARM") {
		t.Fatalf("startvm of an x86 VM on ARM = %v", err)
	}
	_, err = h.mgr.run(ctx(t), v, "createvm", "--name", "a", "--ostype", "Debian_arm64", "--basefolder", base, "--register")
	must(t, err)
	_, err = h.mgr.run(ctx(t), v, "startvm", "a", "--type", "headless")
	must(t, err)
}

// 4. A Russian VirtualBox. With Russian in the environment only, the
// driver's LC_ALL=C.UTF-8 makes VBoxManage speak English; with VirtualBox's own
// language setting, or a VBoxSVC started in a Russian session, it does
// not, and the driver reads result codes and machine-readable output only.
func TestRussianVirtualBox(t *testing.T) {
	type mode struct {
		name string
		host func(fakevbox.Host) fakevbox.Host
		env  []string
	}
	modes := []mode{
		{"LANG", func(h fakevbox.Host) fakevbox.Host { return h }, []string{"LANG=ru_RU.UTF-8", "LC_MESSAGES=ru_RU.UTF-8"}},
		{"setting", func(h fakevbox.Host) fakevbox.Host { h.Language = "ru_RU"; return h }, nil},
		{"VBoxSVC", func(h fakevbox.Host) fakevbox.Host { h.SVCLocale = "ru_RU.UTF-8"; h.UnlockDelayMs = 200; return h }, nil},
	}
	for _, host := range []fakevbox.Host{host61, host70linux, host71, host71linux} {
		for _, m := range modes {
			t.Run(host.Version+"/"+host.OS+"/"+m.name, func(t *testing.T) {
				h := newHarness(t, m.host(host))
				h.mgr.opts.env = append(h.mgr.opts.env, m.env...)
				h.mgr.opts.lockWait = 10 * time.Second
				d := h.driver("n1", nil)
				wantState(t, d, drivers.NotFound)
				must(t, d.Create(ctx(t)))
				wantState(t, d, drivers.Running)
				must(t, d.Kill(ctx(t)))
				must(t, d.Kill(ctx(t))) // stopped already
				must(t, d.Start(ctx(t)))
				must(t, d.Remove(ctx(t)))
				wantState(t, d, drivers.NotFound)
				f := h.fake()
				if len(f.VMs)+len(f.Media) != 0 {
					t.Errorf("left VMs %d, media %d", len(f.VMs), len(f.Media))
				}
				russian := false
				for _, c := range f.Calls {
					russian = russian || strings.ContainsAny(c.Stderr, "абвгдеёжзийклмнопрстуфхцчшщыэюя")
				}
				// 6.1 has no translations; 7.x speaks Russian unless only
				// the environment asked for it.
				if want := host.Version != fakevbox.Version61 && m.name != "LANG"; russian != want {
					t.Errorf("VirtualBox answered in Russian: %v, want %v", russian, want)
				}
			})
		}
	}
}

// A Russian VirtualBox's errors still carry their meaning to the user.
func TestRussianErrorsClassified(t *testing.T) {
	h := newHarness(t, fakevbox.Host{Version: fakevbox.Version71, OS: "linux", Language: "ru_RU"})
	d := h.driver("n1", nil)
	must(t, d.Create(ctx(t)))
	// The VM removed behind shoal's back: not found, in Russian.
	h.editFake(func(s *fakevbox.State) { s.VMs = nil })
	if err := d.Start(ctx(t)); !errors.Is(err, ErrVMNotFound) {
		t.Fatalf("Start of a removed VM = %v", err)
	}
	calls := h.fake().Calls
	if last := calls[len(calls)-1]; !strings.Contains(last.Stderr, "Невозможно найти зарегистрированную машину") {
		t.Errorf("the fake did not answer in Russian: %q", last.Stderr)
	}
}

// 5. Right after a power-off the VM's session stays locked for a moment:
// "Cannot unregister the machine ... while it is locked" (vagrant #8104,
// packer #8059). The driver waits for it, within a bound.
func TestUnregisterWhileLockedAfterPowerOff(t *testing.T) {
	for _, host := range []fakevbox.Host{host61, host70linux, host71} {
		t.Run(host.Version, func(t *testing.T) {
			host.UnlockDelayMs = 1000 // long enough for a loaded machine
			h := newHarness(t, host)
			h.mgr.opts.lockWait = 10 * time.Second
			d := h.driver("n1", nil)
			must(t, d.Create(ctx(t)))
			must(t, d.Kill(ctx(t)))
			// No NAT rule to drop: unregistervm is the first call to meet
			// the lock.
			h.editFake(func(s *fakevbox.State) { s.VMs[0].NIC(1).Forwards = nil })
			mark := h.mark()
			must(t, d.Remove(ctx(t)))
			calls := h.callsSince(mark)
			if calls[1] != "unregistervm n1 --delete  => exit 1" || calls[len(calls)-2] != "unregistervm n1 --delete" {
				t.Errorf("calls = %s", strings.Join(calls, "\n"))
			}
			f := h.fake()
			if !strings.Contains(f.Calls[mark+1].Stderr, "Cannot unregister the machine 'n1' while it is locked") {
				t.Errorf("the fake did not refuse: %q", f.Calls[mark+1].Stderr)
			}
			if len(f.VMs) != 0 {
				t.Error("the VM is still registered")
			}

			// Stop (the guest powers off by itself) then Remove.
			d2 := h.driver("n2", nil)
			must(t, d2.Create(ctx(t)))
			must(t, d2.Stop(ctx(t)))
			must(t, d2.Remove(ctx(t)))

			// A lock that never goes is reported once the wait is over.
			h.mgr.opts.lockWait = 50 * time.Millisecond
			h.editFake(func(s *fakevbox.State) { s.Host.UnlockDelayMs = 60_000 })
			d3 := h.driver("n3", nil)
			must(t, d3.Create(ctx(t)))
			must(t, d3.Kill(ctx(t)))
			err := d3.Remove(ctx(t))
			var ce *CommandError
			if !errors.As(err, &ce) || !ce.lockedOut() {
				t.Fatalf("Remove while locked for good = %v", err)
			}
		})
	}
}

// 6. The media registry: VirtualBox keeps every medium it opened under its
// path and UUID, and refuses a file re-made at a registered path
// (canonical/multipass#2373). Emptying the image cache and making a
// machine again converts the image again and works; a stale registration
// left by an earlier shoal is cleared.
func TestMediumRegistry(t *testing.T) {
	for _, host := range []fakevbox.Host{host61, host70linux, host71} {
		t.Run(host.Version, func(t *testing.T) {
			h := newHarness(t, host)
			must(t, h.driver("n1", nil).Create(ctx(t)))
			// Only the machine's own media stay registered.
			for _, m := range h.fake().Media {
				if !strings.HasPrefix(m.Path, filepath.Join(h.machines, "n1")) {
					t.Errorf("medium %s left registered", m.Path)
				}
			}
			must(t, os.RemoveAll(filepath.Join(h.root, "cache")))
			must(t, h.driver("n2", nil).Create(ctx(t)))

			// A registration from before, under the path the cache will use.
			cached, _ := filepath.Glob(filepath.Join(h.root, "cache", "*.vdi"))
			must(t, os.RemoveAll(filepath.Join(h.root, "cache")))
			h.editFake(func(s *fakevbox.State) {
				s.Media = append(s.Media, &fakevbox.Medium{Path: cached[0], UUID: "0badc0de-0000-4000-8000-000000000001", Kind: "disk", Format: "VDI", CapacityMB: 2048})
			})
			d3 := h.driver("n3", nil)
			mark := h.mark()
			must(t, d3.Create(ctx(t)))
			wantState(t, d3, drivers.Running)
			calls := h.callsSince(mark)
			if !strings.Contains(strings.Join(calls, "\n"), "clonemedium disk $T/cache/cloud-$KEY.vdi $T/store/machines/n3/disk.vdi --format VDI  => exit 1\n"+
				"closemedium disk $T/cache/cloud-$KEY.vdi\n"+
				"closemedium disk $T/store/machines/n3/disk.vdi  => exit 1\n"+
				"clonemedium disk $T/cache/cloud-$KEY.vdi $T/store/machines/n3/disk.vdi --format VDI\n") {
				t.Errorf("calls:\n%s", strings.Join(calls, "\n"))
			}

			// A disk registered under the machine's disk path, its file
			// gone (the machine's folder deleted by hand).
			h.editFake(func(s *fakevbox.State) {
				s.Media = append(s.Media, &fakevbox.Medium{Path: filepath.Join(h.machines, "n4", DiskFile), UUID: "0badc0de-0000-4000-8000-000000000002", Kind: "disk", Format: "VDI", CapacityMB: 2048})
			})
			must(t, h.driver("n4", nil).Create(ctx(t)))
		})
	}
}

// The fake refuses a re-made file at a registered path, as VirtualBox does.
func TestFakeMediumUUIDMismatch(t *testing.T) {
	h := newHarness(t, host71)
	v, err := h.mgr.vbox(ctx(t), "")
	must(t, err)
	a, b := filepath.Join(h.root, "a.vdi"), filepath.Join(h.root, "b.vdi")
	_, err = h.mgr.run(ctx(t), v, "clonemedium", "disk", h.image, a, "--format", "VDI")
	must(t, err)
	must(t, os.Remove(a))
	_, err = h.mgr.run(ctx(t), v, "convertfromraw", h.image, a, "--format", "VDI")
	must(t, err)
	_, err = h.mgr.run(ctx(t), v, "clonemedium", "disk", a, b, "--format", "VDI")
	if err == nil || !strings.Contains(err.Error(), "does not match the value") {
		t.Fatalf("clone of a re-made file at a registered path = %v", err)
	}
}

// 7. VirtualBox 7's machine states, as showvminfo --machinereadable
// prints them.
func TestStates7x(t *testing.T) {
	for _, tc := range []struct {
		state string
		want  drivers.State
	}{
		{"aborted-saved", drivers.Stopped},
		{"settingup", drivers.Stopped},
		{"snapshotting", drivers.Stopped},
		{"restoringsnapshot", drivers.Stopped},
		{"deletingsnapshot", drivers.Stopped},
		{"onlinesnapshotting", drivers.Running},
		{"livesnapshotting", drivers.Running},
		{"deletingsnapshotlive", drivers.Running},
		{"deletingsnapshotlivepaused", drivers.Paused},
		{"gurumeditation", drivers.Error},
	} {
		if got := vmState(tc.state); got != tc.want {
			t.Errorf("vmState(%q) = %s, want %s", tc.state, got, tc.want)
		}
	}
	for _, host := range []fakevbox.Host{host70linux, host71} {
		h := newHarness(t, host)
		d := h.driver("n1", nil)
		must(t, d.Create(ctx(t)))
		for _, s := range []string{"settingup", "snapshotting", "aborted-saved"} {
			h.editFake(func(f *fakevbox.State) { f.VMs[0].State = s })
			wantState(t, d, drivers.Stopped)
		}
		h.editFake(func(f *fakevbox.State) { f.VMs[0].State = "onlinesnapshotting" })
		wantState(t, d, drivers.Running)
	}
}

// The conformance suite on the hosts of this file.
func TestConformanceHosts(t *testing.T) {
	for name, host := range map[string]fakevbox.Host{
		"7.0-linux":           host70linux,
		"7.1-linux-ru":        {Version: fakevbox.Version71, OS: "linux", Language: "ru_RU", SVCLocale: "ru_RU.UTF-8"},
		"7.1-darwin-unlock":   {Version: fakevbox.Version71, OS: "darwin", UnlockDelayMs: 100},
		"6.1-linux-ru-unlock": {Version: fakevbox.Version61, OS: "linux", Language: "ru_RU", UnlockDelayMs: 100},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, host)
			h.mgr.opts.lockWait = 10 * time.Second
			var n int
			drivertest.Conformance(t, func(t *testing.T) drivers.Driver {
				n++
				return h.driver("c"+string(rune('0'+n)), nil)
			})
		})
	}
}

// Also: a qcow2 v3 image with incompatible-feature bits, which VirtualBox
// cannot read, is refused before anything is made, with what to do.
func TestQcow2IncompatibleFeatures(t *testing.T) {
	for _, host := range []fakevbox.Host{host61, host70linux, host71} {
		t.Run(host.Version, func(t *testing.T) {
			h := newHarness(t, host)
			must(t, fakevbox.WriteQCOW2Features(h.image, 2<<30, 1<<3))
			d := h.driver("n1", nil)
			err := d.Create(ctx(t))
			if err == nil || !strings.Contains(err.Error(), "zstd compression") || !strings.Contains(err.Error(), "qemu-img convert -O vdi") {
				t.Fatalf("Create from a zstd qcow2 = %v", err)
			}
			nothingMade(t, h, d)
			// The fake, like VirtualBox, cannot read it either.
			v, err := h.mgr.vbox(ctx(t), "")
			must(t, err)
			_, err = h.mgr.run(ctx(t), v, "clonemedium", "disk", h.image, filepath.Join(h.root, "x.vdi"))
			if err == nil || !strings.Contains(err.Error(), "unsupported incompatible features") {
				t.Errorf("the fake converts it: %v", err)
			}
		})
	}
}
