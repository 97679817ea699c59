package sshrun

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

func TestReadSocksRequest(t *testing.T) {
	cases := []struct {
		name   string
		in     []byte
		target string
		code   int // -1: a plain error, no reply
		greet  []byte
	}{
		{"ipv4", []byte{5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 7, 0, 80}, "10.0.0.7:80", 0, []byte{5, 0}},
		{"name", append([]byte{5, 2, 2, 0, 5, 1, 0, 3, 9}, append([]byte("localhost"), 0x1f, 0x90)...), "localhost:8080", 0, []byte{5, 0}},
		{"ipv6", append([]byte{5, 1, 0, 5, 1, 0, 4}, append(net.ParseIP("fd00::1"), 0, 22)...), "[fd00::1]:22", 0, []byte{5, 0}},
		{"bind", []byte{5, 1, 0, 5, 2, 0, 1, 10, 0, 0, 7, 0, 80}, "", socksBadCmd, []byte{5, 0}},
		{"atyp", []byte{5, 1, 0, 5, 1, 0, 9}, "", socksBadAddr, []byte{5, 0}},
		{"auth only", []byte{5, 1, 2}, "", -1, []byte{5, 0xff}},
		{"socks4", []byte{4, 1, 0, 80}, "", -1, nil},
		{"short", []byte{5, 1, 0, 5, 1, 0, 1, 10}, "", -1, []byte{5, 0}},
		{"empty name", []byte{5, 1, 0, 5, 1, 0, 3, 0, 0, 80}, "", socksBadAddr, []byte{5, 0}},
		{"bracket in name", append([]byte{5, 1, 0, 5, 1, 0, 3, 9}, append([]byte("0000[0000"), 0, 80)...), "", socksBadAddr, []byte{5, 0}},
		{"ipv6 literal as name", append([]byte{5, 1, 0, 5, 1, 0, 3, 3}, append([]byte("::1"), 0, 80)...), "[::1]:80", 0, []byte{5, 0}},
	}
	for _, c := range cases {
		var w bytes.Buffer
		target, err := readSocksRequest(bufio.NewReader(bytes.NewReader(c.in)), &w)
		var se *socksError
		switch {
		case c.code == 0 && (err != nil || target != c.target):
			t.Errorf("%s: %q %v, want %q", c.name, target, err, c.target)
		case c.code > 0 && (!errors.As(err, &se) || int(se.code) != c.code):
			t.Errorf("%s: %v, want reply code %d", c.name, err, c.code)
		case c.code < 0 && (err == nil || errors.As(err, &se)):
			t.Errorf("%s: %v, want a plain error", c.name, err)
		}
		if !bytes.Equal(w.Bytes(), c.greet) {
			t.Errorf("%s: greeting answer %v, want %v", c.name, w.Bytes(), c.greet)
		}
	}
}

func FuzzReadSocksRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 7, 0, 80})
	f.Add(append([]byte{5, 1, 0, 5, 1, 0, 3, 9}, append([]byte("localhost"), 0, 80)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		target, err := readSocksRequest(bufio.NewReader(bytes.NewReader(in)), io.Discard)
		if err == nil {
			if _, _, err := net.SplitHostPort(target); err != nil {
				t.Fatalf("%v: target %q: %v", in, target, err)
			}
		}
	})
}

// machine ssh -D: a SOCKS5 CONNECT here reaches the target dialled from
// the host.
func TestForwardDynamic(t *testing.T) {
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
	go func() { c.ForwardDynamic(ctx, ln, io.Discard); close(done) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	port := echo.Addr().(*net.TCPAddr).Port
	conn.Write([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, byte(port >> 8), byte(port)})
	reply := make([]byte, 12)
	if _, err := io.ReadFull(conn, reply); err != nil || reply[0] != 5 || reply[1] != 0 || reply[2] != 5 || reply[3] != 0 {
		t.Fatalf("socks answers %v, %v", reply, err)
	}
	conn.Write([]byte("ping"))
	conn.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(conn)
	conn.Close()
	if !strings.HasPrefix(string(got), "ping") {
		t.Errorf("through -D: %q", got)
	}
	cancel()
	<-done
}
