package driverutil

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers/drivertest"
)

func server(t *testing.T, answer func(net.Conn)) string {
	return drivertest.Serve(t, answer).String()
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestWaitSSH(t *testing.T) {
	sshd := drivertest.SSHGreeter(t, nil).String()
	preface := server(t, func(c net.Conn) { c.Write([]byte("welcome\r\nSSH-2.0-x\r\n")) })
	silent := server(t, func(net.Conn) {})
	chatty := server(t, func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n")) })
	closed := closedAddr(t)
	for _, tc := range []struct {
		name, addr string
		ok         bool
		last       string
	}{
		{"sshd", sshd, true, ""},
		{"lines before the identification", preface, true, ""},
		{"accepts and closes (a NAT port forward)", silent, false, "closed"},
		{"not SSH", chatty, false, "no SSH greeting"},
		{"nothing listens", closed, false, "refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := WaitSSH(context.Background(), tc.addr, 600*time.Millisecond)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var we *WaitError
			if !errors.As(err, &we) {
				t.Fatalf("err = %v, want a *WaitError", err)
			}
			if !we.TimedOut || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("TimedOut = %v, err %v: want the bound to have passed", we.TimedOut, err)
			}
			if took := time.Since(start); took < 500*time.Millisecond || took > 5*time.Second {
				t.Errorf("gave up after %s, want about the 600ms bound", took)
			}
			for _, want := range []string{tc.addr, "does not answer after 600ms", tc.last} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestWaitSSHContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := WaitSSH(ctx, closedAddr(t), time.Minute)
	var we *WaitError
	if !errors.As(err, &we) || we.TimedOut || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if err := WaitSSH(context.Background(), closedAddr(t), 0); err == nil {
		t.Fatal("a wait without a bound was accepted")
	}
}

// TestWaitSSHLateServer: the server comes up while WaitSSH waits.
func TestWaitSSHLateServer(t *testing.T) {
	addr := closedAddr(t)
	go func() {
		time.Sleep(400 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		t.Cleanup(func() { l.Close() })
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-late\r\n"))
			c.Close()
		}
	}()
	if err := WaitSSH(context.Background(), addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}
