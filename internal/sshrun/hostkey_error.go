package sshrun

import (
	"cmp"
	"fmt"
	"strings"

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
	// PinnedHosts are the host columns of the pinned lines: the machine's
	// key may have been pinned at another address than Addr.
	PinnedHosts []string
	// Expected is Config.HostKeyFingerprint when it is not a pinned key:
	// the host is told to have another key than the one pinned.
	Expected string
	// NewHost: Addr is not an address the machine's key was pinned at, so
	// the host there is another host the machine now names (its address
	// changed), not the pinned host with a changed key. It is taken only
	// by an explicit step (Config.AcceptNewHost): Remedy, when the caller
	// knows its command, else the generic one.
	NewHost bool
	Remedy  string
	// AcceptRefused: Config.AcceptNewHost was given, but Addr is where the
	// key was pinned, so it does not apply.
	AcceptRefused bool
}

// newHostRemedy is the explicit step that takes the host at Addr.
func (e *HostKeyError) newHostRemedy() string {
	if e.Remedy != "" {
		return e.Remedy
	}
	return "connect again accepting the new host for this machine (cluster up/restore: --accept-new-host-key MACHINE)"
}

// forgetHint says how to remove the pinned key(s), at every address they
// were pinned at.
func (e *HostKeyError) forgetHint() string {
	hosts := e.PinnedHosts
	if len(hosts) == 0 {
		hosts = []string{knownhosts.Normalize(e.Addr)}
	}
	cmds := make([]string, 0, len(hosts))
	for _, h := range hosts {
		cmds = append(cmds, "ssh-keygen -R "+ShellQuote(h)+" -f "+ShellQuote(e.KnownHostsPath))
	}
	return strings.Join(cmds, "\n  ")
}

func (e *HostKeyError) Error() string {
	var b strings.Builder
	switch {
	case e.NewHost:
		e.newHostError(&b)
	case e.Expected != "":
		fmt.Fprintf(&b, "ssh: the host key fingerprint given for %s is not the key pinned for this machine\n", e.Addr)
		fmt.Fprintf(&b, "  pinned in %s: %s (%s)\n  given now: %s\n", e.KnownHostsPath, e.Pinned, e.PinnedType, e.Expected)
		fmt.Fprintf(&b, "Nothing was changed. If the machine was really rebuilt with a new key, remove its old key with\n  %s\nand connect again; the new key is then pinned.", e.forgetHint())
	case e.FirstContact:
		fmt.Fprintf(&b, "ssh: host key of %s does not match the expected fingerprint\n", e.Addr)
		fmt.Fprintf(&b, "  expected: %s\n  offered:  %s (%s)\n", e.Pinned, e.Offered, e.OfferedType)
		b.WriteString("Nothing was pinned. Check the fingerprint on the machine's console " +
			"(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and correct it.")
	case e.Offered == "":
		fmt.Fprintf(&b, "ssh: host %s no longer offers a host key of the pinned type\n", e.Addr)
		fmt.Fprintf(&b, "  pinned in %s: %s (%s)\n", e.KnownHostsPath, e.Pinned, e.PinnedType)
		fmt.Fprintf(&b, "If the machine was really rebuilt, remove its old entry with\n  %s\nand connect again; the new key is then pinned.", e.forgetHint())
	default:
		fmt.Fprintf(&b, "ssh: host key of %s has CHANGED since it was pinned\n", e.Addr)
		fmt.Fprintf(&b, "  pinned in %s: %s (%s)\n  offered now: %s (%s)\n", e.KnownHostsPath, e.Pinned, e.PinnedType, e.Offered, e.OfferedType)
		fmt.Fprintf(&b, "Someone may be intercepting the connection. If the machine was really rebuilt, remove its old key with\n  %s\nand connect again; the new key is then pinned.", e.forgetHint())
		if e.AcceptRefused {
			fmt.Fprintf(&b, "\n(Accepting a new host does not apply: %s is the address the key was pinned at.)", e.Addr)
		}
	}
	return b.String()
}

// newHostError says that the host connected to is another host than the
// one pinned, at another address, and how to take it.
func (e *HostKeyError) newHostError(b *strings.Builder) {
	at := strings.Join(e.PinnedHosts, ", ")
	at = cmp.Or(at, "another address")
	fmt.Fprintf(b, "ssh: the host at %s is not the host this machine's key was pinned for (at %s)\n", e.Addr, at)
	fmt.Fprintf(b, "  pinned in %s: %s (%s)\n", e.KnownHostsPath, e.Pinned, e.PinnedType)
	switch {
	case e.Expected != "":
		fmt.Fprintf(b, "  given now: %s\n", e.Expected)
	case e.Offered != "":
		fmt.Fprintf(b, "  %s offers: %s (%s)\n", e.Addr, e.Offered, e.OfferedType)
	default:
		fmt.Fprintf(b, "  %s offers no key of the pinned type\n", e.Addr)
	}
	fmt.Fprintf(b, "The machine's address changed. Nothing was changed and the old key stays pinned. "+
		"If %s is the new host you gave this machine (a rebuilt host, a restore onto new hosts), take it with\n  %s\n"+
		"and its key is pinned instead of the old one; check the key on the host's console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub). "+
		"If it is not, do not: another host answers where the machine is now.", e.Addr, e.newHostRemedy())
}
