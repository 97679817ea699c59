package virtualbox

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"
)

// waitSSHBanner returns once a server at addr greets with an SSH banner.
// A TCP connect is not enough: VirtualBox's NAT accepts connections on the
// forwarded port as soon as the VM runs, long before the guest's sshd is
// up, and then closes them.
func waitSSHBanner(ctx context.Context, addr string) error {
	delay := 250 * time.Millisecond
	var last error
	for {
		if err := ctx.Err(); err != nil {
			if last != nil {
				return fmt.Errorf("%w (last attempt: %v)", err, last)
			}
			return err
		}
		last = trySSHBanner(ctx, addr)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

func trySSHBanner(ctx context.Context, addr string) error {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := dctx.Deadline()
	conn.SetReadDeadline(deadline)
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if n >= 4 && bytes.HasPrefix(buf[:n], []byte("SSH-")) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("no SSH banner from %s: %w", addr, err)
	}
	return fmt.Errorf("no SSH banner from %s: got %q", addr, buf[:n])
}
