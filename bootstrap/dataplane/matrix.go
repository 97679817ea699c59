package dataplane

import (
	"fmt"
	"sort"
	"strings"
)

// portFindings: control ports a node's peers could not reach. A port no
// peer reaches is closed on its node (one finding); else the pair fails.
func portFindings(in Input) []Finding {
	unreached, tried := unreachedPorts(in), triedPorts(in)
	var out []Finding
	for _, to := range in.Nodes {
		for _, port := range sortedKeys(unreached[to]) {
			from := unreached[to][port]
			closed := len(from) >= tried[to][port] && tried[to][port] > 1 || len(in.Nodes) == 2
			out = append(out, portFinding(to, port, from, closed)...)
		}
	}
	return out
}

// unreachedPorts reads the nodes' closed=ADDR:PORT facts:
// [target node][port] = the nodes that could not reach it.
func unreachedPorts(in Input) map[string]map[string][]string {
	byAddr := map[string]string{}
	for n, a := range in.Addrs {
		byAddr[a] = n
	}
	unreached := map[string]map[string][]string{}
	for _, f := range readFacts(in) {
		for _, c := range f.Closed {
			i := strings.LastIndex(c, ":")
			if i < 0 {
				continue
			}
			to, ok := byAddr[c[:i]]
			if !ok {
				continue
			}
			if unreached[to] == nil {
				unreached[to] = map[string][]string{}
			}
			unreached[to][c[i+1:]] = append(unreached[to][c[i+1:]], f.Node)
		}
	}
	return unreached
}

// triedPorts counts the peers that tried each node's ports:
// [target node][port] = how many.
func triedPorts(in Input) map[string]map[string]int {
	tried := map[string]map[string]int{}
	for _, n := range in.Nodes {
		tried[n] = map[string]int{}
		for _, f := range readFacts(in) {
			if f.Node != n {
				tried[n]["7946"]++
				if in.Managers[n] {
					tried[n]["2377"]++
				}
			}
		}
	}
	return tried
}

// portFinding is the fault of one port of node to that the nodes from
// could not reach: closed on to, or one fault for each pair.
func portFinding(to, port string, from []string, closed bool) []Finding {
	what := "gossip: overlay networks, service discovery"
	if port == "2377" {
		what = "the managers' control plane"
	}
	if closed {
		return []Finding{{Kind: Fault, Node: to, Check: port + "/tcp",
			Cause: fmt.Sprintf("%s/tcp on %s is not reachable from its peers (%s)", port, to, what),
			Fix:   fmt.Sprintf("open %s/tcp on %s (iptables/firewalld INPUT), or let shoal manage the firewall", port, to)}}
	}
	var out []Finding
	for _, fr := range from {
		out = append(out, Finding{Kind: Fault, Node: fr, Peer: to, Check: port + "/tcp",
			Cause: fmt.Sprintf("%s cannot reach %s/tcp on %s (%s)", fr, port, to, what),
			Fix:   fmt.Sprintf("check the firewalls and routes between %s and %s", fr, to)})
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// blamed returns the nodes all of whose probe pairs (both ways) fail by
// bad, when failures there are and a node is the one end of them all;
// with two nodes it cannot tell which end is at fault.
func blamed(in Input, bad func(Cell) bool) []string {
	if len(in.Nodes) < 3 {
		return nil
	}
	total, failed := countEnds(in.Matrix.Cells, bad)
	var out []string
	for _, n := range in.Nodes {
		if total[n] > 0 && failed[n] == total[n] {
			out = append(out, n)
		}
	}
	// Every node blamed is nobody in particular: the pairs speak.
	if len(out) == len(in.Nodes) {
		return nil
	}
	return out
}

// countEnds counts, by node, the cells it is an end of and those of them
// that are bad.
func countEnds(cells []Cell, bad func(Cell) bool) (total, failed map[string]int) {
	total, failed = map[string]int{}, map[string]int{}
	for _, c := range cells {
		for _, n := range []string{c.From, c.To} {
			total[n]++
			if bad(c) {
				failed[n]++
			}
		}
	}
	return total, failed
}

func smallBad(c Cell) bool { return c.Small == Failed }
func bigBad(c Cell) bool   { return c.Small == OK && c.Big == Failed }

// matrixFindings explains the probe's failed cells: by one node when it
// is the end of all of them, else pair by pair; a node already named by a
// fact (closed port, MTU, firewalld) is not named twice.
func matrixFindings(in Input, known []Finding) []Finding {
	out := missingFindings(in)
	named := namedByFacts(known)
	small := blamed(in, smallBad)
	big := blamed(in, bigBad)
	for _, n := range small {
		if named[n]["7946/tcp"] || named[n]["7946/udp"] || named[n]["firewalld"] || named[n]["address"] {
			continue
		}
		out = append(out, Finding{Kind: Fault, Node: n, Check: fmt.Sprintf("%d/udp", in.DataPathPort),
			Cause: fmt.Sprintf("%d/udp (VXLAN) is dropped on %s: overlay traffic to and from %s is lost%s", in.DataPathPort, n, n, hints(in, n)),
			Fix:   fmt.Sprintf("open %d/udp on %s (iptables/firewalld INPUT), or let shoal manage the firewall", in.DataPathPort, n)})
	}
	for _, n := range big {
		if named[n]["mtu"] {
			continue
		}
		out = append(out, Finding{Kind: Fault, Node: n, Check: "mtu",
			Cause: fmt.Sprintf("packets of %d bytes over the overlay do not cross between %s and its peers (small ones do): a link on the path has a smaller MTU", in.OverlayMTU, n),
			Fix:   fmt.Sprintf("set swarm { overlay_mtu = N } with N the path's MTU less 50 (below %d)", in.OverlayMTU)})
	}
	out = append(out, pairFindings(in, small, big)...)
	return append(out, dnsFindings(in, named)...)
}

// missingFindings: nodes without a probe result (a warning when the probe's
// image is optional and missing there).
func missingFindings(in Input) []Finding {
	var out []Finding
	for _, n := range sortedKeys(in.Matrix.Missing) {
		if in.ImageOptional && in.Matrix.NoImage[n] {
			out = append(out, Finding{Kind: Warning, Node: n, Check: "probe", Cause: fmt.Sprintf("the data plane of %s was not tested: %s", n, in.Matrix.Missing[n]),
				Fix: "load the probe's image on every node (image_archives), then run 'cluster check'; or skip the check with --skip-check"})
			continue
		}
		out = append(out, Finding{Kind: Fault, Node: n, Check: "probe", Cause: fmt.Sprintf("no probe result from %s: %s", n, in.Matrix.Missing[n]),
			Fix: "see the cause; run 'cluster check' again once it is fixed"})
	}
	return out
}

// namedByFacts: the checks a fact already faulted each node on.
func namedByFacts(known []Finding) map[string]map[string]bool {
	named := map[string]map[string]bool{}
	for _, f := range known {
		if f.Kind == Fault && f.Node != "" && f.Peer == "" {
			if named[f.Node] == nil {
				named[f.Node] = map[string]bool{}
			}
			named[f.Node][f.Check] = true
		}
	}
	return named
}

// dnsFindings: nodes whose service discovery failed; a node at a stale
// address explains the names the others lack.
func dnsFindings(in Input, named map[string]map[string]bool) []Finding {
	for n := range named {
		if named[n]["address"] || named[n]["7946/udp"] {
			return nil // gossip carries the names: that fault explains them
		}
	}
	var out []Finding
	for _, n := range sortedKeys(in.Matrix.DNS) {
		if in.Matrix.DNS[n] != "" {
			out = append(out, Finding{Kind: Fault, Node: n, Check: "dns",
				Cause: fmt.Sprintf("service discovery on %s: %s", n, in.Matrix.DNS[n]),
				Fix:   fmt.Sprintf("check 7946/tcp+udp between %s and the other nodes (gossip carries the names)", n)})
		}
	}
	return out
}

// hints adds what a node's facts suggest about a dropped overlay.
func hints(in Input, n string) string {
	f := in.Facts[n]
	var h []string
	if f.Driver == "vmxnet3" && f.TxChecksum {
		h = append(h, "its vmxnet3 NIC has tx checksum offload on")
	}
	if f.IptablesLegacy > 0 && f.IptablesNft > 0 {
		h = append(h, "it has both iptables-legacy and iptables-nft rules")
	}
	if len(h) == 0 {
		return ""
	}
	return " (" + strings.Join(h, "; ") + ")"
}

// pairFindings names failed cells not explained by a blamed node.
func pairFindings(in Input, small, big []string) []Finding {
	skip := map[string]bool{}
	for _, n := range append(append([]string{}, small...), big...) {
		skip[n] = true
	}
	var out []Finding
	for _, c := range in.Matrix.Cells {
		if skip[c.From] || skip[c.To] {
			continue
		}
		what := ""
		switch {
		case smallBad(c):
			what = "overlay packets do not cross"
		case bigBad(c):
			what = fmt.Sprintf("overlay packets of %d bytes do not cross (small ones do: MTU)", in.OverlayMTU)
		default:
			continue
		}
		out = append(out, Finding{Kind: Fault, Node: c.From, Peer: c.To, Check: "overlay",
			Cause: fmt.Sprintf("%s from %s to %s", what, c.From, c.To),
			Fix:   fmt.Sprintf("check %d/udp and the path MTU between %s and %s", in.DataPathPort, c.From, c.To)})
	}
	return out
}
