package driverutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestLoadOrCreateHostKey(t *testing.T) {
	dir := t.TempDir()
	k, err := LoadOrCreateHostKey(dir, "hk")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(k.PrivatePEM)
	if err != nil {
		t.Fatal(err)
	}
	if got := ssh.FingerprintSHA256(signer.PublicKey()); got != k.Fingerprint || !strings.HasPrefix(got, "SHA256:") {
		t.Errorf("fingerprint %q, the private key's is %q", k.Fingerprint, got)
	}
	if strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) != k.Public {
		t.Errorf("public %q does not match the private key", k.Public)
	}
	for name, mode := range map[string]os.FileMode{"hk": 0o600, "hk.pub": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	again, err := LoadOrCreateHostKey(dir, "hk")
	if err != nil || again.Fingerprint != k.Fingerprint || again.Public != k.Public || string(again.PrivatePEM) != string(k.PrivatePEM) {
		t.Fatalf("the kept key was not reused: %v", err)
	}
	if other, _ := NewHostKey(); other.Fingerprint == k.Fingerprint {
		t.Error("two new keys are the same")
	}
}

func TestLoadOrCreateHostKeyCorrupt(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hk")
	if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateHostKey(dir, "hk"); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("corrupt key: %v, want an error naming %s", err, p)
	}
	if b, _ := os.ReadFile(p); string(b) != "garbage" {
		t.Error("a key file that does not parse was replaced")
	}
}
