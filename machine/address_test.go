package machine

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

func TestResolveAddress(t *testing.T) {
	table := map[string][]net.IPAddr{
		"localhost": {{IP: net.ParseIP("::1")}, {IP: net.ParseIP("127.0.0.1")}},
		"v6only":    {{IP: net.ParseIP("fe80::1"), Zone: "eth0"}, {IP: net.ParseIP("2001:db8::5")}},
		"linklocal": {{IP: net.ParseIP("fe80::1"), Zone: "eth0"}},
		"node.lan":  {{IP: net.ParseIP("192.0.2.7")}},
	}
	lookup := func(_ context.Context, host string) ([]net.IPAddr, error) {
		if ips, ok := table[host]; ok {
			return ips, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	for _, tc := range []struct{ in, want, err string }{
		{"127.0.0.1", "127.0.0.1", ""},
		{"192.0.2.1", "192.0.2.1", ""},
		{"2001:db8::1", "2001:db8::1", ""},
		{"localhost", "127.0.0.1", ""},
		{"node.lan", "192.0.2.7", ""},
		{"v6only", "2001:db8::5", ""},
		{"linklocal", "", "no usable address"},
		{"nowhere.invalid", "", "does not resolve"},
		{"", "", "no address"},
	} {
		got, err := resolveAddress(context.Background(), lookup, tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolveAddress(%q) = %q, %v; want an error saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolveAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if net.ParseIP(got) == nil {
			t.Errorf("resolveAddress(%q) = %q is not an IP", tc.in, got)
		}
	}
	var dns *net.DNSError
	if _, err := resolveAddress(context.Background(), lookup, "nowhere.invalid"); !errors.As(err, &dns) {
		t.Errorf("the lookup's error is not kept: %v", err)
	}
}
