package sshrun

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
)

// SOCKS5 (RFC 1928), what ssh -D speaks: no authentication, CONNECT only.
const (
	socksVersion    = 5
	socksConnect    = 1
	socksOK         = 0
	socksNotAllowed = 2
	socksRefused    = 5
	socksBadCmd     = 7
	socksBadAddr    = 8
	socksNoAuth     = 0
	socksNoMethods  = 0xff
)

// socksError is a request refused with its reply code.
type socksError struct {
	code byte
	msg  string
}

func (e *socksError) Error() string { return e.msg }

// readSocksRequest reads a client's greeting and CONNECT request and
// returns the host:port it asks for. Whatever it refuses it says with
// the reply code to send (a *socksError), or a plain error when the
// greeting itself is not SOCKS5 (nothing is answered then but a close).
// The greeting's answer is written to w.
func readSocksRequest(r *bufio.Reader, w io.Writer) (string, error) {
	if err := socksGreeting(r, w); err != nil {
		return "", err
	}
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return "", err
	}
	if head[0] != socksVersion {
		return "", fmt.Errorf("not SOCKS5 (version %d)", head[0])
	}
	host, err := readSocksAddr(r, head[3])
	if err != nil {
		return "", err
	}
	var port [2]byte
	if _, err := io.ReadFull(r, port[:]); err != nil {
		return "", err
	}
	if head[1] != socksConnect {
		return "", &socksError{socksBadCmd, fmt.Sprintf("command %d: only CONNECT is supported", head[1])}
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:])))), nil
}

// socksGreeting reads the client's greeting and answers it: no
// authentication, the one method taken.
func socksGreeting(r *bufio.Reader, w io.Writer) error {
	var hello [2]byte
	if _, err := io.ReadFull(r, hello[:]); err != nil {
		return err
	}
	if hello[0] != socksVersion {
		return fmt.Errorf("not SOCKS5 (version %d)", hello[0])
	}
	methods := make([]byte, hello[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return err
	}
	method := byte(socksNoMethods)
	if slices.Contains(methods, socksNoAuth) {
		method = socksNoAuth
	}
	if _, err := w.Write([]byte{socksVersion, method}); err != nil {
		return err
	}
	if method != socksNoAuth {
		return errors.New("the client offers no method without authentication")
	}
	return nil
}

func readSocksAddr(r *bufio.Reader, atyp byte) (string, error) {
	switch atyp {
	case 1, 4:
		ip := make([]byte, map[byte]int{1: 4, 4: 16}[atyp])
		if _, err := io.ReadFull(r, ip); err != nil {
			return "", err
		}
		return net.IP(ip).String(), nil
	case 3:
		return readSocksName(r)
	}
	return "", &socksError{socksBadAddr, fmt.Sprintf("address type %d", atyp)}
}

// readSocksName reads a host name: its length, then its bytes.
func readSocksName(r *bufio.Reader) (string, error) {
	n, err := r.ReadByte()
	if err != nil {
		return "", err
	}
	name := make([]byte, n)
	if _, err := io.ReadFull(r, name); err != nil {
		return "", err
	}
	if n == 0 {
		return "", &socksError{socksBadAddr, "empty host name"}
	}
	if !validSocksName(string(name)) {
		return "", &socksError{socksBadAddr, fmt.Sprintf("host name %q", name)}
	}
	return string(name), nil
}

// validSocksName accepts a DNS name or an IP literal: anything else
// (brackets, zones, spaces, control bytes) could not be dialled as given
// and must not reach the remote side's resolver.
func validSocksName(name string) bool {
	if net.ParseIP(name) != nil {
		return true
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// socksReply is the answer to a request: code, and a zero bound address.
func socksReply(code byte) []byte { return []byte{socksVersion, code, 0, 1, 0, 0, 0, 0, 0, 0} }

// ForwardDynamic serves ln as a SOCKS5 proxy (ssh -D): each CONNECT is
// dialled from the host. It returns when ctx ends or ln is closed.
func (c *Client) ForwardDynamic(ctx context.Context, ln net.Listener, errOut io.Writer) {
	serveConns(ctx, ln, func(in net.Conn) {
		br := bufio.NewReader(in)
		target, err := readSocksRequest(br, in)
		var se *socksError
		if errors.As(err, &se) {
			in.Write(socksReply(se.code))
		}
		if err != nil {
			return
		}
		out, err := c.conn.DialContext(ctx, "tcp", target)
		if err != nil {
			code := byte(socksRefused)
			if Prohibited(err) {
				code = socksNotAllowed // sshd's forwarding is off
			}
			in.Write(socksReply(code))
			fmt.Fprintf(errOut, "forward -D %s: %v\n", target, err)
			return
		}
		defer out.Close()
		if _, err := in.Write(socksReply(socksOK)); err != nil {
			return
		}
		pipe(ctx, &bufferedConn{Conn: in, r: br}, out)
	})
}

// bufferedConn reads what the handshake's reader already holds first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite passes the half-close on when the connection can.
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
