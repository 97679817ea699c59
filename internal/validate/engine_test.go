package validate

import (
	"strings"
	"testing"
)

func TestStoredName(t *testing.T) {
	// Every name Name takes, StoredName reads too; a..b only StoredName.
	cases := []strCase{
		{"n1", true}, {"web-1.lab", true}, {"A", true}, {strings.Repeat("a", 63), true}, {"a..b", true},
		{"", false}, {".", false}, {"..", false}, {strings.Repeat("a", 64), false}, {"-a", false}, {".a", false},
		{"../../victim", false}, {"a/b", false}, {"a_b", false}, {"a b", false}, {"a\x00b", false},
	}
	check(t, "StoredName", StoredName, cases)
	for _, c := range cases {
		if Name(c.in) == nil && StoredName(c.in) != nil {
			t.Errorf("Name(%q) takes what StoredName refuses", c.in)
		}
	}
	if Name("a..b") == nil {
		t.Error(`Name("a..b") accepted: a new machine's name is its default hostname`)
	}
}

func TestChecksum(t *testing.T) {
	hex := strings.Repeat("0a", 32)
	check(t, "Checksum", Checksum, []strCase{
		{"sha256:" + hex, true}, {"sha256:" + strings.ToUpper(hex), true},
		{"", false}, {hex, false}, {"sha256:" + hex[:63], false}, {"sha256:" + hex + "0", false},
		{"sha512:" + hex, false}, {"sha256:" + hex[:63] + "g", false},
	})
}

func TestInterfaceName(t *testing.T) {
	check(t, "InterfaceName", InterfaceName, []strCase{
		{"eth0", true}, {"ens192", true}, {"br-1a2b", true}, {"eth0.100", true}, {"wg_0", true},
		{strings.Repeat("a", 15), true},
		{"", false}, {strings.Repeat("a", 16), false}, {"eth0:1", false}, {"a b", false}, {"eth/0", false},
	})
}

func TestEngineOptKeyAndStorageDriver(t *testing.T) {
	check(t, "EngineOptKey", EngineOptKey, []strCase{
		{"log-level", true}, {"default-ulimit", true}, {"ab", true}, {"ipv6", true},
		{"", false}, {"a", false}, {"log-", false}, {"-log", false}, {"1ab", false}, {"Log-level", false},
		{"log_level", false}, {"log-opt=x", false},
	})
	check(t, "StorageDriver", StorageDriver, []strCase{
		{"overlay2", true}, {"btrfs", true}, {"vfs", true}, {"fuse-overlayfs", true}, {"1a", true},
		{"", false}, {"-a", false}, {"Overlay2", false}, {"a b", false}, {"a_b", false},
	})
}

func TestEnvName(t *testing.T) {
	check(t, "EnvName", EnvName, []strCase{
		{"HTTP_PROXY", true}, {"http_proxy", true}, {"_X", true}, {"A1", true},
		{"", false}, {"1A", false}, {"A-B", false}, {"A B", false}, {"A=B", false},
	})
}

func TestSAN(t *testing.T) {
	check(t, "SAN", SAN, []strCase{
		{"10.0.0.1", true}, {"::1", true}, {"docker.example.com", true}, {"*.example.com", true}, {"host1", true},
		{"", false}, {"*", false}, {"*.", false}, {"*.*.example.com", false}, {"a..b", false}, {"a_b", false},
		{"-a.example.com", false}, {"a-.example.com", false}, {"a b", false}, {"[::1]", false},
	})
}

func TestFirewallPort(t *testing.T) {
	for _, c := range []struct {
		in    string
		port  int
		proto string
		ok    bool
	}{
		{"5000/tcp", 5000, "tcp", true}, {"4789/udp", 4789, "udp", true}, {"1/tcp", 1, "tcp", true},
		{"65535/udp", 65535, "udp", true},
		{"0/tcp", 0, "tcp", false}, {"65536/tcp", 65536, "tcp", false}, {"99999/udp", 99999, "udp", false},
		{"", 0, "", false}, {"5000", 0, "", false}, {"5000/sctp", 0, "", false}, {"/tcp", 0, "", false},
		{"123456/tcp", 0, "", false}, {"5000/TCP", 0, "", false}, {"5000-5010/tcp", 0, "", false},
	} {
		port, proto, err := FirewallPort(c.in)
		if (err == nil) != c.ok || port != c.port || proto != c.proto {
			t.Errorf("FirewallPort(%q) = %d, %q, %v; want %d, %q, ok=%v", c.in, port, proto, err, c.port, c.proto, c.ok)
		}
	}
}

func TestNewChecksRefuseTheInjection(t *testing.T) {
	for name, f := range map[string]func(string) error{
		"StoredName": StoredName, "Checksum": Checksum, "InterfaceName": InterfaceName,
		"EngineOptKey": EngineOptKey, "StorageDriver": StorageDriver, "EnvName": EnvName, "SAN": SAN,
		"FirewallPort": func(s string) error { _, _, err := FirewallPort(s); return err },
	} {
		for _, v := range []string{inj, "$(touch /tmp/pwned)", "`id`", "a\nb", "a|b", "a&&b"} {
			if err := f(v); err == nil {
				t.Errorf("%s(%q) accepted", name, v)
			}
		}
	}
}
