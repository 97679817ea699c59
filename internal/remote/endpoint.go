// Package remote names where and as whom a host answers SSH. It is a leaf:
// a driver reports an Endpoint, the store keeps it as last known and sshrun
// dials it, so none of them copies it field by field and the store (and the
// cluster file above it) need not import the SSH client.
package remote

import (
	"net"
	"strconv"
)

// Endpoint is where and as whom a host answers SSH.
type Endpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"` // 0 means 22
	User string `json:"user"`
	// KeyPath is a private key file (OpenSSH/PEM); may be empty when UseAgent.
	KeyPath string `json:"keyPath,omitempty"`
	// UseAgent also offers the keys of the agent at $SSH_AUTH_SOCK.
	UseAgent bool `json:"useAgent,omitempty"`
	// HostKeyFingerprint ("SHA256:...") is what the host key must match
	// before anything is pinned; empty means trust on first use, then pin.
	HostKeyFingerprint string `json:"hostKeyFingerprint,omitempty"`
}

// Address is host:port for dialing (IPv6 in brackets, port 22 by default).
func (e Endpoint) Address() string {
	return net.JoinHostPort(e.Host, strconv.Itoa(e.DialPort()))
}

// DialPort is the port to dial: Port, or 22 when it is not set.
func (e Endpoint) DialPort() int {
	if e.Port == 0 {
		return 22
	}
	return e.Port
}
