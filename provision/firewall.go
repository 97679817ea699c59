package provision

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/validate"
)

// SwarmPorts are what every node opens when a firewall runs: SSH, the
// daemon's TLS port, and Swarm's management, gossip and VXLAN ports.
const SwarmPorts = "22/tcp 2376/tcp 2377/tcp 7946/tcp 7946/udp 4789/udp"

// wantedPorts lists the ports the host must accept, in a stable order:
// SwarmPorts, the TLS port, then Spec.FirewallPorts, without repeats.
func wantedPorts(spec Spec) ([]string, error) {
	list := strings.Fields(SwarmPorts)
	if spec.TLS != nil && spec.TLS.Port != 0 {
		list = append(list, fmt.Sprintf("%d/tcp", spec.TLS.Port))
	}
	list = append(list, spec.FirewallPorts...)
	seen := map[string]bool{}
	var out []string
	for _, p := range list {
		if n, _, err := validate.FirewallPort(p); err != nil {
			if n == 0 {
				return nil, fmt.Errorf("firewall port %q: want PORT/tcp or PORT/udp (like 5000/tcp)", p)
			}
			return nil, fmt.Errorf("firewall port %q: %d is not a port", p, n)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// portRange is one open range of ports; proto "" is tcp and udp both.
type portRange struct {
	lo, hi int
	proto  string
}

// openPorts is what a firewall lets in; all means everything.
type openPorts struct {
	all    bool
	ranges []portRange
}

func (o openPorts) covers(port string) bool {
	if o.all {
		return true
	}
	n, proto, err := validate.FirewallPort(port)
	if err != nil {
		return false
	}
	for _, r := range o.ranges {
		if n >= r.lo && n <= r.hi && (r.proto == "" || r.proto == proto) {
			return true
		}
	}
	return false
}

// parsePortSpec reads "22/tcp", "7946", "6000-6010/udp", "6000:6010/udp" or
// "80,443/tcp" (ufw's multiport) into ranges; ok is false for anything else.
func parsePortSpec(s string) ([]portRange, bool) {
	ports, proto, _ := strings.Cut(s, "/")
	if proto != "" && proto != "tcp" && proto != "udp" {
		return nil, false
	}
	var out []portRange
	for _, part := range strings.Split(ports, ",") {
		r, ok := parsePortRange(part)
		if !ok {
			return nil, false
		}
		r.proto = proto
		out = append(out, r)
	}
	return out, true
}

// parsePortRange reads "22", "6000-6010" or "6000:6010".
func parsePortRange(part string) (portRange, bool) {
	lo, hi, isRange := strings.Cut(part, "-")
	if !isRange {
		lo, hi, isRange = strings.Cut(part, ":")
	}
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a > b {
		return portRange{}, false
	}
	return portRange{lo: a, hi: b}, true
}

// servicePorts knows the firewalld services and ufw application profiles
// that cover shoal's ports; for any other the port itself is added.
func servicePorts(name string) (string, bool) {
	switch name {
	case "ssh", "OpenSSH":
		return "22/tcp", true
	case "docker-swarm":
		return "2377/tcp 7946/tcp 7946/udp 4789/udp", true
	case "docker-registry":
		return "5000/tcp", true
	}
	return "", false
}

// serviceRanges is servicePorts as ranges.
func serviceRanges(name string) ([]portRange, bool) {
	ports, ok := servicePorts(name)
	var out []portRange
	for _, p := range strings.Fields(ports) {
		r, _ := parsePortSpec(p)
		out = append(out, r...)
	}
	return out, ok
}

// parseFirewalld reads `firewall-cmd --list-all` (of the default zone).
func parseFirewalld(listAll string) openPorts {
	var o openPorts
	for _, l := range strings.Split(listAll, "\n") {
		key, val, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok {
			continue
		}
		o.addFirewalld(key, strings.TrimSpace(val))
	}
	return o
}

// addFirewalld reads one "key: value" line of `firewall-cmd --list-all`.
func (o *openPorts) addFirewalld(key, val string) {
	switch key {
	case "target":
		// The trusted zone (target ACCEPT) lets everything in.
		o.all = o.all || val == "ACCEPT"
	case "services":
		for _, svc := range strings.Fields(val) {
			r, _ := serviceRanges(svc)
			o.ranges = append(o.ranges, r...)
		}
	case "ports":
		for _, p := range strings.Fields(val) {
			if r, ok := parsePortSpec(p); ok {
				o.ranges = append(o.ranges, r...)
			}
		}
	}
}

var ufwColumnsRE = regexp.MustCompile(`\s{2,}`)

// parseUFW reads `ufw status verbose`: whether ufw is active, and the
// IPv4 rules that let anyone in (a rule limited to a source, a destination
// or an interface does not count: shoal adds its own).
func parseUFW(status string) (active bool, o openPorts) {
	for _, l := range strings.Split(status, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "Status: active":
			active = true
		case strings.HasPrefix(l, "Default:"):
			o.all = o.all || strings.Contains(l, "allow (incoming)")
		default:
			o.addUFWRule(l)
		}
	}
	return active, o
}

// addUFWRule reads a rule line of `ufw status verbose` (To, Action, From
// in columns), if it lets anyone in.
func (o *openPorts) addUFWRule(l string) {
	cols := ufwColumnsRE.Split(l, -1)
	if len(cols) < 3 || !ufwAllowsAnyone(cols[0], cols[1], cols[2]) {
		return
	}
	to := cols[0]
	if to == "Anywhere" {
		o.all = true
		return
	}
	if r, ok := serviceRanges(to); ok {
		o.ranges = append(o.ranges, r...)
		return
	}
	// verbose names an application profile after its ports:
	// "22/tcp (OpenSSH)". Anything else after the ports ("on eth0") or
	// before them (a destination address) narrows the rule.
	spec, rest, _ := strings.Cut(to, " ")
	if rest != "" && !strings.HasPrefix(rest, "(") {
		return
	}
	if r, ok := parsePortSpec(spec); ok {
		o.ranges = append(o.ranges, r...)
	}
}

// ufwAllowsAnyone tells an IPv4 rule that lets in from anywhere, on any
// interface.
func ufwAllowsAnyone(to, action, from string) bool {
	allows := strings.HasPrefix(action, "ALLOW") || strings.HasPrefix(action, "LIMIT")
	return allows && !strings.HasSuffix(action, "OUT") && from == "Anywhere" &&
		!strings.Contains(to, "(v6)") && !strings.Contains(to, " on ")
}

// firewalldCommands opens the ports missing from zone (the zone of the
// interface that carries swarm traffic; "" for the default zone), in the
// runtime and the permanent configuration each where it is missing. No
// --reload: it would drop the runtime rules an administrator added.
func firewalldCommands(zone string, want []string, runtime, perm openPorts) []string {
	z := ""
	if zone != "" {
		z = " --zone=" + shell.Word(zone)
	}
	rt, pm := "firewall-cmd"+z, "firewall-cmd --permanent"+z
	base := len(rt)
	basePerm := len(pm)
	for _, p := range want {
		if !runtime.covers(p) {
			rt += " --add-port=" + shell.Word(p)
		}
		if !perm.covers(p) {
			pm += " --add-port=" + shell.Word(p)
		}
	}
	var cmds []string
	if len(rt) > base {
		cmds = append(cmds, rt)
	}
	if len(pm) > basePerm {
		cmds = append(cmds, pm)
	}
	return cmds
}

type firewallStep struct{}

func (firewallStep) Name() StepName { return StepFirewall }

// plan returns the command that opens the missing ports, "" when none is
// missing or no firewall runs.
func (firewallStep) plan(h *Host) (string, error) {
	want, err := wantedPorts(h.Spec)
	if err != nil {
		return "", err
	}
	var cmds []string
	if h.Facts.Section("firewalld") == "active" {
		_, zone := h.Facts.SwarmZone()
		cmds = append(cmds, firewalldCommands(zone, want,
			parseFirewalld(h.Facts.Section("firewalld-runtime")), parseFirewalld(h.Facts.Section("firewalld-permanent")))...)
	}
	if active, open := parseUFW(h.Facts.Section("ufw")); active {
		// ufw allow writes the rule for IPv4 and IPv6, persistent and live.
		for _, p := range want {
			if !open.covers(p) {
				cmds = append(cmds, "ufw allow "+shell.Word(p))
			}
		}
	}
	return strings.Join(cmds, " && "), nil
}

func (s firewallStep) Check(_ context.Context, h *Host) (bool, error) {
	cmd, err := s.plan(h)
	return cmd != "", err
}

func (s firewallStep) Apply(ctx context.Context, h *Host) error {
	cmd, err := s.plan(h)
	if err != nil || cmd == "" {
		return err
	}
	_, err = h.R.RunSudo(ctx, cmd)
	return err
}
