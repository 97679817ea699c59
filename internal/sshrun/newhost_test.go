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

func TestDecideKey(t *testing.T) {
	const a, b = "SHA256:a", "SHA256:b"
	cases := []struct {
		name string
		f    keyFacts
		want keyVerdict
	}{
		{"first contact", keyFacts{Offered: a}, keyPinFirst},
		{"first contact, fingerprint given", keyFacts{Want: a, Offered: a}, keyPinFirst},
		{"first contact, other fingerprint", keyFacts{Want: b, Offered: a}, keyWrongFP},
		{"pinned key", keyFacts{Pinned: true, AddrPinned: true, KeyPinned: true, Offered: a}, keyAccept},
		{"pinned key at a new address", keyFacts{Pinned: true, KeyPinned: true, Offered: a}, keyAccept},
		{"pinned key, new host accepted", keyFacts{Pinned: true, KeyPinned: true, Offered: a, AcceptNew: true}, keyAccept},
		{"changed key at the pinned address", keyFacts{Pinned: true, AddrPinned: true, Offered: b}, keyRefuse},
		{"changed key at the pinned address, accept given", keyFacts{Pinned: true, AddrPinned: true, Offered: b, AcceptNew: true}, keyRefuse},
		{"changed key at the pinned address, its fingerprint given", keyFacts{Pinned: true, AddrPinned: true, Offered: b, Want: b, AcceptNew: true}, keyRefuse},
		{"another key at a new address", keyFacts{Pinned: true, Offered: b}, keyNewHost},
		{"another key at a new address, its fingerprint given only", keyFacts{Pinned: true, Offered: b, Want: b}, keyNewHost},
		{"new host accepted", keyFacts{Pinned: true, Offered: b, AcceptNew: true}, keyTakeNewHost},
		{"new host accepted, its fingerprint given", keyFacts{Pinned: true, Offered: b, Want: b, AcceptNew: true}, keyTakeNewHost},
		{"new host accepted, another fingerprint given", keyFacts{Pinned: true, Offered: b, Want: "SHA256:c", AcceptNew: true}, keyWrongFP},
		{"old key at a new address, new fingerprint given", keyFacts{Pinned: true, KeyPinned: true, Offered: a, Want: b, AcceptNew: true}, keyWrongFP},
		{"revoked", keyFacts{Revoked: true, Offered: a}, keyRefuse},
		{"revoked, new host accepted", keyFacts{Pinned: true, Revoked: true, Offered: b, AcceptNew: true}, keyRefuse},
	}
	for _, c := range cases {
		if got := decideKey(c.f); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// newHostSetup pins a key at 127.0.0.1 and starts a host with keyB on the
// same port, reached now as localhost: the machine's address changed to a
// host with another key.
func newHostSetup(t *testing.T, keyB ssh.Signer) (cfg Config, pinned []byte, port int) {
	keyA := newEd25519Signer(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{keyA}})
	dial(t, cfg).Close()
	pinned, _ = os.ReadFile(cfg.KnownHostsPath)
	srv.Close()
	newTestServer(t, serverOpts{addr: srv.addr, hostKeys: []ssh.Signer{keyB}, authorized: mustPub(t, cfg.KeyPath)})
	cfg.Host = "localhost"
	return cfg, pinned, srv.port
}

// TestHostKeyAcceptNewHost: with AcceptNewHost the host at the new address
// is taken, also with a key of another type than the one pinned, and its
// key replaces the old pins.
func TestHostKeyAcceptNewHost(t *testing.T) {
	for _, keyB := range []ssh.Signer{newEd25519Signer(t), newECDSASigner(t)} {
		t.Run(keyB.PublicKey().Type(), func(t *testing.T) {
			cfg, _, port := newHostSetup(t, keyB)
			cfg.AcceptNewHost = true
			c := dial(t, cfg)
			c.Close()
			if Fingerprint(c.HostKey()) != Fingerprint(keyB.PublicKey()) {
				t.Fatal("connected with another key")
			}
			b, _ := os.ReadFile(cfg.KnownHostsPath)
			want := knownhosts.Line([]string{fmt.Sprintf("[localhost]:%d", port)}, keyB.PublicKey()) + "\n"
			if string(b) != want {
				t.Errorf("known_hosts =\n%s\nwant\n%s", b, want)
			}
			if st, err := os.Stat(cfg.KnownHostsPath); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("known_hosts mode: %v %v", st.Mode(), err)
			}
			// Taken: later connections need no step.
			cfg.AcceptNewHost = false
			dial(t, cfg).Close()
		})
	}
}

// TestHostKeyAcceptNewHostFingerprint: the fingerprint given must be the
// new host's; another is refused and nothing is pinned.
func TestHostKeyAcceptNewHostFingerprint(t *testing.T) {
	keyB := newEd25519Signer(t)
	cfg, pinned, _ := newHostSetup(t, keyB)
	cfg.AcceptNewHost = true
	cfg.HostKeyFingerprint = Fingerprint(newEd25519Signer(t).PublicKey())
	_, err := Dial(ctx10(t), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) {
		t.Fatalf("want a HostKeyError, got %v", err)
	}
	if after, _ := os.ReadFile(cfg.KnownHostsPath); string(after) != string(pinned) {
		t.Errorf("known_hosts changed: %q", after)
	}
	cfg.HostKeyFingerprint = Fingerprint(keyB.PublicKey())
	dial(t, cfg).Close()
}

// TestHostKeyAcceptNewHostSameAddress: at the address the key was pinned
// at, a changed key stays refused as a changed key, AcceptNewHost or not.
func TestHostKeyAcceptNewHostSameAddress(t *testing.T) {
	keyA, keyB := newEd25519Signer(t), newEd25519Signer(t)
	srv, cfg := setup(t, serverOpts{hostKeys: []ssh.Signer{keyA}})
	dial(t, cfg).Close()
	pinned, _ := os.ReadFile(cfg.KnownHostsPath)
	srv.Close()
	newTestServer(t, serverOpts{addr: srv.addr, hostKeys: []ssh.Signer{keyB}, authorized: mustPub(t, cfg.KeyPath)})
	cfg.AcceptNewHost = true
	_, err := Dial(ctx10(t), cfg)
	var hke *HostKeyError
	if !errors.As(err, &hke) || hke.NewHost || !hke.AcceptRefused {
		t.Fatalf("want a changed-key HostKeyError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"CHANGED", fmt.Sprintf("ssh-keygen -R '[127.0.0.1]:%d'", srv.port), "does not apply"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if after, _ := os.ReadFile(cfg.KnownHostsPath); string(after) != string(pinned) {
		t.Errorf("known_hosts changed: %q", after)
	}
}

// TestHostsMatchHashed: a hashed host column is matched like OpenSSH's.
func TestHostsMatchHashed(t *testing.T) {
	h := knownhosts.HashHostname("[10.0.0.5]:2222")
	if !hostsMatch([]string{h}, "10.0.0.5:2222") || hostsMatch([]string{h}, "10.0.0.6:2222") {
		t.Error("hashed host not matched")
	}
	if !hostsMatch([]string{"10.0.0.5"}, "10.0.0.5:22") {
		t.Error("plain host not matched")
	}
}
