package provision

import (
	"strings"
	"testing"
)

func TestVmxnet3Plan(t *testing.T) {
	unit := vmxnet3UnitText("ens192")
	for _, tc := range []struct {
		name   string
		probe  string
		change bool
		note   string
	}{
		{"not vmxnet3", "", false, ""},
		{"offload on", "iface=ens192\ntx-checksum-ip-generic: on\nenabled=disabled\n@@unit\n", true, "turned off"},
		{"off, unit there", "iface=ens192\ntx-checksum-ip-generic: off\nenabled=enabled\n@@unit\n" + strings.TrimRight(unit, "\n"), false, ""},
		{"off by hand, no unit: a reboot turns it on", "iface=ens192\ntx-checksum-ip-generic: off\nenabled=\n@@unit\n", true, "every boot"},
		{"off [fixed]", "iface=ens192\ntx-checksum-ip-generic: off [fixed]\nenabled=enabled\n@@unit\n" + unit, false, ""},
		{"no ethtool", "iface=ens192\nenabled=\n@@unit\n", false, "ethtool is not installed"},
		{"a name shoal does not put in a unit", "iface=en-s1'x\ntx-checksum-ip-generic: on\n@@unit\n", false, "yourself"},
	} {
		change, note := vmxnet3Plan(parseVmxnet3(tc.probe))
		if change != tc.change || (tc.note == "") != (note == "") || !strings.Contains(note, tc.note) {
			t.Errorf("%s: change %v note %q, want %v %q", tc.name, change, note, tc.change, tc.note)
		}
	}
}

func FuzzParseVmxnet3(f *testing.F) {
	f.Add("iface=ens192\ntx-checksum-ip-generic: on\nenabled=disabled\n@@unit\n")
	f.Fuzz(func(t *testing.T, s string) {
		fa := parseVmxnet3(s)
		if change, _ := vmxnet3Plan(fa); change && !unitSafeIface(fa.iface) {
			t.Fatalf("would put %q into a unit and a command", fa.iface)
		}
	})
}
