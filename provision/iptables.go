package provision

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/validate"
)

// A host whose iptables INPUT policy is DROP (and that runs neither
// firewalld nor ufw) gets its swarm's ports opened to the cluster's nodes
// only: a chain of shoal's own, SHOAL-SWARM, jumped to from the END of
// INPUT, so that every rule an administrator wrote (one that drops swarm
// traffic too) still comes first and wins; such a rule is reported, never
// removed. A oneshot unit puts the chain back at every boot, after the
// administrator's own rules are loaded.
const (
	iptablesScriptPath = "/etc/shoal/swarm-iptables.sh"
	iptablesUnit       = "shoal-swarm-iptables.service"
	iptablesUnitPath   = "/etc/systemd/system/" + iptablesUnit
	iptablesChain      = "SHOAL-SWARM"
)

// iptablesUnitText is the unit that runs the script at boot.
const iptablesUnitText = `# Written by shoal: lets the swarm's ports in from the cluster's nodes.
[Unit]
Description=shoal: the swarm's ports open to the cluster's nodes (iptables)
After=network-pre.target netfilter-persistent.service iptables.service nftables.service
Before=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh ` + iptablesScriptPath + `

[Install]
WantedBy=multi-user.target
`

// iptablesFacts is the "iptables" probe: INPUT's rules, then shoal's
// script and whether its unit is enabled.
type iptablesFacts struct {
	input, script, enabled string
}

func parseIptablesFacts(s string) iptablesFacts {
	var f iptablesFacts
	input, rest, _ := strings.Cut(s, "@@script\n")
	script, enabled, _ := strings.Cut(rest, "@@enabled\n")
	f.input, f.script, f.enabled = input, script, strings.TrimSpace(enabled)
	return f
}

// iptablesScript is the script for the peers and ports (tcp and udp each
// in multiport groups of at most 15).
func iptablesScript(peers []netip.Addr, ports []string) string {
	byProto := map[string][]string{}
	for _, p := range ports {
		_, proto, err := validate.FirewallPort(p)
		if err != nil || p == "22/tcp" { // SSH is open: shoal came in through it
			continue
		}
		num, _, _ := strings.Cut(p, "/")
		byProto[proto] = append(byProto[proto], num)
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by shoal: the swarm's ports open to the cluster's nodes only, after\n" +
		"# every rule of INPUT (its policy is DROP). Run at boot by " + iptablesUnit + ".\nset -e\n")
	fmt.Fprintf(&b, "iptables -N %[1]s 2>/dev/null || iptables -F %[1]s\n", iptablesChain)
	for _, a := range peers {
		for _, proto := range []string{"tcp", "udp"} {
			list := byProto[proto]
			for i := 0; i < len(list); i += 15 {
				fmt.Fprintf(&b, "iptables -A %s -s %s -p %s -m multiport --dports %s -j ACCEPT\n",
					iptablesChain, shell.Word(a.String()), shell.Word(proto), shell.Word(strings.Join(list[i:min(i+15, len(list))], ",")))
			}
		}
	}
	fmt.Fprintf(&b, "iptables -C INPUT -j %[1]s 2>/dev/null || iptables -A INPUT -j %[1]s\n", iptablesChain)
	return b.String()
}

// iptablesPlan decides: the script to write and run ("" for none) and
// notes for the summary. peers are the cluster's nodes' addresses.
func iptablesPlan(f iptablesFacts, firewalled bool, peers []string, ports []string) (script string, notes []string) {
	if firewalled || !strings.Contains(f.input, "-P INPUT DROP") {
		return "", nil
	}
	notes = adminDrops(f.input, ports)
	var addrs []netip.Addr
	for _, p := range peers {
		if a, err := netip.ParseAddr(p); err == nil && a.Is4() {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return "", append(notes, "iptables' INPUT policy is DROP and shoal does not know the swarm's other nodes here: "+
			"let "+strings.Join(ports, " ")+" in from them")
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	return iptablesScript(addrs, ports), notes
}

// adminDrops reports INPUT rules that drop or reject traffic to a swarm
// port (or everything) before shoal's chain: they win, and stay.
func adminDrops(input string, ports []string) []string {
	var out []string
	for _, l := range strings.Split(input, "\n") {
		l = strings.TrimSpace(l)
		if isInputDrop(l) && dropsSwarm(l, ports) {
			out = append(out, "an iptables rule may drop the swarm's traffic before shoal's "+iptablesChain+" chain, and is left as it is: "+l)
		}
	}
	return out
}

// isInputDrop tells an INPUT rule that drops or rejects.
func isInputDrop(l string) bool {
	return strings.HasPrefix(l, "-A INPUT ") && (strings.HasSuffix(l, "-j DROP") || strings.Contains(l, "-j REJECT"))
}

// dropsSwarm tells a dropping rule that catches all (no port, no source:
// it ends INPUT before shoal's chain) or names a swarm port but SSH's.
func dropsSwarm(l string, ports []string) bool {
	if !strings.Contains(l, "--dport") && !strings.Contains(l, "-s ") && !strings.Contains(l, "INVALID") {
		return true
	}
	for _, p := range ports {
		if n, _, _ := strings.Cut(p, "/"); n != "22" && namesPort(l, n) {
			return true
		}
	}
	return false
}

// namesPort tells a rule that names port n: --dport n, or in a
// multiport list.
func namesPort(l, n string) bool {
	return strings.Contains(l, "--dport "+n) || strings.Contains(l, ","+n) || strings.Contains(l, "ports "+n+",")
}

type iptablesStep struct{}

func (iptablesStep) Name() StepName { return StepIPTables }

func (iptablesStep) plan(h *Host) (string, []string, error) {
	ports, err := wantedPorts(h.Spec)
	if err != nil {
		return "", nil, err
	}
	active, _ := parseUFW(h.Facts.Section("ufw"))
	firewalled := active || h.Facts.Section("firewalld") == "active"
	var peers []string
	for _, e := range h.Spec.Hosts {
		peers = append(peers, e.IP)
	}
	script, notes := iptablesPlan(parseIptablesFacts(h.Facts.Section("iptables")), firewalled, peers, ports)
	return script, notes, nil
}

func (s iptablesStep) Check(_ context.Context, h *Host) (bool, error) {
	script, _, err := s.plan(h)
	if err != nil || script == "" {
		return false, err
	}
	f := parseIptablesFacts(h.Facts.Section("iptables"))
	hooked := strings.Contains(f.input, "-A INPUT -j "+iptablesChain)
	return f.script != script || !hooked || f.enabled != "enabled", nil
}

func (s iptablesStep) Apply(ctx context.Context, h *Host) error {
	script, _, err := s.plan(h)
	if err != nil || script == "" {
		return err
	}
	files := []sshrun.File{
		{Path: iptablesScriptPath, Data: []byte(script), Mode: 0o755, DirMode: 0o755},
		{Path: iptablesUnitPath, Data: []byte(iptablesUnitText), Mode: 0o644},
	}
	if err := writeFiles(ctx, h.R, files); err != nil {
		return err
	}
	_, err = h.R.RunSudo(ctx, "sh "+iptablesScriptPath+" && systemctl daemon-reload && systemctl enable "+iptablesUnit)
	return err
}

// iptablesProbe prints INPUT's rules, shoal's script and its unit's state.
const iptablesProbe = `command -v iptables >/dev/null && iptables -S INPUT && echo @@script && cat ` + iptablesScriptPath +
	`; echo @@enabled; systemctl is-enabled ` + iptablesUnit
