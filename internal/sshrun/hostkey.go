package sshrun

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError means the host offered a key other than the one pinned (or
// the expected fingerprint on first contact). It is never retried.
type HostKeyError struct {
	Host           string
	Addr           string // host:port that was dialled
	Pinned         string // fingerprint(s) pinned or expected, comma separated
	PinnedType     string // key type(s) pinned; "" for an expected fingerprint
	Offered        string // fingerprint(s) offered; "" when the host offered no key of the pinned type
	OfferedType    string // key type(s) offered, e.g. ssh-ed25519
	KnownHostsPath string
	FirstContact   bool // nothing was pinned; Pinned is Config.HostKeyFingerprint
}

func (e *HostKeyError) Error() string {
	var b strings.Builder
	switch {
	case e.FirstContact:
		fmt.Fprintf(&b, "ssh: host key of %s does not match the expected fingerprint\n", e.Addr)
		fmt.Fprintf(&b, "  expected: %s\n  offered:  %s (%s)\n", e.Pinned, e.Offered, e.OfferedType)
		b.WriteString("Nothing was pinned. Check the fingerprint on the machine's console " +
			"(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and correct it.")
	case e.Offered == "":
		fmt.Fprintf(&b, "ssh: host %s no longer offers a host key of the pinned type\n", e.Addr)
		fmt.Fprintf(&b, "  pinned in %s: %s (%s)\n", e.KnownHostsPath, e.Pinned, e.PinnedType)
		fmt.Fprintf(&b, "If the machine was really rebuilt, remove its old entry with\n  ssh-keygen -R %s -f %s\nand connect again; the new key is then pinned.",
			ShellQuote(knownhosts.Normalize(e.Addr)), ShellQuote(e.KnownHostsPath))
	default:
		fmt.Fprintf(&b, "ssh: host key of %s has CHANGED since it was pinned\n", e.Addr)
		fmt.Fprintf(&b, "  pinned in %s: %s (%s)\n  offered now: %s (%s)\n", e.KnownHostsPath, e.Pinned, e.PinnedType, e.Offered, e.OfferedType)
		fmt.Fprintf(&b, "Someone may be intercepting the connection. If the machine was really rebuilt, remove its old key with\n  ssh-keygen -R %s -f %s\nand connect again; the new key is then pinned.",
			ShellQuote(knownhosts.Normalize(e.Addr)), ShellQuote(e.KnownHostsPath))
	}
	return b.String()
}

// Fingerprint returns the key's SHA256 fingerprint as ssh-keygen -l prints it.
func Fingerprint(k ssh.PublicKey) string { return ssh.FingerprintSHA256(k) }

// normalizeFingerprint accepts "SHA256:xxx", bare base64, with or without
// padding, and returns the form Fingerprint produces.
func normalizeFingerprint(s string) (string, error) {
	f := strings.TrimSpace(s)
	f = strings.TrimPrefix(f, "SHA256:")
	f = strings.TrimRight(f, "=")
	b, err := base64.RawStdEncoding.DecodeString(f)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("host key fingerprint %q is not a SHA256 fingerprint like ssh-keygen -l prints (SHA256:...)", s)
	}
	return "SHA256:" + f, nil
}

// hostKeys is the HostKeyCallback state for one connection attempt.
type hostKeys struct {
	host, addr, path string
	want             string              // normalized expected fingerprint, "" if none
	known            ssh.HostKeyCallback // nil when nothing is pinned
	pinned           []ssh.PublicKey

	mu        sync.Mutex
	offered   []ssh.PublicKey // keys refused against the fingerprint
	rejection *HostKeyError   // last refusal, taken by dialOnce
	accepted  ssh.PublicKey
}

func newHostKeys(cfg Config, addr string) (*hostKeys, error) {
	h := &hostKeys{host: cfg.Host, addr: addr, path: cfg.KnownHostsPath}
	if cfg.HostKeyFingerprint != "" {
		h.want, _ = normalizeFingerprint(cfg.HostKeyFingerprint) // checked in Dial
	}
	if h.path == "" {
		return h, nil
	}
	cb, err := knownhosts.New(h.path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh: known hosts file: %w", err)
	}
	h.pinned = pinnedKeys(cb, addr)
	if len(h.pinned) > 0 {
		h.known = cb
	}
	return h, nil
}

// pinnedKeys lists the keys known_hosts holds for addr. knownhosts has no
// lookup API, but a mismatch error lists every candidate, so probe with a
// key no host has.
func pinnedKeys(cb ssh.HostKeyCallback, addr string) []ssh.PublicKey {
	probe, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probe); !errors.As(err, &ke) {
		return nil
	}
	keys := make([]ssh.PublicKey, 0, len(ke.Want))
	for _, w := range ke.Want {
		keys = append(keys, w.Key)
	}
	return keys
}

// keyTypeOrder is our preference among host key types: ed25519 first since
// that is the fingerprint most consoles and cloud APIs show.
func keyTypeOrder() []string {
	return []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSA}
}

func algorithmsForType(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

// algorithms returns HostKeyAlgorithms: only the pinned key types when
// something is pinned, so the server cannot pick another type and look
// changed; else every type not already rejected.
func (h *hostKeys) algorithms(rejected map[string]bool) []string {
	types := keyTypeOrder()
	if len(h.pinned) > 0 {
		order := types
		types = nil
		for _, k := range h.pinned {
			if !slices.Contains(types, k.Type()) {
				types = append(types, k.Type())
			}
		}
		slices.SortStableFunc(types, func(a, b string) int {
			return rank(order, a) - rank(order, b)
		})
	}
	var algos []string
	for _, t := range types {
		if !rejected[t] {
			algos = append(algos, algorithmsForType(t)...)
		}
	}
	return algos
}

func rank(order []string, t string) int {
	if i := slices.Index(order, t); i >= 0 {
		return i
	}
	return len(order)
}

func (h *hostKeys) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.accepted != nil { // a re-key must present the same key
		if bytes.Equal(h.accepted.Marshal(), key.Marshal()) {
			return nil
		}
		h.rejection = h.newError([]ssh.PublicKey{h.accepted}, key)
		return h.rejection
	}
	if h.known != nil {
		if err := h.known(hostname, remote, key); err != nil {
			h.rejection = h.newError(h.pinned, key)
			return h.rejection
		}
		h.accepted = key
		return nil
	}
	if h.want != "" && Fingerprint(key) != h.want {
		h.offered = append(h.offered, key)
		h.rejection = &HostKeyError{
			Host: h.host, Addr: h.addr, KnownHostsPath: h.path, FirstContact: true,
			Pinned: h.want, Offered: Fingerprint(key), OfferedType: key.Type(),
		}
		return h.rejection
	}
	if h.path != "" {
		if err := pin(h.path, h.addr, key); err != nil {
			return fmt.Errorf("ssh: pin host key of %s: %w", h.addr, err)
		}
	}
	h.accepted = key
	return nil
}

func (h *hostKeys) newError(pinned []ssh.PublicKey, offered ssh.PublicKey) *HostKeyError {
	return &HostKeyError{
		Host: h.host, Addr: h.addr, KnownHostsPath: h.path,
		Pinned: fingerprints(pinned), PinnedType: keyTypes(pinned),
		Offered: Fingerprint(offered), OfferedType: offered.Type(),
	}
}

func (h *hostKeys) takeRejection() *HostKeyError {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rejection
	h.rejection = nil
	return r
}

func (h *hostKeys) acceptedKey() ssh.PublicKey {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accepted
}

// fingerprintError reports every key the host offered on first contact.
func (h *hostKeys) fingerprintError() *HostKeyError {
	h.mu.Lock()
	defer h.mu.Unlock()
	return &HostKeyError{
		Host: h.host, Addr: h.addr, KnownHostsPath: h.path, FirstContact: true,
		Pinned: h.want, Offered: fingerprints(h.offered), OfferedType: keyTypes(h.offered),
	}
}

func (h *hostKeys) missingTypeError() *HostKeyError {
	return &HostKeyError{Host: h.host, Addr: h.addr, KnownHostsPath: h.path, Pinned: fingerprints(h.pinned), PinnedType: keyTypes(h.pinned)}
}

func fingerprints(keys []ssh.PublicKey) string {
	fps := make([]string, 0, len(keys))
	for _, k := range keys {
		fps = append(fps, Fingerprint(k))
	}
	return strings.Join(fps, ", ")
}

func keyTypes(keys []ssh.PublicKey) string {
	types := make([]string, 0, len(keys))
	for _, k := range keys {
		types = append(types, k.Type())
	}
	return strings.Join(types, ", ")
}

// pin appends key for addr to the known_hosts file, creating it 0600.
func pin(path, addr string, key ssh.PublicKey) error {
	prev, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if len(prev) > 0 && prev[len(prev)-1] != '\n' {
		line = "\n" + line
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
