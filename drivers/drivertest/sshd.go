package drivertest

import (
	"net"
	"testing"
)

// Serve listens on a local port and hands each connection to answer, then
// closes it. It stops with the test.
func Serve(t testing.TB, answer func(net.Conn)) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			answer(c)
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr)
}

// SSHGreeter answers each connection as sshd does first, with its
// identification line. While silent (nil: never) says so, it closes
// without a word, as a port forward does whose guest is not up yet.
func SSHGreeter(t testing.TB, silent func() bool) *net.TCPAddr {
	t.Helper()
	return Serve(t, func(c net.Conn) {
		if silent == nil || !silent() {
			_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.2p1 shoal-test\r\n"))
		}
	})
}
