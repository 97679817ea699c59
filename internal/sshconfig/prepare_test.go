package sshconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/validate"
)

// TestMatchDoesNotBreakLookups: one Match block shoal cannot evaluate (a
// common `Match user`) is skipped with a warning; every other block still
// works, in the default file and in a named one.
func TestMatchDoesNotBreakLookups(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	text := `
Match user deploy
  IdentityFile ~/.ssh/deploy_key
  User deployer

Match host db,cache
  Port 2201

Match originalhost bastion
  User ops

Host web
  HostName 10.0.0.5

Match exec "true"
  User pwned

Match all
  User fallback
`
	def := filepath.Join(home, ".ssh", "config")
	write(t, def, text)
	named := filepath.Join(t.TempDir(), "named_config")
	write(t, named, text)
	for _, path := range []string{"", named} {
		c, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%q): %v", path, err)
		}
		h, err := c.Lookup("web")
		if err != nil || h.HostName != "10.0.0.5" || h.User != "fallback" || len(h.IdentityFiles) != 0 {
			t.Fatalf("%q: web: %+v %v", path, h, err)
		}
		if h, _ := c.Lookup("cache"); h.Port != 2201 {
			t.Fatalf("Match host a,b: cache %+v", h)
		}
		if h, _ := c.Lookup("bastion"); h.User != "ops" {
			t.Fatalf("Match originalhost: bastion %+v", h)
		}
		w := strings.Join(c.Warnings(), "\n")
		for _, s := range []string{":2: \"Match user deploy\": skipped", `:15: "Match exec \"true\"": skipped`} {
			if !strings.Contains(w, s) {
				t.Errorf("%q: warnings lack %q:\n%s", path, s, w)
			}
		}
		if len(c.Warnings()) != 2 {
			t.Errorf("%q: want 2 warnings:\n%s", path, w)
		}
	}
}

// TestIncludeInlined: an included file's Match lines are treated the same;
// after a top-level Include the outer lines apply to every alias again, as
// in OpenSSH; a conditional Include of a file with its own blocks, and one
// that cannot be read, are skipped with a warning.
func TestIncludeInlined(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	write(t, filepath.Join(home, ".ssh", "conf.d", "a.conf"), "Match localuser me\n  User nobody\nHost db\n  HostName db.internal\n")
	write(t, filepath.Join(home, ".ssh", "blocks.conf"), "Host x\n  User x\n")
	write(t, filepath.Join(home, ".ssh", "plain.conf"), "Port 2222\n")
	os.MkdirAll(filepath.Join(home, ".ssh", "adir"), 0o700)
	write(t, filepath.Join(home, ".ssh", "config"), `
Include conf.d/*.conf
User everyone

Host web
  Include plain.conf
  Include blocks.conf
  HostName 10.0.0.5
Host dir
  Include adir
`)
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := c.Lookup("db"); h.HostName != "db.internal" || h.User != "everyone" {
		t.Fatalf("db: %+v", h)
	}
	if h, _ := c.Lookup("other"); h.User != "everyone" || h.Port != 0 {
		t.Fatalf("other: %+v", h)
	}
	if h, _ := c.Lookup("web"); h.HostName != "10.0.0.5" || h.Port != 2222 {
		t.Fatalf("web: %+v", h)
	}
	if h, _ := c.Lookup("x"); h.User != "everyone" {
		t.Fatalf("x: the conditional include of blocks was not skipped: %+v", h)
	}
	w := strings.Join(c.Warnings(), "\n")
	for _, s := range []string{"a.conf:1: \"Match localuser me\": skipped", "blocks.conf inside a Host or Match block", "adir"} {
		if !strings.Contains(w, s) {
			t.Errorf("warnings lack %q:\n%s", s, w)
		}
	}
}

func TestIncludeDepth(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	loop := filepath.Join(home, ".ssh", "loop")
	write(t, loop, "Include "+loop+"\n")
	c, err := Load(loop)
	if err != nil || !strings.Contains(strings.Join(c.Warnings(), "\n"), "deeper than 16") {
		t.Fatalf("a looping Include: %v %q", err, c.Warnings())
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("Match user x\nHost a\n  User b\n")
	f.Add("Match host a,b\n Port 1\nInclude /nonexistent\n")
	f.Add("Host\n=\n\"x\nMatch\n")
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("HOME", t.TempDir())
		c, err := Load(path)
		if err == nil {
			_, _ = c.Lookup("a")
		}
	})
}

// TestRefusedOnlyWhereUsed: a value that may not reach a host is left out
// and named, and stops nothing when the caller sets that keyword itself.
func TestRefusedOnlyWhereUsed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	write(t, p, "Host *\n  User CORP\\john\n  Port 99999\n  HostName 10.0.0.9\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Lookup("web")
	if err == nil || h.User != "" || h.Port != 0 || h.HostName != "10.0.0.9" {
		t.Fatalf("want User and Port left out and named: %+v %v", h, err)
	}
	if err := h.Refused("User"); err == nil || strings.Contains(err.Error(), "User") || !strings.Contains(err.Error(), "Port") {
		t.Fatalf("Refused(User): %v", err)
	}
	if err := h.Refused("User", "Port"); err != nil {
		t.Fatalf("Refused(User, Port): %v", err)
	}
	if err := h.HopRefused(validate.Hop{User: "ops", Host: "web", Port: 22}); err != nil {
		t.Fatalf("a hop that spells out user and port: %v", err)
	}
	if err := h.HopRefused(validate.Hop{Host: "web"}); err == nil {
		t.Fatal("a hop that takes the user from ssh_config: want the refusal")
	}
}
