package sshrun

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/sftp"
)

// machine ssh -t / -tt: a pty is asked for (the test server then merges
// stderr into stdout, as a terminal does); without, the streams stay apart.
func TestInteractivePTY(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	for _, o := range []struct {
		opts   SessionOptions
		merged bool
	}{{SessionOptions{}, false}, {SessionOptions{Terminal: true}, false}, {SessionOptions{PTY: true}, true}} {
		var out, errb bytes.Buffer
		code, err := c.Interactive(ctx10(t), "echo out; echo err >&2; exit 3", o.opts, strings.NewReader(""), &out, &errb)
		if err != nil || code != 3 {
			t.Fatalf("%+v: code %d, %v", o.opts, code, err)
		}
		if merged := strings.Contains(out.String(), "err") && errb.Len() == 0; merged != o.merged {
			t.Errorf("%+v: stdout %q stderr %q, want pty %v", o.opts, out.String(), errb.String(), o.merged)
		}
	}
}

// machine ssh -L: a connection here reaches the target dialled from the host.
func TestForwardLocal(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			conn, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(conn, conn); conn.Close() }()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.ForwardLocal(ctx, ln, echo.Addr().String(), io.Discard); close(done) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ping"))
	conn.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(conn)
	conn.Close()
	if string(got) != "ping" {
		t.Errorf("through -L: %q", got)
	}
	cancel()
	<-done // the forward ends with its context
}

// machine ssh -s sftp (sshfs's transport): the subsystem's stream is the
// caller's stdin and stdout.
func TestInteractiveSubsystem(t *testing.T) {
	srv, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	os.WriteFile(filepath.Join(srv.home, "f"), []byte("over sftp"), 0o644)
	toHost, fromClient := io.Pipe()
	fromHost, toClient := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := c.Interactive(ctx10(t), "sftp", SessionOptions{Subsystem: true}, toHost, toClient, io.Discard)
		toClient.Close()
		done <- err
	}()
	sc, err := sftp.NewClientPipe(fromHost, fromClient)
	if err != nil {
		t.Fatal(err)
	}
	f, err := sc.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(f)
	f.Close()
	if string(data) != "over sftp" {
		t.Errorf("read %q", data)
	}
	sc.Close()
	fromClient.Close()
	if err := <-done; err != nil {
		t.Errorf("session: %v", err)
	}
}
