package sshrun

import (
	"bytes"
	"context"
	"errors"
	"net"

	"golang.org/x/crypto/ssh"
)

// stillVerified tells whether a kept connection may serve another run:
// it answers, and the machine still has the host key the connection was
// verified with. The key files are read on the connection itself (a
// session and a cat, a third of a handshake's cost to the host); only
// when none of them is the verified key (replaced, or kept elsewhere by
// sshd_config) does a handshake ask sshd itself.
func stillVerified(ctx context.Context, kc *keptConn) bool {
	ctx, cancel := context.WithTimeout(ctx, keeperCheck)
	defer cancel()
	// No answer in time (even to the session's opening): gone.
	stop := context.AfterFunc(ctx, func() { kc.c.Close() })
	defer stop()
	res, err := kc.c.Run(ctx, hostKeysCmd)
	if re := (*RunError)(nil); err != nil && !errors.As(err, &re) {
		return false // the command did not run: the connection does not answer
	}
	if err == nil && hasKey(res.Stdout, kc.c.hostKey) {
		return true
	}
	return sameHostKey(ctx, kc)
}

// hasKey tells whether one of the authorized_keys-format lines in out is
// key.
func hasKey(out []byte, key ssh.PublicKey) bool {
	want := key.Marshal()
	for len(out) > 0 {
		k, _, _, rest, err := ssh.ParseAuthorizedKey(out)
		if err != nil {
			return false
		}
		if bytes.Equal(k.Marshal(), want) {
			return true
		}
		out = rest
	}
	return false
}

// sameHostKey tells whether the machine's sshd still shows the host key
// the kept connection was verified with: a fresh handshake that stops
// before logging in (a tenth of a login's cost to the host), so that a
// replaced host key is refused as a new connection would refuse it.
func sameHostKey(ctx context.Context, kc *keptConn) bool {
	ctx, cancel := context.WithTimeout(ctx, keeperCheck)
	defer cancel()
	cfg := kc.req.config()
	nc, err := dialTCP(ctx, cfg, cfg.Address())
	if err != nil {
		return false
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	want := kc.c.hostKey.Marshal()
	same := false
	_, _, _, err = ssh.NewClientConn(nc, cfg.Address(), &ssh.ClientConfig{
		User:              cfg.User,
		HostKeyAlgorithms: algorithmsForType(kc.c.hostKey.Type()),
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			same = bytes.Equal(key.Marshal(), want)
			return errKeyChecked
		},
		ClientVersion: "SSH-2.0-shoal",
	})
	return same && errors.Is(err, errKeyChecked)
}
