// Package dataplane checks that a swarm carries traffic between its nodes:
// per node what the kernel and the firewall allow (facts), across nodes
// what a short-lived probe service sees over a temporary overlay network
// (the matrix), and a pure Verdict that names each fault's likely cause and
// its fix, apart from the limits of the hosts (a kernel without IP_VS).
package dataplane

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/shell"
)

// Facts is what one node's kernel, firewall and interface say.
type Facts struct {
	Node string `json:"node"`
	// Read is false when the facts could not be read (then the rest is
	// empty and the verdict does not reason on them).
	Read bool `json:"read"`
	// IPVS: the ip_vs module is loaded or built in (service VIPs, mesh).
	IPVS         bool   `json:"ipvs"`
	VXLAN        bool   `json:"vxlan"`
	BrNetfilter  bool   `json:"brNetfilter"`
	BridgeNFCall string `json:"bridgeNfCallIptables,omitempty"` // "1", "0", "" unknown
	// IptablesLegacy and IptablesNft count rules in each backend: both
	// above zero is a mix.
	IptablesMode   string   `json:"iptablesMode,omitempty"` // legacy, nf_tables
	IptablesLegacy int      `json:"iptablesLegacyRules"`
	IptablesNft    int      `json:"iptablesNftRules"`
	Firewalld      bool     `json:"firewalld"`
	Zone           string   `json:"firewalldZone,omitempty"`
	ZoneTarget     string   `json:"firewalldZoneTarget,omitempty"`
	ZonePorts      []string `json:"firewalldPorts,omitempty"`
	ZoneServices   []string `json:"firewalldServices,omitempty"`
	Iface          string   `json:"iface,omitempty"`
	MTU            int      `json:"mtu,omitempty"`
	Driver         string   `json:"driver,omitempty"`
	TxChecksum     bool     `json:"txChecksum"`
	Virt           string   `json:"virt,omitempty"`
	// Nets are the host's own addresses and routes (CIDR, device), without
	// the default route and Docker's own bridges.
	Nets []HostNet `json:"nets,omitempty"`
	// Addrs are the host's own IP addresses (not loopback).
	Addrs []string `json:"addrs,omitempty"`
	// Closed lists "ADDR:PORT" of peers this node could not reach over TCP.
	Closed []string `json:"closed,omitempty"`
	// GossipID is the node's own name in the swarm's gossip (memberlist);
	// GossipUDPTo the peers' names that its gossip reached over TCP only,
	// their UDP probes lost, in the last 30 s (dockerd's journal: "network
	// may be misconfigured"). 7946/udp shows nowhere else: gossip falls
	// back to TCP.
	GossipID    string   `json:"gossipId,omitempty"`
	GossipUDPTo []string `json:"gossipUdpTo,omitempty"`
	// NeighEntries is how many entries the kernel's ARP table holds (all
	// its network namespaces), NeighMax its hard limit (gc_thresh3); 0
	// when unknown. Past the limit the kernel drops packets to peers it
	// has no entry for ("neighbor table overflow").
	NeighEntries int `json:"neighEntries,omitempty"`
	NeighMax     int `json:"neighMax,omitempty"`
}

// HostNet is one address or route of a host.
type HostNet struct {
	Prefix string `json:"prefix"`
	Dev    string `json:"dev"`
}

// Target is a TCP port of a peer the node should reach.
type Target struct {
	Addr string
	Port int
}

// FactsScript is the POSIX sh script, run as root in one session, that
// prints a node's facts as KEY=VALUE lines. addr is the node's swarm
// address; targets are the peers' control ports it tries over TCP.
func FactsScript(addr string, targets []Target) string {
	var b strings.Builder
	b.WriteString(`export LC_ALL=C PATH="$PATH:/sbin:/usr/sbin"
has() { command -v "$1" >/dev/null 2>&1; }
mod() { if [ -d "/sys/module/$1" ] || grep -q "^$1 " /proc/modules 2>/dev/null; then echo 1; else echo 0; fi; }
ipvs=$(mod ip_vs); [ -e /proc/net/ip_vs ] && ipvs=1
echo "ipvs=$ipvs"
echo "vxlan=$(mod vxlan)"
echo "br_netfilter=$(mod br_netfilter)"
echo "bridge_nf=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)"
has iptables && echo "iptables_mode=$(iptables -V 2>/dev/null | sed -n 's/.*(\(.*\)).*/\1/p')"
has iptables-legacy-save && echo "iptables_legacy=$(iptables-legacy-save 2>/dev/null | grep -c '^-A')"
has iptables-nft-save && echo "iptables_nft=$(iptables-nft-save 2>/dev/null | grep -c '^-A')"
`)
	fmt.Fprintf(&b, "addr=%s\n", shell.Quote(addr))
	b.WriteString(`iface=$(ip -o addr show 2>/dev/null | awk -v a="$addr" '{split($4,p,"/"); if (p[1]==a) {print $2; exit}}')
echo "iface=$iface"
if [ -n "$iface" ]; then
  echo "mtu=$(cat /sys/class/net/$iface/mtu 2>/dev/null)"
  d=$(readlink /sys/class/net/$iface/device/driver 2>/dev/null); echo "driver=${d##*/}"
  has ethtool && echo "tx_checksum=$(ethtool -k "$iface" 2>/dev/null | sed -n 's/^tx-checksumming: \([a-z]*\).*/\1/p')"
fi
if has systemctl && systemctl is-active -q firewalld 2>/dev/null && has firewall-cmd; then
  echo "firewalld=1"
  z=$(firewall-cmd --get-zone-of-interface="$iface" 2>/dev/null || firewall-cmd --get-default-zone 2>/dev/null)
  echo "zone=$z"
  echo "zone_target=$(firewall-cmd --permanent --zone="$z" --get-target 2>/dev/null)"
  echo "zone_ports=$(firewall-cmd --zone="$z" --list-ports 2>/dev/null)"
  echo "zone_services=$(firewall-cmd --zone="$z" --list-services 2>/dev/null)"
fi
has systemd-detect-virt && echo "virt=$(systemd-detect-virt 2>/dev/null)"
echo "neigh_max=$(cat /proc/sys/net/ipv4/neigh/default/gc_thresh3 2>/dev/null)"
e=$(awk 'NR==2 {print $1}' /proc/net/stat/arp_cache 2>/dev/null); [ -n "$e" ] && echo "neigh_entries=$(printf '%d' "0x$e" 2>/dev/null)"
ip -o -4 addr show 2>/dev/null | awk '{print "net=" $4 " " $2; split($4,p,"/"); print "ip=" p[1] " " $2}'
ip -o -6 addr show scope global 2>/dev/null | awk '{split($4,p,"/"); print "ip=" p[1] " " $2}'
ip -4 route show 2>/dev/null | awk '$1!="default" {d=""; for(i=1;i<NF;i++) if ($i=="dev") d=$(i+1); print "net=" $1 " " d}'
`)
	for _, t := range targets {
		// bash's /dev/tcp, bounded; a host without bash reports nothing.
		hp := fmt.Sprintf("%s:%d", t.Addr, t.Port)
		fmt.Fprintf(&b, "has bash && { timeout 3 bash -c %s >/dev/null 2>&1 || echo closed=%s; }\n",
			shell.Quote(fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", t.Addr, t.Port)), shell.Quote(hp))
	}
	return b.String()
}

// GossipComplaintsScript prints a gossip_udp_to= line (for ParseFacts)
// per peer the node's gossip reached over TCP only, its UDP probes lost,
// in dockerd's journal of the last since ("Was able to connect to ID ...
// network may be misconfigured"): 7946/udp shows nowhere else. The check
// reads them once its probe is done, since the check began: a node that
// just joined (or joined again at a new address) complains for a while
// before, and that is not a fault of the swarm as it is.
func GossipComplaintsScript(since time.Duration) string {
	secs := max(1, int(math.Ceil(since.Seconds())))
	return fmt.Sprintf("command -v journalctl >/dev/null 2>&1 && journalctl -u docker --no-pager --since -%ds 2>/dev/null | sed -n 's/.*memberlist: Was able to connect to \\([0-9a-f]*\\) .*network may be misconfigured.*/gossip_udp_to=\\1/p' | sort -u\n", secs)
}

// GossipIDScript prints the node's own name in the swarm's gossip
// (gossip_id=, for ParseFacts), from dockerd's journal since its start:
// the one costly read of the facts (up to 20,000 journal lines), so it
// runs only when some node's gossip complained of a peer (NeedGossipIDs).
const GossipIDScript = `export LC_ALL=C PATH="$PATH:/sbin:/usr/sbin"
command -v journalctl >/dev/null 2>&1 && echo "gossip_id=$(journalctl -u docker --no-pager -n 20000 2>/dev/null | sed -n 's/.*will use memberlist nodeID:\([0-9a-f]*\).*/\1/p' | tail -n 1)"
`

// NeedGossipIDs says whether some node's gossip complained of a peer:
// only then are the nodes' gossip names needed (to tell who the peer is).
func NeedGossipIDs(fs []Facts) bool {
	for _, f := range fs {
		if len(f.GossipUDPTo) > 0 {
			return true
		}
	}
	return false
}

// dockerDev tells Docker's own bridges and veths, whose nets are not the
// host's network.
func dockerDev(dev string) bool {
	return dev == "docker0" || dev == "docker_gwbridge" || strings.HasPrefix(dev, "br-") || strings.HasPrefix(dev, "veth") || dev == "lo"
}

// ParseFacts reads FactsScript's output (untrusted text from the host).
func ParseFacts(node, out string) Facts {
	f := Facts{Node: node, Read: true}
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			f.set(k, strings.TrimSpace(v), seen)
		}
	}
	return f
}

// set takes one key=value line of FactsScript's; unknown keys are left.
func (f *Facts) set(k, v string, seen map[string]bool) {
	strs := map[string]*string{"bridge_nf": &f.BridgeNFCall, "iptables_mode": &f.IptablesMode, "iface": &f.Iface,
		"driver": &f.Driver, "zone": &f.Zone, "zone_target": &f.ZoneTarget, "virt": &f.Virt}
	flags := map[string]*bool{"ipvs": &f.IPVS, "vxlan": &f.VXLAN, "br_netfilter": &f.BrNetfilter, "firewalld": &f.Firewalld}
	nums := map[string]*int{"iptables_legacy": &f.IptablesLegacy, "iptables_nft": &f.IptablesNft, "mtu": &f.MTU,
		"neigh_entries": &f.NeighEntries, "neigh_max": &f.NeighMax}
	lists := map[string]*[]string{"zone_ports": &f.ZonePorts, "zone_services": &f.ZoneServices}
	if p, ok := strs[k]; ok {
		*p = v
	} else if p, ok := flags[k]; ok {
		*p = v == "1"
	} else if p, ok := nums[k]; ok {
		*p, _ = strconv.Atoi(v)
	} else if p, ok := lists[k]; ok {
		*p = strings.Fields(v)
	}
	f.setOther(k, v, seen)
}

// setOther takes the keys whose values are read their own way.
func (f *Facts) setOther(k, v string, seen map[string]bool) {
	switch k {
	case "tx_checksum":
		f.TxChecksum = v == "on"
	case "net":
		f.addNet(v, seen)
	case "ip":
		f.addAddr(v)
	case "closed":
		f.Closed = append(f.Closed, v)
	case "gossip_id":
		if gossipName(v) {
			f.GossipID = v
		}
	case "gossip_udp_to":
		if gossipName(v) && len(f.GossipUDPTo) < 1000 {
			f.GossipUDPTo = append(f.GossipUDPTo, v)
		}
	}
}

// gossipName tells a memberlist node name as dockerd makes them: hex.
func gossipName(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// addAddr keeps one of the host's own addresses, not Docker's bridges'.
func (f *Facts) addAddr(v string) {
	addr, dev, _ := strings.Cut(v, " ")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.IsLoopback() || dockerDev(strings.TrimSpace(dev)) {
		return
	}
	f.Addrs = append(f.Addrs, a.String())
}

func (f *Facts) addNet(v string, seen map[string]bool) {
	pfx, dev, _ := strings.Cut(v, " ")
	dev = strings.TrimSpace(dev)
	p, err := netip.ParsePrefix(pfx)
	if err != nil {
		a, aerr := netip.ParseAddr(pfx) // a host route
		if aerr != nil {
			return
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if dockerDev(dev) || p.Addr().IsLoopback() || seen[p.Masked().String()] {
		return
	}
	seen[p.Masked().String()] = true
	f.Nets = append(f.Nets, HostNet{Prefix: p.Masked().String(), Dev: dev})
}
