package fakevbox

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// run calls the fake in-process against a state file in a temp folder.
type fixture struct {
	t    *testing.T
	path string
	ver  string
}

func newFixture(t *testing.T, host Host) *fixture {
	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "vbox.json")}
	if err := (&State{Host: host}).Save(f.path); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) run(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	env := func(k string) string {
		if k == EnvState {
			return f.path
		}
		return ""
	}
	code = Main(args, env, &out, &errb)
	return out.String(), errb.String(), code
}

func (f *fixture) ok(args ...string) string {
	f.t.Helper()
	out, errs, code := f.run(args...)
	if code != 0 || errs != "" && !strings.HasPrefix(errs, "0%") {
		f.t.Fatalf("%v: exit %d: %s", args, code, errs)
	}
	return out
}

// 6.1 knows only the old modifyvm names; 7.x takes both.
func TestModifyVMOptionNamesByVersion(t *testing.T) {
	f := newFixture(t, Host{Version: Version61})
	f.ok("createvm", "--name", "a", "--ostype", "Linux26_64", "--basefolder", t.TempDir(), "--register")
	f.ok("modifyvm", "a", "--natpf1", "ssh,tcp,127.0.0.1,2222,,22")
	_, errs, code := f.run("modifyvm", "a", "--nat-pf1", "web,tcp,,8080,,80")
	if code != 2 || !strings.Contains(errs, "Unknown option: --nat-pf1") {
		t.Fatalf("6.1 with --nat-pf1: exit %d, %q", code, errs)
	}
	_, errs, code = f.run("modifyvm", "a", "--natpf1", "ssh,tcp,127.0.0.1,2223,,22")
	if code != 1 || !strings.Contains(errs, "A NAT rule of this name already exists") {
		t.Fatalf("duplicate rule: exit %d, %q", code, errs)
	}

	g := newFixture(t, Host{Version: Version71})
	g.ok("createvm", "--name", "a", "--ostype", "Linux26_64", "--basefolder", t.TempDir(), "--register")
	g.ok("modifyvm", "a", "--nat-pf1", "ssh,tcp,127.0.0.1,2222,,22", "--natpf1", "web,tcp,,8080,,80", "--uart-mode1", "file", "/tmp/c.log")
	out := g.ok("showvminfo", "a", "--machinereadable")
	for _, want := range []string{
		`Forwarding(0)="ssh,tcp,127.0.0.1,2222,,22"`, `Forwarding(1)="web,tcp,,8080,,80"`,
		"Encryption:     disabled\n", `VMState="poweroff"`, `ostype="Linux 2.6 / 3.x / 4.x / 5.x (64-bit)"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("7.1 showvminfo lacks %q", want)
		}
	}
	// Host-only networks exist only with vmnet (macOS).
	if _, errs, code := g.run("list", "hostonlynets"); code != 2 || !strings.Contains(errs, `Unknown subcommand "hostonlynets".`) {
		t.Errorf("list hostonlynets on Linux 7.1: exit %d, %q", code, errs)
	}
}

func TestHostOnlyInterfaceRules(t *testing.T) {
	f := newFixture(t, Host{Version: Version61})
	_, errs, _ := f.run("hostonlyif", "create")
	if !strings.HasPrefix(errs, "0%...10%") {
		t.Errorf("hostonlyif create stderr = %q", errs)
	}
	f.ok("hostonlyif", "ipconfig", "vboxnet0", "--ip", "192.168.60.1", "--netmask", "255.255.255.0")
	_, errs, code := f.run("hostonlyif", "ipconfig", "vboxnet0", "--ip", "10.0.0.1", "--netmask", "255.255.255.0")
	if code != 1 || !strings.Contains(errs, "E_ACCESSDENIED") || !strings.Contains(errs, "EnableStaticIPConfig") {
		t.Errorf("ipconfig outside 192.168.56.0/21: exit %d, %q", code, errs)
	}
	out := f.ok("list", "hostonlyifs")
	if !strings.Contains(out, "IPAddress:       192.168.60.1\n") || !strings.Contains(out, "VBoxNetworkName: HostInterfaceNetworking-vboxnet0\n\n") {
		t.Errorf("list hostonlyifs = %q", out)
	}
	w := newFixture(t, Host{Version: Version61, OS: "windows"})
	w.run("hostonlyif", "create")
	if _, errs, code := w.run("hostonlyif", "ipconfig", "vboxnet0", "--ip", "10.0.0.1"); code != 0 {
		t.Errorf("Windows refuses a range: %q", errs)
	}
}

func TestGuestPropertyFormats(t *testing.T) {
	for _, tc := range []struct {
		ver, want string
	}{
		{Version61, "Name: /VirtualBox/GuestInfo/Net/0/V4/IP, value: 10.0.2.15, timestamp: "},
		{Version71, "/VirtualBox/GuestInfo/Net/0/V4/IP  = '10.0.2.15'    @ 2025-"},
	} {
		f := newFixture(t, Host{Version: tc.ver, GuestAdditions: true})
		f.ok("createvm", "--name", "a", "--ostype", "Linux26_64", "--basefolder", t.TempDir(), "--register")
		if out := f.ok("guestproperty", "enumerate", "a"); out != "No properties found.\n" {
			t.Errorf("%s: before start: %q", tc.ver, out)
		}
		f.ok("startvm", "a", "--type", "headless")
		if out := f.ok("guestproperty", "enumerate", "a"); !strings.Contains(out, tc.want) {
			t.Errorf("%s: enumerate = %q", tc.ver, out)
		}
		if out := f.ok("guestproperty", "get", "a", "/VirtualBox/GuestInfo/Net/0/V4/IP"); out != "Value: 10.0.2.15\n" {
			t.Errorf("%s: get = %q", tc.ver, out)
		}
		if out := f.ok("guestproperty", "get", "a", "/nothing"); out != "No value set!\n" {
			t.Errorf("%s: get unset = %q", tc.ver, out)
		}
	}
}

func TestFaultsAndLog(t *testing.T) {
	f := newFixture(t, Host{Version: Version61})
	s, _ := Load(f.path)
	s.Faults = []*Fault{{Args: []string{"list", "*"}, Stdout: "x\n", Exit: 0, Times: 1}}
	s.Save(f.path)
	if out := f.ok("list", "vms"); out != "x\n" {
		t.Errorf("fault answer = %q", out)
	}
	if out := f.ok("list", "vms"); out != "" {
		t.Errorf("after the fault ran out = %q", out)
	}
	_, errs, code := f.run("showvminfo", "nope", "--machinereadable")
	if code != 1 || !strings.Contains(errs, "Could not find a registered machine named 'nope'") || !strings.Contains(errs, "VBOX_E_OBJECT_NOT_FOUND") {
		t.Errorf("missing VM: exit %d, %q", code, errs)
	}
	s, _ = Load(f.path)
	if len(s.Calls) != 3 || s.Calls[2].Exit != 1 || s.Calls[2].Args[0] != "showvminfo" {
		t.Errorf("log = %+v", s.Calls)
	}
}

func TestStartStopLifecycle(t *testing.T) {
	f := newFixture(t, Host{Version: Version71, ShutdownPolls: 1})
	f.ok("createvm", "--name", "a", "--ostype", "Linux26_64", "--basefolder", t.TempDir(), "--register")
	if _, errs, code := f.run("controlvm", "a", "acpipowerbutton"); code != 1 || !strings.Contains(errs, "is not currently running") {
		t.Errorf("acpipowerbutton on a stopped VM: %d %q", code, errs)
	}
	if out := f.ok("startvm", "a", "--type", "headless"); !strings.Contains(out, `VM "a" has been successfully started.`) {
		t.Errorf("startvm = %q", out)
	}
	if _, errs, code := f.run("modifyvm", "a", "--cpus", "2"); code != 1 || !strings.Contains(errs, "already locked for a session") {
		t.Errorf("modifyvm on a running VM: %d %q", code, errs)
	}
	f.ok("controlvm", "a", "acpipowerbutton")
	states := []string{}
	for i := 0; i < 3; i++ {
		out := f.ok("showvminfo", "a", "--machinereadable")
		states = append(states, between(out, `VMState="`, `"`))
	}
	if strings.Join(states, ",") != "running,poweroff,poweroff" {
		t.Errorf("states after the power button: %v", states)
	}
}

func between(s, a, b string) string {
	_, rest, _ := strings.Cut(s, a)
	v, _, _ := strings.Cut(rest, b)
	return v
}
