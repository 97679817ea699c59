package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600)
	}
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

	plans, err := planImport(root, nil, func(n string) bool { return n == "taken" })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]importPlan{}
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
	plans, _ = planImport(root, []string{"gen", "ghost"}, func(string) bool { return false })
	if len(plans) != 2 || plans[0].Name != "gen" || plans[1].Name != "ghost" || !strings.Contains(plans[1].Reason, "not in the docker-machine store") {
		t.Errorf("by name: %+v", plans)
	}
	if _, err := planImport(filepath.Join(root, "none"), nil, func(string) bool { return false }); err == nil {
		t.Errorf("a missing store is not an error")
	}
}
