package provision

import (
	"context"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/validate"
)

// VMware's vmxnet3 NIC (NSX sites above all) drops VXLAN packets, swarm's
// overlay traffic, while it offloads their checksums: services answer on
// one node and time out across nodes, with nothing in any log. shoal turns
// that offload off on the interface that carries swarm traffic when it is
// a vmxnet3 one, by default (the cost, checksums in software on one NIC, is
// small beside an overlay that silently fails), with a line in the
// summary; a unit does it again at every boot.
const (
	vmxnet3Unit     = "shoal-vmxnet3-offload.service"
	vmxnet3UnitPath = "/etc/systemd/system/" + vmxnet3Unit
)

// unitSafeIface tells whether an interface name may go into a unit as it
// is (and into its device unit's name, which escapes "-" and reads ".").
func unitSafeIface(s string) bool {
	return validate.InterfaceName(s) == nil && !strings.ContainsAny(s, "-.")
}

// vmxnet3Facts is the "vmxnet3" probe: the swarm interface when its driver
// is vmxnet3 ("" otherwise), ethtool's line for the offload ("" without
// ethtool), the unit's state and text.
type vmxnet3Facts struct {
	iface, offload, enabled, unit string
}

func parseVmxnet3(s string) vmxnet3Facts {
	var f vmxnet3Facts
	head, unit, _ := strings.Cut(s, "@@unit\n")
	f.unit = unit
	for _, l := range strings.Split(head, "\n") {
		switch k, v, _ := strings.Cut(l, "="); k {
		case "iface":
			f.iface = v
		case "enabled":
			f.enabled = v
		default:
			if o, ok := strings.CutPrefix(l, "tx-checksum-ip-generic: "); ok {
				f.offload = o
			}
		}
	}
	return f
}

func vmxnet3UnitText(iface string) string {
	dev := "sys-subsystem-net-devices-" + iface + ".device"
	return `# Written by shoal: VXLAN (swarm's overlay traffic) through a vmxnet3 NIC is
# dropped while the NIC offloads its checksums: the offload is off on ` + iface + `.
[Unit]
Description=shoal: no tx checksum offload on ` + iface + ` (vmxnet3) for swarm's VXLAN
BindsTo=` + dev + `
After=` + dev + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'ethtool -K ` + iface + ` tx-checksum-ip-generic off'

[Install]
WantedBy=multi-user.target
`
}

// vmxnet3Plan decides: whether to change anything, and a note for the
// summary (what is done, or why it cannot be).
func vmxnet3Plan(f vmxnet3Facts) (change bool, note string) {
	switch {
	case f.iface == "":
		return false, ""
	case !unitSafeIface(f.iface):
		return false, "the swarm interface " + f.iface + " is a vmxnet3 NIC whose name shoal does not put in a unit: turn its tx checksum offload off yourself (ethtool -K IFACE tx-checksum-ip-generic off), or VXLAN between nodes may be dropped"
	case f.offload == "":
		return false, "the swarm interface " + f.iface + " is a vmxnet3 NIC and ethtool is not installed: install it and provision again, so that shoal turns its tx checksum offload off (VXLAN between nodes may be dropped)"
	}
	// (the probe's section ends without the file's last newline)
	change = !strings.HasPrefix(f.offload, "off") || f.enabled != "enabled" ||
		strings.TrimRight(f.unit, "\n") != strings.TrimRight(vmxnet3UnitText(f.iface), "\n")
	if change {
		note = "the swarm interface " + f.iface + " is a vmxnet3 NIC: its tx checksum offload is turned off, now and at every boot (" + vmxnet3Unit + "), because it drops VXLAN (overlay) packets"
	}
	return change, note
}

type vmxnet3Step struct{}

func (vmxnet3Step) Name() StepName { return StepVMXNet3 }

func (vmxnet3Step) facts(h *Host) vmxnet3Facts { return parseVmxnet3(h.Facts.Section("vmxnet3")) }

func (s vmxnet3Step) Check(_ context.Context, h *Host) (bool, error) {
	change, _ := vmxnet3Plan(s.facts(h))
	return change, nil
}

func (s vmxnet3Step) Apply(ctx context.Context, h *Host) error {
	f := s.facts(h)
	change, note := vmxnet3Plan(f)
	if !change {
		return nil
	}
	if h.progress != nil {
		h.progress(string(s.Name()), ui.Info, note)
	}
	if err := writeFiles(ctx, h.R, []sshrun.File{{Path: vmxnet3UnitPath, Data: []byte(vmxnet3UnitText(f.iface)), Mode: 0o644}}); err != nil {
		return err
	}
	_, err := h.R.RunSudo(ctx, "ethtool -K "+shell.Word(f.iface)+" tx-checksum-ip-generic off && systemctl daemon-reload && systemctl enable "+vmxnet3Unit)
	return err
}

// vmxnet3Probe prints, when the swarm interface's driver is vmxnet3, its
// name, ethtool's offload line, and shoal's unit (state, text).
const vmxnet3Probe = `i=$(shoal_iface); [ -n "$i" ] && d=$(readlink /sys/class/net/"$i"/device/driver) && [ "${d##*/}" = vmxnet3 ] && ` +
	`{ printf 'iface=%s\n' "$i"; command -v ethtool >/dev/null && ethtool -k "$i" | grep '^tx-checksum-ip-generic:'; ` +
	`printf 'enabled=%s\n' "$(systemctl is-enabled ` + vmxnet3Unit + `)"; echo @@unit; cat ` + vmxnet3UnitPath + `; }`
