package driverutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/internal/cloudinit"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"golang.org/x/crypto/ssh"
)

// HostKey is an SSH host key shoal makes for a host it creates: the host
// gets the private half, shoal pins the fingerprint before the first
// contact.
type HostKey struct {
	// PrivatePEM is the private key in OpenSSH PEM form.
	PrivatePEM []byte
	// Public is the public key in authorized_keys form, without newline.
	Public string
	// Fingerprint is Public's SHA256:... fingerprint.
	Fingerprint string
}

// NewHostKey makes an ed25519 host key.
func NewHostKey() (HostKey, error) {
	priv, pub, err := cloudinit.GenerateHostKey()
	if err != nil {
		return HostKey{}, err
	}
	return hostKey(priv, pub)
}

func hostKey(priv []byte, pub string) (HostKey, error) {
	fp, err := cloudinit.HostKeyFingerprint(pub)
	if err != nil {
		return HostKey{}, err
	}
	return HostKey{PrivatePEM: priv, Public: pub, Fingerprint: fp}, nil
}

// LoadOrCreateHostKey returns the host key kept in dir as file (private,
// 0600; file.pub beside it has the public half for people), making it on
// first use: a host created again keeps its key, and the fingerprint
// pinned for it stays true. A key file that does not parse is an error,
// never replaced.
func LoadOrCreateHostKey(dir, file string) (HostKey, error) {
	privPath := filepath.Join(dir, file)
	priv, err := os.ReadFile(privPath)
	if err == nil {
		signer, err := ssh.ParsePrivateKey(priv)
		if err != nil {
			return HostKey{}, fmt.Errorf("host key %s: %w", privPath, err)
		}
		pub := signer.PublicKey()
		return HostKey{
			PrivatePEM:  priv,
			Public:      strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))),
			Fingerprint: ssh.FingerprintSHA256(pub),
		}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return HostKey{}, fmt.Errorf("host key: %w", err)
	}
	k, err := NewHostKey()
	if err != nil {
		return HostKey{}, err
	}
	// The public half first: the private one there means both are.
	if err := fsutil.WriteFileAtomic(privPath+".pub", []byte(k.Public+"\n"), 0o644); err != nil {
		return HostKey{}, fmt.Errorf("host key: %w", err)
	}
	if err := fsutil.WriteFileAtomic(privPath, k.PrivatePEM, 0o600); err != nil {
		return HostKey{}, fmt.Errorf("host key: %w", err)
	}
	return k, nil
}
