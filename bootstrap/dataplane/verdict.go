package dataplane

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
)

// Kinds of findings: a fault is something the swarm offers that does not
// work (exit status 1); a limit is what these hosts' kernel cannot do at
// all (reported with its consequence, exit status 0); a warning is a
// setting known to break the data plane that did not break it here.
const (
	Fault   = "fault"
	Limit   = "limit"
	Warning = "warning"
)

// Probe results of a cell.
const (
	OK      = "ok"
	Failed  = "fail"
	Skipped = ""
)

// DefaultOverlayMTU is the MTU of an overlay network's interfaces when
// the network sets none (1500 less VXLAN's 50 bytes).
const DefaultOverlayMTU = 1450

// vxlanOverhead is what VXLAN adds to each packet.
const vxlanOverhead = 50

// Cell is what the probe task on From saw of the task on To.
type Cell struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Small string `json:"small"`
	// Big is a ping of the overlay's full MTU (inner DF set).
	Big string `json:"big"`
	// Mesh: From's task reached the responder through the routing mesh
	// at To's address (Skipped where the hosts have no IP_VS).
	Mesh string `json:"mesh,omitempty"`
}

// Matrix is the probe's result.
type Matrix struct {
	Cells []Cell `json:"cells"`
	// Missing: nodes the probe has no result from, with why.
	Missing map[string]string `json:"missing,omitempty"`
	// NoImage: the nodes among Missing that lack the probe's image (the
	// probe could not test them, which says nothing of their network).
	NoImage map[string]bool `json:"noImage,omitempty"`
	// DNS: per node, "" when the probe task resolved tasks.SERVICE to every
	// task and the service's name, else what failed.
	DNS map[string]string `json:"dns,omitempty"`
	// VIP: per node, whether its task reached the responder through the
	// service's virtual IP; nil when VIPs were not tested (no IP_VS).
	VIP map[string]string `json:"vip,omitempty"`
	// MeshPort is the responder's published port (0: not tested).
	MeshPort int `json:"meshPort,omitempty"`
	// Run is where the probe run's time went.
	Run RunTiming `json:"run"`
}

// Input is everything the verdict reasons on.
type Input struct {
	Nodes []string
	Addrs map[string]string // node -> swarm address
	// Advertised is the address each node's engine advertises for gossip
	// and VXLAN: after a host got a new address, the old one until the
	// node joins again.
	Advertised map[string]string
	Managers   map[string]bool
	Facts      map[string]Facts
	// Pools are the swarm's default address pools (CIDR).
	Pools        []string
	OverlayMTU   int
	DataPathPort int
	Matrix       Matrix
	// ImageOptional: a node without the probe's image is a warning (the
	// check at the end of 'cluster up', whose swarm is made either way),
	// not a fault ('cluster check', asked for a verdict).
	ImageOptional bool
}

// Finding is one verdict: what, where, the likely cause and the fix.
type Finding struct {
	Kind string `json:"kind"`
	// Node is "" for the whole swarm, else the node it is about; Peer
	// names the other end of a fault between two nodes.
	Node  string `json:"node,omitempty"`
	Peer  string `json:"peer,omitempty"`
	Check string `json:"check"`
	Cause string `json:"cause"`
	Fix   string `json:"fix,omitempty"`
}

// Report is the check's result.
type Report struct {
	Nodes    []string  `json:"nodes"`
	Cells    []Cell    `json:"cells"`
	Findings []Finding `json:"findings"`
	// OK: every fault is absent (limits and warnings may be there).
	OK bool `json:"ok"`
	// VIP and MeshPort: what the VIP and routing mesh tests saw (absent
	// where they did not run: hosts without IP_VS).
	VIP      map[string]string `json:"vip,omitempty"`
	MeshPort int               `json:"meshPort,omitempty"`
	// Runs: where each probe run's time went (a second run follows a
	// first that saw a failure).
	Runs []RunTiming `json:"runs,omitempty"`
}

// RunTiming is where one probe run's time went, in seconds: making it
// (leftovers removed, each node's image checked, the network and
// services made), its tasks' start on every node, the probe until every
// result was read, and its removal.
type RunTiming struct {
	Make    float64 `json:"makeSeconds"`
	Start   float64 `json:"startSeconds"`
	Probe   float64 `json:"probeSeconds"`
	Cleanup float64 `json:"cleanupSeconds"`
}

// Counts returns how many faults, limits and warnings the report has.
func (r *Report) Counts() (faults, limits, warnings int) {
	for _, f := range r.Findings {
		switch f.Kind {
		case Fault:
			faults++
		case Limit:
			limits++
		default:
			warnings++
		}
	}
	return
}

// Verdict is the pure decision: the findings of facts and matrix.
func Verdict(in Input) *Report {
	in.OverlayMTU = cmp.Or(in.OverlayMTU, DefaultOverlayMTU)
	in.DataPathPort = cmp.Or(in.DataPathPort, 4789)
	var fs []Finding
	fs = append(fs, ipvsFindings(in)...)
	fs = append(fs, addressFindings(in)...)
	fs = append(fs, hostFindings(in)...)
	fs = append(fs, poolFindings(in)...)
	fs = append(fs, portFindings(in)...)
	fs = append(fs, gossipUDPFindings(in)...)
	fs = append(fs, matrixFindings(in, fs)...)
	fs = append(fs, meshFindings(in, fs)...)
	sort.SliceStable(fs, func(i, j int) bool { return kindRank(fs[i].Kind) < kindRank(fs[j].Kind) })
	r := &Report{Nodes: in.Nodes, Cells: in.Matrix.Cells, Findings: fs, OK: true, VIP: in.Matrix.VIP, MeshPort: in.Matrix.MeshPort}
	if r.Cells == nil {
		r.Cells = []Cell{}
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	for _, f := range fs {
		if f.Kind == Fault {
			r.OK = false
		}
	}
	return r
}

func kindRank(k string) int {
	switch k {
	case Fault:
		return 0
	case Limit:
		return 1
	}
	return 2
}

// readFacts returns the facts of the nodes whose facts were read.
func readFacts(in Input) []Facts {
	var out []Facts
	for _, n := range in.Nodes {
		if f, ok := in.Facts[n]; ok && f.Read {
			out = append(out, f)
		}
	}
	return out
}

// containerVirt tells the virtualizations whose kernel modules are the
// host's: a module is loaded there, not inside.
func containerVirt(v string) bool {
	switch v {
	case "lxc", "lxc-libvirt", "openvz", "wsl", "docker", "podman", "systemd-nspawn", "container-other":
		return true
	}
	return false
}

func ipvsFindings(in Input) []Finding {
	fs := readFacts(in)
	var without []Facts
	for _, f := range fs {
		if !f.IPVS {
			without = append(without, f)
		}
	}
	if len(without) == 0 {
		return nil
	}
	where := virtNote(without)
	if len(without) == len(fs) {
		return []Finding{{Kind: Limit, Check: "ipvs",
			Cause: "this kernel has no IP_VS: service VIPs and the routing mesh cannot work on any node" + where,
			Fix:   "use endpoint_mode: dnsrr and mode: host ports, or a kernel with IP_VS (modprobe ip_vs)"}}
	}
	var out []Finding
	for _, f := range without {
		out = append(out, Finding{Kind: Fault, Node: f.Node, Check: "ipvs",
			Cause: fmt.Sprintf("ip_vs is not loaded on %s: service VIPs and the routing mesh fail for its tasks%s", f.Node, virtNote([]Facts{f})),
			Fix:   "modprobe ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh, and list them in /etc/modules-load.d/"})
	}
	return out
}

// virtNote explains, for nodes in containers, where their kernel is.
func virtNote(fs []Facts) string {
	var names []string
	virt := ""
	for _, f := range fs {
		if containerVirt(f.Virt) {
			names = append(names, f.Node)
			virt = f.Virt
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%s: a %s container uses its host's kernel: load ip_vs on that host, or run the node in a VM)", strings.Join(names, ", "), virt)
}

// hostFindings are the per-node settings: MTU, firewalld, iptables,
// NIC offload, bridge netfilter.
func hostFindings(in Input) []Finding {
	var out []Finding
	for _, f := range readFacts(in) {
		if f.MTU > 0 && f.MTU < in.OverlayMTU+vxlanOverhead {
			out = append(out, Finding{Kind: Fault, Node: f.Node, Check: "mtu",
				Cause: fmt.Sprintf("%s's %s MTU is %d: overlay packets over %d bytes are lost (the overlay uses %d)", f.Node, f.Iface, f.MTU, f.MTU-vxlanOverhead, in.OverlayMTU),
				Fix:   fmt.Sprintf("set swarm { overlay_mtu = %d }, or raise the link's MTU", f.MTU-vxlanOverhead)})
		}
		out = append(out, firewalldFindings(in, f)...)
		if f.IptablesLegacy > 0 && f.IptablesNft > 0 {
			out = append(out, Finding{Kind: Warning, Node: f.Node, Check: "iptables",
				Cause: fmt.Sprintf("%s has rules in both iptables-legacy (%d) and iptables-nft (%d); Docker writes to %s only, the other's rules still filter", f.Node, f.IptablesLegacy, f.IptablesNft, orUnknown(f.IptablesMode)),
				Fix:   "use one backend (update-alternatives --set iptables ...), flush the other, restart docker"})
		}
		if f.Driver == "vmxnet3" && f.TxChecksum && in.DataPathPort == 4789 {
			out = append(out, Finding{Kind: Warning, Node: f.Node, Check: "offload",
				Cause: fmt.Sprintf("%s's %s is a vmxnet3 NIC with tx checksum offload on: VMware drops VXLAN on 4789/udp", f.Node, f.Iface),
				Fix:   fmt.Sprintf("ethtool -K %s tx-checksum-ip-generic off, or swarm { data_path_port = 4790 }", orUnknown(f.Iface))})
		}
		if f.NeighMax > 0 && f.NeighEntries*10 >= f.NeighMax*9 {
			out = append(out, Finding{Kind: Warning, Node: f.Node, Check: "arp-table",
				Cause: fmt.Sprintf("%s's kernel ARP table holds %d entries of at most %d (net.ipv4.neigh.default.gc_thresh3): past it, packets to peers without an entry are dropped, overlay ones too", f.Node, f.NeighEntries, f.NeighMax),
				Fix:   "raise net.ipv4.neigh.default.gc_thresh1/2/3 (e.g. 4096, 16384, 32768, in /etc/sysctl.d/)"})
		}
		if f.BridgeNFCall == "0" {
			out = append(out, Finding{Kind: Warning, Node: f.Node, Check: "br_netfilter",
				Cause: fmt.Sprintf("net.bridge.bridge-nf-call-iptables is 0 on %s: Docker's rules do not see bridged traffic", f.Node),
				Fix:   "sysctl -w net.bridge.bridge-nf-call-iptables=1 (and in /etc/sysctl.d/)"})
		}
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// firewalldFindings: firewalld running and the swarm interface's zone
// without the swarm's ports.
func firewalldFindings(in Input, f Facts) []Finding {
	if !f.Firewalld || f.Zone == "trusted" || f.ZoneTarget == "ACCEPT" || slices.Contains(f.ZoneServices, "docker-swarm") {
		return nil
	}
	missing := missingPorts(swarmPorts(in, f.Node), f.ZonePorts)
	if len(missing) == 0 {
		return nil
	}
	var adds []string
	for _, p := range missing {
		adds = append(adds, "--add-port="+p)
	}
	return []Finding{{Kind: Fault, Node: f.Node, Check: "firewalld",
		Cause: fmt.Sprintf("firewalld runs on %s and its zone %q (of %s) does not open %s", f.Node, f.Zone, orUnknown(f.Iface), strings.Join(missing, ", ")),
		Fix:   fmt.Sprintf("firewall-cmd --permanent --zone=%s %s && firewall-cmd --reload, or let shoal manage the firewall", shell.Word(f.Zone), shell.Words(adds...))}}
}

// swarmPorts are the ports node needs open: the data path, gossip, and on
// a manager the cluster port.
func swarmPorts(in Input, node string) []string {
	want := []string{fmt.Sprintf("%d/udp", in.DataPathPort), "7946/tcp", "7946/udp"}
	if in.Managers[node] {
		want = append(want, "2377/tcp")
	}
	return want
}

// missingPorts are the ports of want that open does not list, in order.
func missingPorts(want, open []string) []string {
	var missing []string
	for _, p := range want {
		if !slices.Contains(open, p) {
			missing = append(missing, p)
		}
	}
	return missing
}

// poolFindings: a swarm address pool overlapping a host's own network
// shadows it inside containers.
func poolFindings(in Input) []Finding {
	var out []Finding
	for _, p := range in.Pools {
		pool, err := netip.ParsePrefix(p)
		if err != nil {
			continue
		}
		for _, f := range readFacts(in) {
			for _, n := range f.Nets {
				hn, err := netip.ParsePrefix(n.Prefix)
				if err != nil || !pool.Overlaps(hn) {
					continue
				}
				// A risk, not a fault yet: only an overlay network given a
				// subnet there hides the host's (VirtualBox's NAT 10.0.2.0/24
				// sits inside Docker's default 10.0.0.0/8 on every such VM).
				out = append(out, Finding{Kind: Warning, Node: f.Node, Check: "address-pool",
					Cause: fmt.Sprintf("the swarm's address pool %s overlaps %s's network %s (%s): an overlay network given a subnet there hides the host's from its containers", p, f.Node, n.Prefix, orUnknown(n.Dev)),
					Fix:   "set swarm { default_addr_pool = [...] } to a range no host uses or routes"})
			}
		}
	}
	return out
}

// addressFindings names a node whose engine advertises an address its host
// no longer has: every peer sends its overlay and gossip traffic there.
func addressFindings(in Input) []Finding {
	var out []Finding
	for _, n := range in.Nodes {
		f, adv := in.Facts[n], in.Advertised[n]
		a, err := netip.ParseAddr(adv)
		if err != nil || !f.Read || len(f.Addrs) == 0 || slices.Contains(f.Addrs, a.String()) {
			continue
		}
		out = append(out, Finding{Kind: Fault, Node: n, Check: "address",
			Cause: fmt.Sprintf("%s's engine advertises %s, an address the host no longer has (it has %s): the other nodes send its overlay and gossip traffic there (service discovery misses its tasks too)", n, adv, strings.Join(f.Addrs, ", ")),
			Fix:   fmt.Sprintf("run 'cluster up': it joins %s to the swarm again at its new address", n)})
	}
	return out
}
