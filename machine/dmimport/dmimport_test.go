package dmimport

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/validate"
	"golang.org/x/crypto/ssh"
)

func writeDM(t *testing.T, root, name string, cfg any, files ...string) {
	t.Helper()
	dir := filepath.Join(root, "machines", name)
	os.MkdirAll(dir, 0o700)
	var b []byte
	switch c := cfg.(type) {
	case string:
		b = []byte(c)
	default:
		b, _ = json.Marshal(c)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600)
	for _, f := range files {
		data := []byte("x")
		if f == "id_rsa" {
			data = testPrivateKey(t)
		}
		os.WriteFile(filepath.Join(dir, f), data, 0o600)
	}
}

// testPrivateKey is an SSH private key in OpenSSH's PEM format.
func testPrivateKey(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func TestPlanImport(t *testing.T) {
	root := t.TempDir()
	tlsFiles := []string{"ca.pem", "cert.pem", "key.pem"}
	host := func(name, driver string, d map[string]any) map[string]any {
		return map[string]any{"ConfigVersion": 3, "DriverName": driver, "Name": name, "Driver": d,
			"HostOptions": map[string]any{"EngineOptions": map[string]any{"TlsVerify": true}}}
	}
	writeDM(t, root, "gen", host("gen", "generic", map[string]any{
		"IPAddress": "10.0.0.5", "SSHUser": "ubuntu", "SSHPort": 2222, "EnginePort": 2377,
		"SSHKeyPath": filepath.Join(root, "machines", "gen", "id_rsa"), "SSHKey": "/nowhere/id_rsa",
	}), append(tlsFiles, "id_rsa")...)
	writeDM(t, root, "gen-defaults", host("gen-defaults", "generic", map[string]any{"IPAddress": "10.0.0.6"}), tlsFiles...)
	writeDM(t, root, "vb", host("vb", "virtualbox", map[string]any{"IPAddress": "192.168.99.100", "SSHPort": 50022, "SSHUser": "docker", "CPU": 2, "Memory": 2048, "HostOnlyCIDR": "192.168.99.1/24"}), append(tlsFiles, "id_rsa")...)
	writeDM(t, root, "vb-nokey", host("vb-nokey", "virtualbox", map[string]any{"IPAddress": "192.168.99.101", "SSHPort": 50023}), tlsFiles...)
	writeDM(t, root, "vb-never", host("vb-never", "virtualbox", map[string]any{}), append(tlsFiles, "id_rsa")...)
	writeDM(t, root, "aws", host("aws", "amazonec2", map[string]any{"IPAddress": "1.2.3.4"}), tlsFiles...)
	writeDM(t, root, "nodrv", host("nodrv", "none", map[string]any{"URL": "tcp://1.2.3.4:2376"}), tlsFiles...)
	writeDM(t, root, "broken", "{not json", tlsFiles...)
	writeDM(t, root, "nocerts", host("nocerts", "generic", map[string]any{"IPAddress": "10.0.0.7"}))
	writeDM(t, root, "bad_name", host("bad_name", "generic", map[string]any{"IPAddress": "10.0.0.8"}), tlsFiles...)
	writeDM(t, root, "taken", host("taken", "generic", map[string]any{"IPAddress": "10.0.0.9"}), tlsFiles...)
	writeDM(t, root, "noip", host("noip", "generic", map[string]any{}), tlsFiles...)
	insecure := host("insecure", "generic", map[string]any{"IPAddress": "10.0.0.10"})
	insecure["HostOptions"] = map[string]any{"EngineOptions": map[string]any{"TlsVerify": false}}
	writeDM(t, root, "insecure", insecure, tlsFiles...)

	plans, err := PlanStore(root, nil, func(n string) bool { return n == "taken" })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Plan{}
	for _, p := range plans {
		got[p.Name] = p
	}
	if len(got) != 13 {
		t.Fatalf("%d plans: %v", len(got), plans)
	}
	g := got["gen"]
	if g.Driver != "ssh" || g.Host != "10.0.0.5" || g.User != "ubuntu" || g.Port != 2222 || g.EnginePort != 2377 ||
		g.KeyPath != filepath.Join(root, "machines", "gen", "id_rsa") {
		t.Errorf("gen: %+v", g)
	}
	d := got["gen-defaults"]
	if d.Driver != "ssh" || d.User != "root" || d.Port != 22 || d.EnginePort != 2376 || d.KeyPath != "" {
		t.Errorf("gen-defaults: %+v", d)
	}
	for name, reason := range map[string]string{
		"vb-nokey": "no id_rsa", "vb-never": "no SSH port", "aws": "no amazonec2 driver", "nodrv": "none driver", "broken": "not valid",
		"nocerts": "no ca.pem", "bad_name": "invalid name", "taken": "already has", "noip": "IPAddress is empty",
		"insecure": "does not verify",
	} {
		if p := got[name]; p.Driver != "" || !strings.Contains(p.Reason, reason) {
			t.Errorf("%s: %+v, want not importable: %s", name, p, reason)
		}
	}
	v := got["vb"]
	if v.Driver != "virtualbox" || v.Host != "127.0.0.1" || v.Port != 50022 || v.User != "docker" || v.Address != "192.168.99.100" ||
		v.KeyPath != filepath.Join(root, "machines", "vb", "id_rsa") || v.VirtualBox == nil || v.VirtualBox.HostOnlyCIDR != "192.168.99.1/24" || v.VirtualBox.CPU != 2 {
		t.Errorf("vb: %+v", v)
	}
	if g.Address != "10.0.0.5" {
		t.Errorf("gen address %q", g.Address)
	}
	// Asked by name: only those, and a missing one said so.
	plans, _ = PlanStore(root, []string{"gen", "ghost"}, func(string) bool { return false })
	if len(plans) != 2 || plans[0].Name != "gen" || plans[1].Name != "ghost" || !strings.Contains(plans[1].Reason, "not in the docker-machine store") {
		t.Errorf("by name: %+v", plans)
	}
	if _, err := PlanStore(filepath.Join(root, "none"), nil, func(string) bool { return false }); err == nil {
		t.Errorf("a missing store is not an error")
	}
}

// TestPlanImportHostileStore: a docker-machine store that holds a FIFO or
// a link to a device where a file should be, names a key outside the
// machine's folder, or addresses and users that are not, neither hangs the
// import, nor feeds it without end, nor takes those.
func TestPlanImportHostileStore(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	tlsFiles := []string{"ca.pem", "cert.pem", "key.pem"}
	gen := func(name string, d map[string]any) map[string]any {
		return map[string]any{"ConfigVersion": 3, "DriverName": "generic", "Name": name, "Driver": d,
			"HostOptions": map[string]any{"EngineOptions": map[string]any{"TlsVerify": true}}}
	}
	mdir := func(n string) string { return filepath.Join(root, "machines", n) }
	// config.json a FIFO, a link to /dev/zero, too large.
	writeDM(t, root, "fifo", "{}", tlsFiles...)
	os.Remove(filepath.Join(mdir("fifo"), "config.json"))
	if err := syscall.Mkfifo(filepath.Join(mdir("fifo"), "config.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeDM(t, root, "zero", "{}", tlsFiles...)
	os.Remove(filepath.Join(mdir("zero"), "config.json"))
	os.Symlink("/dev/zero", filepath.Join(mdir("zero"), "config.json"))
	writeDM(t, root, "huge", `{"Name":"huge","x":"`+strings.Repeat("a", 2<<20)+`"}`, tlsFiles...)
	// A certificate that is a FIFO.
	writeDM(t, root, "fifocert", gen("fifocert", map[string]any{"IPAddress": "10.0.0.5"}), "cert.pem", "key.pem")
	syscall.Mkfifo(filepath.Join(mdir("fifocert"), "ca.pem"), 0o600)
	// Keys: one outside (a real key), one shadow-like file, one id_rsa
	// linked outside.
	key := filepath.Join(outside, "id_user")
	os.WriteFile(key, testPrivateKey(t), 0o600)
	shadow := filepath.Join(outside, "shadow")
	os.WriteFile(shadow, []byte("root:$6$salt$hash:19000:0:99999:7:::\n"), 0o600)
	writeDM(t, root, "keyout", gen("keyout", map[string]any{"IPAddress": "10.0.0.6", "SSHKeyPath": key}), tlsFiles...)
	writeDM(t, root, "shadow", gen("shadow", map[string]any{"IPAddress": "10.0.0.7", "SSHKeyPath": shadow}), tlsFiles...)
	writeDM(t, root, "linked", gen("linked", map[string]any{"IPAddress": "10.0.0.8"}), tlsFiles...)
	os.Symlink(key, filepath.Join(mdir("linked"), "id_rsa"))
	writeDM(t, root, "vblinked", map[string]any{"ConfigVersion": 3, "DriverName": "virtualbox", "Name": "vblinked",
		"Driver":      map[string]any{"IPAddress": "192.168.99.100", "SSHPort": 50022},
		"HostOptions": map[string]any{"EngineOptions": map[string]any{"TlsVerify": true}}}, tlsFiles...)
	os.Symlink(key, filepath.Join(mdir("vblinked"), "id_rsa"))
	// Addresses and users that are not.
	writeDM(t, root, "badip", gen("badip", map[string]any{"IPAddress": "-oProxyCommand=touch /tmp/x"}), tlsFiles...)
	writeDM(t, root, "baduser", gen("baduser", map[string]any{"IPAddress": "10.0.0.9", "SSHUser": "root -oProxyCommand=x"}), tlsFiles...)
	writeDM(t, root, "badport", gen("badport", map[string]any{"IPAddress": "10.0.0.9", "SSHPort": 70000}), tlsFiles...)

	var plans []Plan
	done := make(chan error, 1)
	go func() {
		var err error
		plans, err = PlanStore(root, nil, func(string) bool { return false })
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("PlanStore hangs on a hostile store")
	}
	// A store whose machines folder is a FIFO.
	fifoStore := t.TempDir()
	syscall.Mkfifo(filepath.Join(fifoStore, "machines"), 0o600)
	go func() {
		_, err := PlanStore(fifoStore, nil, func(string) bool { return false })
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a folder") {
			t.Errorf("a store whose machines is a FIFO: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("PlanStore hangs on a store whose machines is a FIFO")
	}
	got := map[string]Plan{}
	for _, p := range plans {
		got[p.Name] = p
	}
	for name, reason := range map[string]string{
		"fifo": "not a regular file", "zero": "not a regular file", "huge": "larger than",
		"fifocert": "no ca.pem", "vblinked": "no id_rsa", "badip": "IPAddress", "baduser": "SSHUser", "badport": "SSHPort",
	} {
		if p := got[name]; p.Driver != "" || !strings.Contains(p.Reason, reason) {
			t.Errorf("%s: %+v, want not importable: %s", name, p, reason)
		}
	}
	for _, name := range []string{"keyout", "linked"} {
		if p := got[name]; p.Driver != "ssh" || p.KeyPath != key || !p.KeyOutside {
			t.Errorf("%s: %+v, want the key outside its folder marked so", name, p)
		}
	}
	if p := got["shadow"]; p.Driver != "ssh" || p.KeyPath != "" {
		t.Errorf("shadow: %+v, want a file that is no SSH key never taken", p)
	}
	var out strings.Builder
	PrintPlans(&out, plans)
	if !strings.Contains(out.String(), "keyout: its config.json names the SSH key "+key+", outside") {
		t.Errorf("the plan does not show the key outside its folder:\n%s", out.String())
	}
	if KeysQuestion(plans) == "" {
		t.Error("the question does not ask about the keys outside their folders")
	}
}

// FuzzPlanOne: whatever a docker-machine config.json holds, planning
// neither panics nor takes an address or user that is not one.
func FuzzPlanOne(f *testing.F) {
	f.Add(`{"ConfigVersion":3,"DriverName":"generic","Name":"m","Driver":{"IPAddress":"10.0.0.5","SSHUser":"u","SSHPort":22},"HostOptions":{"EngineOptions":{"TlsVerify":true}}}`)
	f.Add(`{"DriverName":"virtualbox","Driver":{"IPAddress":"1.2.3.4","SSHPort":5}}`)
	f.Add(`{"DriverName":"generic","Driver":{"IPAddress":"a b"}}`)
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, cfg string) {
		writeDM(t, root, "m", cfg, "ca.pem", "cert.pem", "key.pem")
		p := planOne(filepath.Join(root, "machines", "m"), "m", func(string) bool { return false })
		if p.Driver == "" {
			return
		}
		if err := validate.Host(p.Host); err != nil {
			t.Errorf("took host %q", p.Host)
		}
		if err := validate.UserName(p.User); err != nil {
			t.Errorf("took user %q", p.User)
		}
	})
}

// TestImportRefusesDoubleDotNames: a docker-machine host named a..b is not
// imported (it would be a new machine of shoal's, and new names follow
// validate.Name).
func TestImportRefusesDoubleDotNames(t *testing.T) {
	root := t.TempDir()
	writeDM(t, root, "a..b", map[string]any{"ConfigVersion": 3, "DriverName": "generic", "Name": "a..b",
		"Driver": map[string]any{"IPAddress": "10.0.0.5"}}, "ca.pem", "cert.pem", "key.pem")
	plans, err := PlanStore(root, nil, func(string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if len(plans) != 1 || plans[0].Driver != "" || !strings.Contains(plans[0].Reason, "invalid name") {
		t.Errorf("plans %+v, want a..b not importable: invalid name", plans)
	}
}
