package validate

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

var engineOptKeyRE = regexp.MustCompile(`^[a-z][a-z0-9-]*[a-z0-9]$`)

// EngineOptKey checks the key of an --engine-opt: a daemon.json key or a
// dockerd flag without its dashes (log-level, default-ulimit).
func EngineOptKey(s string) error {
	if !engineOptKeyRE.MatchString(s) {
		return fmt.Errorf("%q is not a daemon.json key or a dockerd flag (like log-level)", s)
	}
	return nil
}

var storageDriverRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// StorageDriver checks a Docker storage driver's name (overlay2, btrfs).
func StorageDriver(s string) error {
	if !storageDriverRE.MatchString(s) {
		return fmt.Errorf("%q is not a storage driver's name (overlay2, btrfs, zfs, vfs, ...)", s)
	}
	return nil
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// EnvName checks an environment variable's name: letters, digits and _,
// not starting with a digit.
func EnvName(s string) error {
	if !envNameRE.MatchString(s) {
		return fmt.Errorf("%q is not a variable name (letters, digits and _)", s)
	}
	return nil
}

// SAN checks an extra name of a server certificate: an IP address, or a
// DNS name, optionally a wildcard (*.example.com).
func SAN(s string) error {
	if net.ParseIP(s) != nil {
		return nil
	}
	if err := DNSName(strings.TrimPrefix(s, "*.")); err != nil {
		return fmt.Errorf("%q is neither an IP address nor a host name", s)
	}
	return nil
}

var firewallPortRE = regexp.MustCompile(`^([0-9]{1,5})/(tcp|udp)$`)

// FirewallPort reads a port a firewall opens, PORT/tcp or PORT/udp (it goes
// into commands), and returns its number and protocol.
func FirewallPort(s string) (port int, proto string, err error) {
	m := firewallPortRE.FindStringSubmatch(s)
	if m == nil {
		return 0, "", fmt.Errorf("%q: want PORT/tcp or PORT/udp (like 5000/tcp)", s)
	}
	n, _ := strconv.Atoi(m[1])
	if err := Port(n); err != nil {
		return n, m[2], fmt.Errorf("%q: %w", s, err)
	}
	return n, m[2], nil
}
