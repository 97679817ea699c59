package dataplane

import (
	"fmt"
	"strings"
)

// gossipUDPFindings: 7946/udp lost between nodes, as their gossip saw it
// (peers reached over TCP only). When it is dropped on one node, every
// peer's probes of that node fail, and that node's of every peer (their
// answers are dropped): the node all others name is the one. Else each
// node that saw it is named with the peers it saw.
func gossipUDPFindings(in Input) []Finding {
	byID := map[string]string{}
	for _, f := range readFacts(in) {
		if f.GossipID != "" {
			byID[f.GossipID] = f.Node
		}
	}
	named := map[string]map[string]bool{} // target node -> the nodes naming it
	var reporters []Facts
	for _, f := range readFacts(in) {
		if len(f.GossipUDPTo) == 0 {
			continue
		}
		reporters = append(reporters, f)
		for _, id := range f.GossipUDPTo {
			to := byID[id]
			if to == "" {
				to = "gossip node " + id
			}
			if named[to] == nil {
				named[to] = map[string]bool{}
			}
			named[to][f.Node] = true
		}
	}
	if len(reporters) == 0 {
		return nil
	}
	if n := namedByAllOthers(in, named); n != "" {
		return []Finding{{Kind: Fault, Node: n, Check: "7946/udp",
			Cause: fmt.Sprintf("7946/udp is dropped on %s: its peers' gossip reaches it over TCP only (dockerd: \"network may be misconfigured\"); service names and overlay endpoints spread late or not at all", n),
			Fix:   fmt.Sprintf("open 7946/udp on %s (iptables/firewalld INPUT), or let shoal manage the firewall", n)}}
	}
	var out []Finding
	for _, f := range reporters {
		var peers []string
		for _, id := range f.GossipUDPTo {
			peers = append(peers, nameOr(byID[id], "gossip node "+id))
		}
		out = append(out, Finding{Kind: Fault, Node: f.Node, Check: "7946/udp",
			Cause: fmt.Sprintf("gossip from %s reaches %s over TCP only: 7946/udp is lost between them", f.Node, strings.Join(peers, ", ")),
			Fix:   fmt.Sprintf("open 7946/udp between %s and %s (both ways)", f.Node, strings.Join(peers, ", "))})
	}
	return out
}

// namedByAllOthers is the one node (of three or more) that every other
// node names, or that names every other node itself (its own probes' acks
// are dropped too), or "". The complaints come as memberlist happens to
// probe, so within a short window one side may be missing.
func namedByAllOthers(in Input, named map[string]map[string]bool) string {
	if len(in.Nodes) < 3 {
		return ""
	}
	names := map[string]int{} // node -> how many peers it names
	for _, by := range named {
		for n := range by {
			names[n]++
		}
	}
	found := ""
	for _, n := range in.Nodes {
		if len(named[n]) == len(in.Nodes)-1 && !named[n][n] || names[n] == len(in.Nodes)-1 {
			if found != "" {
				return ""
			}
			found = n
		}
	}
	return found
}

func nameOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
