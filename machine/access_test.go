package machine

import (
	"github.com/shoal-dev/shoal/internal/remote"

	"os"
	"os/user"
	"path/filepath"
	"slices"
	"testing"

	"github.com/shoal-dev/shoal/drivers"
)

func TestJumpConfigs(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	conf := filepath.Join(home, "ssh_config")
	os.WriteFile(conf, []byte("Host bastion\n  HostName 10.0.0.1\n  User ops\n  Port 2200\n  IdentityFile ~/bastion_key\n"), 0o600)
	root := t.TempDir()
	ep := drivers.Endpoint{
		Endpoint: remote.Endpoint{
			KeyPath: "/keys/machine",
		},

		ProxyJump: "bastion,admin@[fd00::2]", JumpHostKeys: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
		SSHConfig: conf, JumpKeys: "/keys/a" + string(filepath.ListSeparator) + "/keys/b",
	}
	hops, err := jumpConfigs(ep, root, nil)
	if err != nil || len(hops) != 2 {
		t.Fatalf("%v %+v", err, hops)
	}
	b := hops[0]
	if b.Host != "10.0.0.1" || b.Port != 2200 || b.User != "ops" || b.HostKeyFingerprint == "" {
		t.Errorf("first hop: %+v", b)
	}
	for _, k := range []string{filepath.Join(home, "bastion_key"), "/keys/a", "/keys/b", "/keys/machine", filepath.Join(home, ".ssh", "id_ed25519")} {
		if !slices.Contains(b.ExtraKeyPaths, k) {
			t.Errorf("first hop does not offer %s: %v", k, b.ExtraKeyPaths)
		}
	}
	if b.KnownHostsPath != filepath.Join(root, JumpHostsDir, "10.0.0.1_2200", "known_hosts") {
		t.Errorf("known_hosts %s", b.KnownHostsPath)
	}
	if st, err := os.Stat(filepath.Dir(b.KnownHostsPath)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("jump host folder: %v", err)
	}
	v6 := hops[1]
	if v6.Host != "fd00::2" || v6.User != "admin" || v6.HostKeyFingerprint != "" || filepath.Base(filepath.Dir(v6.KnownHostsPath)) != "fd00__2_22" {
		t.Errorf("second hop: %+v", v6)
	}
	// No user anywhere: the local one, as ssh -J.
	hops, _ = jumpConfigs(drivers.Endpoint{ProxyJump: "10.9.9.9", SSHConfig: conf}, root, nil)
	if u, err := user.Current(); err == nil && hops[0].User != u.Username {
		t.Errorf("default jump user %q, want %q", hops[0].User, u.Username)
	}
	if hops, err := jumpConfigs(drivers.Endpoint{}, root, nil); err != nil || hops != nil {
		t.Errorf("no jump: %v %v", hops, err)
	}
}

// TestJumpConfigsSkipMatch: a Match block shoal cannot evaluate in the
// default ~/.ssh/config does not break the jump connection.
func TestJumpConfigsSkipMatch(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Match user deploy\n  User nobody\n"), 0o600)
	hops, err := jumpConfigs(drivers.Endpoint{ProxyJump: "ops@10.9.9.9"}, t.TempDir(), nil)
	if err != nil || len(hops) != 1 || hops[0].User != "ops" || hops[0].Host != "10.9.9.9" {
		t.Fatalf("%v %+v", err, hops)
	}
}

// TestJumpConfigsRefusedValueUnused: a User ssh_config may not give stops
// no hop that names its own user.
func TestJumpConfigsRefusedValueUnused(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host *\n  User john@corp.example.com\n"), 0o600)
	hops, err := jumpConfigs(drivers.Endpoint{ProxyJump: "ops@10.9.9.9"}, t.TempDir(), nil)
	if err != nil || len(hops) != 1 || hops[0].User != "ops" {
		t.Fatalf("%v %+v", err, hops)
	}
	if _, err := jumpConfigs(drivers.Endpoint{ProxyJump: "10.9.9.9"}, t.TempDir(), nil); err == nil {
		t.Fatal("a hop taking the refused user: want an error")
	}
}
