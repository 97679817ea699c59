package sshrun

import (
	"net"
	"strconv"
)

// Endpoint is where and as whom a host answers SSH. A driver reports it, the
// store keeps it as last known, and Dial reaches it: one type, so no layer
// copies it field by field.
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
	return net.JoinHostPort(e.Host, strconv.Itoa(e.port()))
}

func (e Endpoint) port() int {
	if e.Port == 0 {
		return 22
	}
	return e.Port
}
