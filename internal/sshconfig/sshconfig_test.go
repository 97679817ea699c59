package sshconfig

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLookup(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	// An absolute Include: the parser resolves relative ones against the
	// account's home (os/user), not $HOME.
	write(t, filepath.Join(home, ".ssh", "config"), `
Include `+home+`/.ssh/conf.d/*.conf

Host web
  HostName 10.0.0.5
  User hadoop
  Port 2222
  IdentityFile ~/.ssh/web_key
  IdentityFile %d/other_%r
  ProxyJump ops@bastion:2200

Host bastion
  HostName 192.168.1.1

Host *
  User fallback
`)
	write(t, filepath.Join(home, ".ssh", "conf.d", "db.conf"), "Host db\n  HostName db.internal\n  Port 2200\n")
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Lookup("web")
	if err != nil {
		t.Fatal(err)
	}
	want := Host{Alias: "web", HostName: "10.0.0.5", User: "hadoop", Port: 2222,
		IdentityFiles: []string{filepath.Join(home, ".ssh/web_key"), home + "/other_hadoop"}, ProxyJump: "ops@bastion:2200"}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("web:\n got %+v\nwant %+v", h, want)
	}
	// From the included file; the first value wins, so User comes from Host *.
	h, err = c.Lookup("db")
	if err != nil || h.HostName != "db.internal" || h.Port != 2200 || h.User != "fallback" {
		t.Fatalf("db: %+v %v", h, err)
	}
	h, _ = c.Lookup("10.9.9.9")
	if h.HostName != "" || h.User != "fallback" || !h.Found() {
		t.Fatalf("unknown host: %+v", h)
	}
}

func TestLookupRefusesBadValues(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	write(t, p, "Host evil\n  HostName -oProxyCommand=touch\n  User 'x;id'\n  Port 70000\n  ProxyJump a@b;reboot\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Lookup("evil")
	if err == nil {
		t.Fatal("want errors")
	}
	for _, s := range []string{p, "HostName", "User", "Port", "ProxyJump"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	if c, err := Load(""); err != nil {
		t.Fatalf("a missing ~/.ssh/config is empty, got %v", err)
	} else if h, _ := c.Lookup("x"); h.Found() {
		t.Fatal("found in nothing")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("a missing --ssh-config file must be an error")
	}
}
