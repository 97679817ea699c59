package sshrun

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestHostKeyPinnedPerMachine: a key pinned when the machine was reached at
// 127.0.0.1 is checked when it is reached as localhost; another key there is
// refused as another host at the machine's new address (not as a changed
// key: nothing says the pinned host changed), the message names the
// address connected to and the step that takes it, and the file is left as
// it was.
func TestHostKeyPinnedPerMachine(t *testing.T) {
	keyA, keyB := newEd25519Signer(t), newEd25519Signer(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{keyA}})
	dial(t, cfg).Close()
	pinned, _ := os.ReadFile(cfg.KnownHostsPath)
	srv.Close()

	srv2 := newTestServer(t, serverOpts{addr: srv.addr, hostKeys: []ssh.Signer{keyB}, authorized: mustPub(t, cfg.KeyPath)})
	byName := cfg
	byName.Host = "localhost"
	_, err := Dial(ctx10(t), byName)
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.FirstContact || !hke.NewHost {
		t.Fatalf("want a new-host HostKeyError at localhost, got %v", err)
	}
	if hke.Pinned != Fingerprint(keyA.PublicKey()) || hke.Offered != Fingerprint(keyB.PublicKey()) {
		t.Errorf("pinned %s offered %s", hke.Pinned, hke.Offered)
	}
	hke.Remedy = "cluster up c.hcl --accept-new-host-key m1"
	msg := err.Error()
	for _, want := range []string{fmt.Sprintf("host at localhost:%d", srv.port), fmt.Sprintf("[127.0.0.1]:%d", srv.port), "\n  cluster up c.hcl --accept-new-host-key m1\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "intercepting") || strings.Contains(msg, "ssh-keygen -R") {
		t.Errorf("a host at a new address is not a changed key:\n%s", msg)
	}
	if after, _ := os.ReadFile(cfg.KnownHostsPath); string(after) != string(pinned) {
		t.Errorf("a refused key changed known_hosts:\nbefore %q\nafter  %q", pinned, after)
	}
	if n := srv2.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (a refused key is not retried)", n)
	}
}

// TestHostKeySameKeyNewName: the machine's own key reached by another name
// is accepted and noted at that name too (the same key), so OpenSSH given
// the file knows it; the key pinned before stays.
func TestHostKeySameKeyNewName(t *testing.T) {
	keyA := newEd25519Signer(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{keyA}})
	dial(t, cfg).Close()
	byName := cfg
	byName.Host = "localhost"
	c := dial(t, byName)
	if Fingerprint(c.HostKey()) != Fingerprint(keyA.PublicKey()) {
		t.Fatal("connected with another key")
	}
	b, _ := os.ReadFile(cfg.KnownHostsPath)
	want := knownhosts.Line([]string{fmt.Sprintf("[127.0.0.1]:%d", srv.port)}, keyA.PublicKey()) + "\n" +
		knownhosts.Line([]string{fmt.Sprintf("[localhost]:%d", srv.port)}, keyA.PublicKey()) + "\n"
	if string(b) != want {
		t.Errorf("known_hosts =\n%s\nwant\n%s", b, want)
	}
}

// TestHostKeyGivenFingerprintNotPinned: a fingerprint given now (a
// re-created machine's --ssh-host-key) that is not the pinned key is refused
// before any connection; nothing is re-pinned.
func TestHostKeyGivenFingerprintNotPinned(t *testing.T) {
	keyA, keyB := newEd25519Signer(t), newEd25519Signer(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{keyA}})
	dial(t, cfg).Close()
	pinned, _ := os.ReadFile(cfg.KnownHostsPath)
	srv.Close()
	srv2 := newTestServer(t, serverOpts{addr: srv.addr, hostKeys: []ssh.Signer{keyB}, authorized: mustPub(t, cfg.KeyPath)})
	cfg.Host = "localhost"
	cfg.HostKeyFingerprint = Fingerprint(keyB.PublicKey())
	_, err := Dial(ctx10(t), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.Expected != Fingerprint(keyB.PublicKey()) {
		t.Fatalf("want a HostKeyError naming the given fingerprint, got %v", err)
	}
	if !hke.NewHost || !strings.Contains(err.Error(), "given now: "+Fingerprint(keyB.PublicKey())) {
		t.Errorf("Error() = %s", err)
	}
	if srv2.conns.Load() != 0 {
		t.Error("connected although the given fingerprint contradicts the pin")
	}
	if after, _ := os.ReadFile(cfg.KnownHostsPath); string(after) != string(pinned) {
		t.Error("known_hosts changed")
	}
}

// TestHostKeyRevoked: a key marked @revoked is refused even on first contact.
func TestHostKeyRevoked(t *testing.T) {
	keyA := newEd25519Signer(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{keyA}})
	line := "@revoked " + knownhosts.Line([]string{knownhosts.Normalize(srv.addr)}, keyA.PublicKey()) + "\n"
	if err := os.WriteFile(cfg.KnownHostsPath, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Dial(ctx10(t), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("want HostKeyError for a revoked key, got %v", err)
	}
	if b, _ := os.ReadFile(cfg.KnownHostsPath); string(b) != line {
		t.Errorf("known_hosts changed: %q", b)
	}
}

// TestNoPinWritesNothing: a read-only connection checks the pin but adds
// nothing, on first contact nor at a new name.
func TestNoPinWritesNothing(t *testing.T) {
	keyA := newEd25519Signer(t)
	_, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{keyA}})
	ro := cfg
	ro.NoPin = true
	dial(t, ro).Close()
	if _, err := os.Stat(cfg.KnownHostsPath); !os.IsNotExist(err) {
		t.Fatalf("a NoPin first contact wrote known_hosts: %v", err)
	}
	dial(t, cfg).Close()
	pinned, _ := os.ReadFile(cfg.KnownHostsPath)
	ro.Host = "localhost"
	dial(t, ro).Close()
	if after, _ := os.ReadFile(cfg.KnownHostsPath); string(after) != string(pinned) {
		t.Errorf("a NoPin connection at a new name changed known_hosts: %q", after)
	}
}
