//go:build !linux

package sshrun

import "net"

// samePeer: without SO_PEERCRED the socket's private directory is the
// only guard.
func samePeer(net.Conn) bool { return true }
