package machine

import (
	"context"
	"fmt"
	"net"
	"time"
)

// lookupFunc is net.Resolver.LookupIPAddr, replaceable in tests.
type lookupFunc func(ctx context.Context, host string) ([]net.IPAddr, error)

// resolveTimeout bounds a name's lookup.
const resolveTimeout = 15 * time.Second

// resolveAddress returns addr if it is an IP address, else the address the
// name resolves to (IPv4 preferred, as the swarm and /etc/hosts of the other
// nodes are most likely IPv4). A name never comes back.
func resolveAddress(ctx context.Context, lookup lookupFunc, addr string) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("the driver reported no address")
	}
	if ip := net.ParseIP(addr); ip != nil {
		return ip.String(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	ips, err := lookup(ctx, addr)
	if err != nil {
		return "", fmt.Errorf("%q does not resolve to an address: %w", addr, err)
	}
	return pickAddress(addr, ips)
}

// pickAddress chooses among a name's addresses: the first IPv4, else the
// first IPv6 (zone-less: a link-local address is no use to other hosts).
func pickAddress(name string, ips []net.IPAddr) (string, error) {
	for _, ip := range ips {
		if v4 := ip.IP.To4(); v4 != nil {
			return v4.String(), nil
		}
	}
	for _, ip := range ips {
		if ip.Zone == "" && ip.IP != nil {
			return ip.IP.String(), nil
		}
	}
	return "", fmt.Errorf("%q resolves to no usable address", name)
}
