package fakevbox

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runEnv calls the fake with more environment than the state file.
func (f *fixture) runEnv(env map[string]string, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = Main(args, func(k string) string {
		if k == EnvState {
			return f.path
		}
		return env[k]
	}, &out, &errb)
	return out.String(), errb.String(), code
}

// VBoxNetAdpCtl's rules, with the file read at every ipconfig.
func TestNetworksConfReadAtEveryIPConfig(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "networks.conf")
	f := newFixture(t, Host{Version: Version71, NetworksConfFile: conf})
	f.ok("hostonlyif", "create")
	try := func(ip, mask string) bool {
		_, _, code := f.run("hostonlyif", "ipconfig", "vboxnet0", "--ip", ip, "--netmask", mask)
		return code == 0
	}
	for _, tc := range []struct {
		conf     string // "-": no file
		ip, mask string
		ok       bool
	}{
		{"-", "192.168.56.1", "255.255.255.0", true},
		{"-", "192.168.63.1", "255.255.255.0", true},
		{"-", "192.168.64.1", "255.255.255.0", false},
		{"-", "192.168.56.1", "255.255.0.0", false}, // /16 is shorter than /21
		{"", "192.168.56.1", "255.255.255.0", false},
		{"# only a comment\n", "192.168.56.1", "255.255.255.0", false},
		{"* 10.0.0.0/8 192.168.0.0/16\n", "10.1.2.1", "255.255.255.0", true},
		{"* 10.0.0.0/8 192.168.0.0/16\n", "192.168.56.1", "255.255.255.0", true},
		{"* 10.0.0.0/8\n", "192.168.56.1", "255.255.255.0", false},
		{"* 10.0.0.0/16\n", "10.0.1.1", "255.0.0.0", false},
		{"10.0.0.0/8\n", "10.1.2.1", "255.255.255.0", false},
		{"*\t2001::/64 bogus 10.0.0.0/8\n", "10.1.2.1", "255.255.255.0", true},
	} {
		os.Remove(conf)
		if tc.conf != "-" {
			if err := os.WriteFile(conf, []byte(tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := try(tc.ip, tc.mask); got != tc.ok {
			t.Errorf("networks.conf %q, %s/%s: allowed %v, want %v", tc.conf, tc.ip, tc.mask, got, tc.ok)
		}
	}
	// vmnet's host-only networks are not checked.
	os.WriteFile(conf, []byte("* 192.168.56.0/21\n"), 0o644)
	m := newFixture(t, Host{Version: Version71, OS: "darwin", NetworksConfFile: conf})
	m.ok("hostonlynet", "add", "--name=n", "--netmask=255.255.255.0", "--lower-ip=172.20.0.1", "--upper-ip=172.20.0.9", "--enable")
}

// VirtualBoxTranslator.cpp's choice of language, and the translated texts.
func TestLanguage(t *testing.T) {
	for _, tc := range []struct {
		setting string
		env     map[string]string
		want    string
	}{
		{"", nil, "C"},
		{"", map[string]string{"LANG": "ru_RU.UTF-8"}, "ru_RU"},
		{"", map[string]string{"LANG": "ru_RU.UTF-8", "LC_ALL": "C"}, "C"},
		{"", map[string]string{"LC_MESSAGES": "ru", "LANG": "en_US.UTF-8"}, "ru"},
		{"", map[string]string{"LC_ALL": "C.UTF-8", "LANG": "ru_RU.UTF-8"}, "C"},
		{"ru_RU", map[string]string{"LC_ALL": "C"}, "ru_RU"},
	} {
		if got := language(tc.setting, func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("language(%q, %v) = %q, want %q", tc.setting, tc.env, got, tc.want)
		}
	}
	ru := map[string]string{"LANG": "ru_RU.UTF-8"}
	// 6.1 has no translations.
	f := newFixture(t, Host{Version: Version61})
	if out, _, _ := f.runEnv(ru, "hostonlyif", "create"); out != "Interface 'vboxnet0' was successfully created\n" {
		t.Errorf("6.1 in Russian: %q", out)
	}
	g := newFixture(t, Host{Version: Version71})
	if out, _, _ := g.runEnv(ru, "hostonlyif", "create"); out != "Интерфейс 'vboxnet0' успешно создан\n" {
		t.Errorf("7.1 in Russian: %q", out)
	}
	if out, _, _ := g.runEnv(map[string]string{"LANG": "ru_RU.UTF-8", "LC_ALL": "C"}, "hostonlyif", "create"); out != "Interface 'vboxnet1' was successfully created\n" {
		t.Errorf("7.1 with LC_ALL=C: %q", out)
	}
	_, errs, _ := g.runEnv(ru, "showvminfo", "nope", "--machinereadable")
	if !strings.Contains(errs, "Невозможно найти зарегистрированную машину с именем 'nope'") || !strings.Contains(errs, "VBOX_E_OBJECT_NOT_FOUND (0x80bb0001)") {
		t.Errorf("not found in Russian: %q", errs)
	}
	// VirtualBox's own setting wins over LC_ALL=C; VBoxSVC keeps the
	// language it started with.
	s := newFixture(t, Host{Version: Version70, Language: "ru_RU"})
	if out, _, _ := s.runEnv(map[string]string{"LC_ALL": "C"}, "list", "hostonlyifs"); out != "" {
		t.Errorf("no interfaces: %q", out)
	}
	s.runEnv(map[string]string{"LC_ALL": "C"}, "hostonlyif", "create")
	if out, _, _ := s.runEnv(map[string]string{"LC_ALL": "C"}, "list", "hostonlyifs"); !strings.Contains(out, "Имя:            vboxnet0\n") || !strings.Contains(out, "IP адрес:       192.168.56.1\n") {
		t.Errorf("list hostonlyifs with the setting: %q", out)
	}
	v := newFixture(t, Host{Version: Version71, SVCLocale: "ru_RU.UTF-8"})
	out, errs, _ := v.runEnv(map[string]string{"LC_ALL": "C"}, "showvminfo", "nope")
	if !strings.Contains(errs, "Невозможно найти") || strings.Contains(out, "Имя") {
		t.Errorf("VBoxSVC in Russian, VBoxManage in English: %q %q", out, errs)
	}
}

// After a power-off the session stays locked for a moment.
func TestUnlockAfterPowerOff(t *testing.T) {
	f := newFixture(t, Host{Version: Version71, UnlockDelayMs: 150})
	f.ok("createvm", "--name", "a", "--ostype", "Linux26_64", "--basefolder", t.TempDir(), "--register")
	f.ok("startvm", "a", "--type", "headless")
	f.ok("controlvm", "a", "poweroff")
	_, errs, code := f.run("unregistervm", "a", "--delete")
	if code != 1 || !strings.Contains(errs, "Cannot unregister the machine 'a' while it is locked") || !strings.Contains(errs, "0x80bb0007") {
		t.Fatalf("unregistervm right after poweroff: %d %q", code, errs)
	}
	if _, errs, code := f.run("modifyvm", "a", "--cpus", "2"); code != 1 || !strings.Contains(errs, "being unlocked") {
		t.Errorf("modifyvm right after poweroff: %d %q", code, errs)
	}
	time.Sleep(200 * time.Millisecond)
	f.ok("unregistervm", "a", "--delete")
}

// An arm64 host: the OS type gives the platform; x86 VMs are made but not
// run; an x86 host makes no ARM VM.
func TestArm64Host(t *testing.T) {
	f := newFixture(t, Host{Version: Version71, OS: "darwin", Arch: "arm64"})
	if out := f.ok("list", "systemproperties"); !strings.Contains(out, "Supported platform architectures: ARMv8\n") {
		t.Errorf("systemproperties = %q", out)
	}
	dir := t.TempDir()
	f.ok("createvm", "--name", "x", "--ostype", "Linux26_64", "--basefolder", dir, "--register")
	if _, errs, code := f.run("startvm", "x", "--type", "headless"); code != 1 || !strings.Contains(errs, "platform architecture x86 is not supported on ARM") {
		t.Errorf("startvm x86 on ARM: %d %q", code, errs)
	}
	f.ok("createvm", "--name", "a", "--ostype", "Debian_arm64", "--basefolder", dir, "--register")
	f.ok("startvm", "a", "--type", "headless")

	g := newFixture(t, Host{Version: Version71})
	if out := g.ok("list", "systemproperties"); !strings.Contains(out, "Supported platform architectures: x86\n") {
		t.Errorf("systemproperties = %q", out)
	}
	if _, errs, code := g.run("createvm", "--name", "a", "--ostype", "Debian_arm64", "--basefolder", dir, "--register"); code != 1 || !strings.Contains(errs, "platform architecture ARM not supported on x86") {
		t.Errorf("createvm ARM on x86: %d %q", code, errs)
	}
	h := newFixture(t, Host{Version: Version70})
	if out := h.ok("list", "systemproperties"); strings.Contains(out, "platform architectures") {
		t.Errorf("7.0 lists platforms: %q", out)
	}
}
