package machine

import (
	"fmt"
	"net"
	"sort"

	"github.com/shoal-dev/shoal/internal/validate"
)

// ValidateSANs checks --tls-san values: host names or IP addresses.
func ValidateSANs(sans []string) error {
	for _, s := range sans {
		if validate.SAN(s) != nil {
			return fmt.Errorf("--tls-san %q: want a host name or an IP address", s)
		}
	}
	return nil
}

// splitSANs sorts extra certificate names into names and addresses.
func splitSANs(sans []string) (names []string, ips []net.IP) {
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	return names, ips
}
