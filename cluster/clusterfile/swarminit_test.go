package clusterfile

import (
	"net/netip"
	"slices"
	"testing"
)

func TestLoadSwarmInitSettings(t *testing.T) {
	base := "cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n}\n"
	if s := mustLoad(t, base, Options{}); s.DefaultAddrPool != nil || s.DataPathPort != 0 {
		t.Errorf("defaults: pool %v port %d, want none", s.DefaultAddrPool, s.DataPathPort)
	}
	s := mustLoad(t, base+"swarm {\n  default_addr_pool = [\"10.123.0.0/16\", \"172.30.0.0/20\"]\n  data_path_port = 4800\n  overlay_mtu = 1400\n}\n", Options{})
	if !slices.Equal(s.DefaultAddrPool, []string{"10.123.0.0/16", "172.30.0.0/20"}) || s.DataPathPort != 4800 || s.OverlayMTU != 1400 {
		t.Errorf("pool %v port %d", s.DefaultAddrPool, s.DataPathPort)
	}
	for _, tc := range []struct {
		attr, summary string
	}{
		{"overlay_mtu = 1279", "Invalid overlay_mtu"},
		{"overlay_mtu = 9001", "Invalid overlay_mtu"},
		{"data_path_port = 80", "Invalid data_path_port"},
		{"data_path_port = 50000", "Invalid data_path_port"},
		{"data_path_port = 7946", "Invalid data_path_port"},
		{"data_path_port = 2377", "Invalid data_path_port"},
		{"data_path_port = 5000", "Invalid data_path_port"}, // the registry's
		{"default_addr_pool = []", "Invalid default_addr_pool"},
		{"default_addr_pool = [\"10.123.0.0\"]", "Invalid default_addr_pool"},
		{"default_addr_pool = [\"10.123.0.1/16\"]", "Invalid default_addr_pool"},
		{"default_addr_pool = [\"10.123.0.0/25\"]", "Invalid default_addr_pool"},
		{"default_addr_pool = [\"fd00::/64\"]", "Invalid default_addr_pool"},
		{"default_addr_pool = [\"10.0.0.0/8\", \"10.123.0.0/16\"]", "Invalid default_addr_pool"},
	} {
		t.Run(tc.attr, func(t *testing.T) {
			d := wantError(t, base+"swarm {\n  "+tc.attr+"\n}\n", Options{}, tc.summary)
			wantLine(t, d, 6)
		})
	}
	// 4789 is Docker's own default: allowed.
	if s := mustLoad(t, base+"swarm {\n  data_path_port = 4789\n}\n", Options{}); s.DataPathPort != 4789 {
		t.Errorf("data_path_port 4789: %d", s.DataPathPort)
	}
}

func FuzzPoolDiag(f *testing.F) {
	f.Add("10.123.0.0/16")
	f.Add("::/0")
	f.Add("10.0.0.0/8")
	f.Fuzz(func(t *testing.T, s string) {
		if poolDiag(s, nil) == "" && poolDiag(s, []netip.Prefix{netip.MustParsePrefix(s)}) == "" {
			t.Fatalf("%q does not overlap itself", s)
		}
	})
}
