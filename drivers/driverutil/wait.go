package driverutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Backoff between attempts: quick at first (a container's sshd is up in a
// moment), then no busier than one attempt every maxDelay (a VM boots in
// minutes).
const (
	firstDelay = 250 * time.Millisecond
	maxDelay   = 2 * time.Second
	// attemptTimeout bounds one connect and the wait for the greeting.
	attemptTimeout = 5 * time.Second
)

// WaitError says why WaitSSH gave up.
type WaitError struct {
	Addr string
	// Bound is the most WaitSSH waited; TimedOut says it passed (rather
	// than the caller's context ending first).
	Bound    time.Duration
	TimedOut bool
	// Last is the last attempt's failure.
	Last error
	// Err is context.DeadlineExceeded when the bound passed, else the
	// caller's context's error.
	Err error
}

func (e *WaitError) Error() string {
	msg := fmt.Sprintf("SSH at %s does not answer: %v", e.Addr, e.Err)
	if e.TimedOut {
		msg = fmt.Sprintf("SSH at %s does not answer after %s", e.Addr, e.Bound)
	}
	if e.Last != nil {
		msg += fmt.Sprintf(" (last attempt: %v)", e.Last)
	}
	return msg
}

func (e *WaitError) Unwrap() error { return e.Err }

// WaitSSH returns once a server at addr greets with an SSH identification
// line. A port that accepts connections is not enough: VirtualBox's NAT
// and Docker's proxies accept on a forwarded port long before the guest's
// sshd is up. It tries again with a growing delay until ctx ends or bound
// (> 0) has passed; the error is then a *WaitError.
func WaitSSH(ctx context.Context, addr string, bound time.Duration) error {
	if bound <= 0 {
		return fmt.Errorf("waiting for SSH on %s: no bound given", addr)
	}
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	delay := firstDelay
	var last error
	for {
		if last = greeting(wctx, addr); last == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-wctx.Done():
			t.Stop()
			e := &WaitError{Addr: addr, Bound: bound, Last: last, Err: ctx.Err()}
			if e.Err == nil {
				e.TimedOut, e.Err = true, context.DeadlineExceeded
			}
			return e
		case <-t.C:
		}
		delay = min(2*delay, maxDelay)
	}
}

// greeting dials addr once and reads the server's identification line.
func greeting(ctx context.Context, addr string) error {
	dctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := dctx.Deadline(); ok {
		_ = conn.SetReadDeadline(deadline)
	}
	// RFC 4253 4.2: the server may send other lines before the one that
	// starts with "SSH-".
	r := bufio.NewReaderSize(conn, 256)
	for range 8 {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, "SSH-") {
			return nil
		}
		if err != nil {
			if line == "" && errors.Is(err, io.EOF) {
				return fmt.Errorf("no SSH greeting from %s: the connection was closed", addr)
			}
			return fmt.Errorf("no SSH greeting from %s: %w", addr, err)
		}
	}
	return fmt.Errorf("no SSH greeting from %s: not an SSH server", addr)
}
