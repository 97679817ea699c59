package sshrun

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

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
//
// The known_hosts file is one machine's (Config.KnownHostsPath): every key in
// it is pinned for that machine whatever address it was pinned at, so that
// reaching the same machine by another name or address (localhost for
// 127.0.0.1, a new DHCP lease) still checks the key, rather than trusting
// whatever answers there on "first contact".
type hostKeys struct {
	host, addr, path string
	noPin            bool
	acceptNew        bool                // Config.AcceptNewHost
	addrPinned       bool                // a key is pinned at addr
	want             string              // normalized expected fingerprint, "" if none
	known            ssh.HostKeyCallback // per-address view of the file; nil when nothing is pinned
	pinned           []ssh.PublicKey
	pinnedHosts      []string // host columns of the pinned lines
	revoked          []ssh.PublicKey

	mu        sync.Mutex
	offered   []ssh.PublicKey // keys refused against the fingerprint
	rejection *HostKeyError   // last refusal, taken by dialOnce
	accepted  ssh.PublicKey
}

func newHostKeys(cfg Config, addr string) (*hostKeys, error) {
	h := &hostKeys{host: cfg.Host, addr: addr, path: cfg.KnownHostsPath, noPin: cfg.NoPin, acceptNew: cfg.AcceptNewHost}
	if cfg.HostKeyFingerprint != "" {
		h.want, _ = normalizeFingerprint(cfg.HostKeyFingerprint) // checked in Dial
	}
	if err := h.readFile(); err != nil {
		return nil, err
	}
	if len(h.pinned) == 0 {
		return h, nil
	}
	cb, err := knownhosts.New(h.path)
	if err != nil {
		return nil, fmt.Errorf("ssh: known hosts file: %w", err)
	}
	h.known = cb
	// A fingerprint given for a host at a new address is checked against
	// what that host offers once the new host is accepted.
	if h.want != "" && !h.wantPinned() && !h.takesNew() {
		e := h.newError(h.pinned, nil)
		e.Expected, e.NewHost = h.want, h.moved()
		return nil, e
	}
	return h, nil
}

// readFile reads the known_hosts file's pins, if there is one.
func (h *hostKeys) readFile() error {
	if h.path == "" {
		return nil
	}
	data, err := os.ReadFile(h.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ssh: known hosts file: %w", err)
	}
	h.revoked, err = h.readPins(data)
	return err
}

func (h *hostKeys) wantPinned() bool {
	return slices.ContainsFunc(h.pinned, func(k ssh.PublicKey) bool { return Fingerprint(k) == h.want })
}

// takesNew: the host at addr may be taken as the machine's new host.
func (h *hostKeys) takesNew() bool { return h.acceptNew && !h.addrPinned && len(h.pinned) > 0 }

// pin records a key of the file and the hosts it is pinned for.
func (h *hostKeys) pin(hosts []string, key ssh.PublicKey) {
	if !containsKey(h.pinned, key) {
		h.pinned = append(h.pinned, key)
	}
	if hostsMatch(hosts, h.addr) {
		h.addrPinned = true
	}
	for _, host := range hosts {
		// A hashed host cannot be named in the hint; -R of Addr is.
		if !strings.HasPrefix(host, "|") && !slices.Contains(h.pinnedHosts, host) {
			h.pinnedHosts = append(h.pinnedHosts, host)
		}
	}
}

// readPins collects every key of the file, whatever its host column.
func (h *hostKeys) readPins(data []byte) (revoked []ssh.PublicKey, err error) {
	rest := data
	for len(bytes.TrimSpace(rest)) > 0 {
		var marker string
		var hosts []string
		var key ssh.PublicKey
		marker, hosts, key, _, rest, err = ssh.ParseKnownHosts(rest)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("ssh: known hosts file %s: %w", h.path, err)
		}
		switch marker {
		case "revoked":
			revoked = append(revoked, key)
			continue
		case "cert-authority":
			continue // shoal never writes one: a machine's pin is its own key
		}
		h.pin(hosts, key)
	}
	return revoked, nil
}

// hostsMatch tells whether addr is one of a known_hosts line's host
// columns, plain or hashed (|1|salt|hash).
func hostsMatch(hosts []string, addr string) bool {
	norm := knownhosts.Normalize(addr)
	for _, host := range hosts {
		if host == norm {
			return true
		}
		salt, hash, ok := strings.Cut(strings.TrimPrefix(host, "|1|"), "|")
		if !ok || !strings.HasPrefix(host, "|1|") {
			continue
		}
		s, err1 := base64.StdEncoding.DecodeString(salt)
		want, err2 := base64.StdEncoding.DecodeString(hash)
		if err1 != nil || err2 != nil {
			continue
		}
		mac := hmac.New(sha1.New, s)
		mac.Write([]byte(norm))
		if hmac.Equal(mac.Sum(nil), want) {
			return true
		}
	}
	return false
}

func containsKey(keys []ssh.PublicKey, k ssh.PublicKey) bool {
	return slices.ContainsFunc(keys, func(p ssh.PublicKey) bool { return bytes.Equal(p.Marshal(), k.Marshal()) })
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
	// A new host taken at a new address may have keys of other types.
	if len(h.pinned) > 0 && !h.takesNew() {
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

// keyVerdict is what is done with the key a host offers.
type keyVerdict int

const (
	keyRefuse      keyVerdict = iota // revoked, or changed where it was pinned
	keyAccept                        // one of the machine's pinned keys
	keyPinFirst                      // nothing pinned yet: pinned now
	keyWrongFP                       // not the fingerprint given: another type may be
	keyNewHost                       // another key at a new address: refused until taken explicitly
	keyTakeNewHost                   // the new host taken: its key replaces the machine's pins
)

// keyFacts are what decideKey looks at.
type keyFacts struct {
	Pinned     bool   // the machine has keys pinned
	AddrPinned bool   // one of them at the address connected to
	KeyPinned  bool   // the offered key is one of them
	Revoked    bool   // the offered key is marked @revoked
	Want       string // the fingerprint given ("" none)
	WantPinned bool   // Want is one of the pinned keys
	Offered    string // the offered key's fingerprint
	AcceptNew  bool   // the user takes the host at a new address as the machine's
}

// decideKey: a changed key at an address where the machine's key was
// pinned is refused (the pinned host, someone in between); another key at
// an address the machine was never reached at is another host, which the
// user may have given the machine (a restore onto new hosts): taken only
// when asked, and then only with the fingerprint given, if one is.
func decideKey(f keyFacts) keyVerdict {
	wrongFP := f.Want != "" && f.Offered != f.Want
	switch {
	case f.Revoked:
		return keyRefuse
	case f.KeyPinned && (f.Want == "" || f.WantPinned):
		return keyAccept
	case !f.Pinned && wrongFP:
		return keyWrongFP
	case !f.Pinned:
		return keyPinFirst
	case f.AddrPinned:
		return keyRefuse
	case !f.AcceptNew:
		return keyNewHost
	case wrongFP:
		return keyWrongFP
	}
	return keyTakeNewHost
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
	v := decideKey(keyFacts{
		Pinned: len(h.pinned) > 0, AddrPinned: h.addrPinned, KeyPinned: containsKey(h.pinned, key),
		Revoked: containsKey(h.revoked, key), Want: h.want, WantPinned: h.want != "" && h.wantPinned(),
		Offered: Fingerprint(key), AcceptNew: h.acceptNew,
	})
	switch v {
	case keyRefuse, keyNewHost, keyWrongFP:
		h.rejection = h.reject(v, key)
		return h.rejection
	}
	if err := h.pinAccepted(v, hostname, remote, key); err != nil {
		return err
	}
	h.accepted = key
	return nil
}

// reject is the error for a key refused by verdict v.
func (h *hostKeys) reject(v keyVerdict, key ssh.PublicKey) *HostKeyError {
	if v == keyWrongFP {
		h.offered = append(h.offered, key)
		return &HostKeyError{
			Host: h.host, Addr: h.addr, KnownHostsPath: h.path, FirstContact: true,
			Pinned: h.want, Offered: Fingerprint(key), OfferedType: key.Type(),
		}
	}
	e := h.newError(h.pinned, key)
	e.NewHost = v == keyNewHost
	e.AcceptRefused = h.acceptNew && v == keyRefuse
	return e
}

// pinAccepted records an accepted key as verdict v says: the machine's key
// at an address it was not pinned at yet is noted there too (the same key,
// appended), so that OpenSSH given this file knows it as well; a first key
// is pinned, a new host's replaces the old.
func (h *hostKeys) pinAccepted(v keyVerdict, hostname string, remote net.Addr, key ssh.PublicKey) error {
	var err error
	switch v {
	case keyAccept:
		if !h.noPin && h.known(hostname, remote, key) != nil {
			err = pin(h.path, h.addr, key)
		}
	case keyPinFirst, keyTakeNewHost:
		if h.path != "" && !h.noPin {
			write := pin
			if v == keyTakeNewHost {
				write = repin
			}
			err = write(h.path, h.addr, key)
		}
	}
	if err != nil {
		return fmt.Errorf("ssh: pin host key of %s: %w", h.addr, err)
	}
	return nil
}

func (h *hostKeys) newError(pinned []ssh.PublicKey, offered ssh.PublicKey) *HostKeyError {
	e := &HostKeyError{
		Host: h.host, Addr: h.addr, KnownHostsPath: h.path,
		Pinned: fingerprints(pinned), PinnedType: keyTypes(pinned), PinnedHosts: h.pinnedHosts,
	}
	if offered != nil {
		e.Offered, e.OfferedType = Fingerprint(offered), offered.Type()
	}
	return e
}

// moved: the machine has keys pinned, none at the address connected to.
func (h *hostKeys) moved() bool { return len(h.pinned) > 0 && !h.addrPinned }

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
	e := h.newError(h.pinned, nil)
	e.NewHost = h.moved()
	return e
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

// repin makes key at addr the file's only pin (the machine's new host):
// written whole to a new 0600 file, then renamed over the old one.
func repin(path, addr string, key ssh.PublicKey) error {
	tmp := path + ".new"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
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
