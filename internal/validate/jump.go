package validate

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Hop is one jump host of a ProxyJump chain.
type Hop struct {
	User string // "" means the caller's default
	Host string
	Port int // 0 means 22
}

// String is the hop as OpenSSH's -J writes it.
func (h Hop) String() string {
	s := h.Host
	if strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	if h.User != "" {
		s = h.User + "@" + s
	}
	if h.Port != 0 && h.Port != 22 {
		s += ":" + strconv.Itoa(h.Port)
	}
	return s
}

// ParseProxyJump reads OpenSSH's -J syntax: [user@]host[:port] hops,
// comma separated, first hop first; an IPv6 address goes in brackets.
// "" and "none" give no hops.
func ParseProxyJump(s string) ([]Hop, error) {
	if s == "" || strings.EqualFold(s, "none") {
		return nil, nil
	}
	if len(s) > 1024 {
		return nil, errors.New("proxy jump is longer than 1024 characters")
	}
	var hops []Hop
	for _, part := range strings.Split(s, ",") {
		h, err := parseHop(part)
		if err != nil {
			return nil, fmt.Errorf("proxy jump %q: %w", s, err)
		}
		hops = append(hops, h)
	}
	if len(hops) > 8 {
		return nil, fmt.Errorf("proxy jump %q: more than 8 hops", s)
	}
	return hops, nil
}

func parseHop(s string) (Hop, error) {
	var h Hop
	if s == "" {
		return h, errors.New("empty hop")
	}
	rest := s
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		h.User, rest = rest[:i], rest[i+1:]
		if err := UserName(h.User); err != nil {
			return h, err
		}
	}
	host, port, err := splitHop(s, rest)
	if err != nil {
		return h, err
	}
	if err := Host(host); err != nil {
		return h, err
	}
	h.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || Port(n) != nil {
			return h, fmt.Errorf("%q: %q is not a port", s, port)
		}
		h.Port = n
	}
	return h, nil
}

// splitHop splits the hop s's host[:port] (rest, after any user) into
// host and port; an IPv6 address is in brackets.
func splitHop(s, rest string) (host, port string, err error) {
	if !strings.HasPrefix(rest, "[") {
		if strings.Count(rest, ":") == 1 {
			host, port, _ = strings.Cut(rest, ":")
			return host, port, nil
		}
		return rest, "", nil
	}
	end := strings.Index(rest, "]")
	if end < 0 {
		return "", "", fmt.Errorf("%q: missing ]", s)
	}
	host = rest[1:end]
	if tail := rest[end+1:]; tail != "" {
		if !strings.HasPrefix(tail, ":") {
			return "", "", fmt.Errorf("%q: want [address]:port", s)
		}
		port = tail[1:]
	}
	if net.ParseIP(host) == nil {
		return "", "", fmt.Errorf("%q: only an IPv6 address goes in brackets", s)
	}
	return host, port, nil
}
