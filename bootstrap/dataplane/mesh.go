package dataplane

import "fmt"

func meshBad(c Cell) bool { return c.Mesh == Failed }

// meshFindings explains what the VIP and routing mesh tests saw (only run
// where every kernel has IP_VS). Both ride the overlay: a node whose
// overlay already failed, or that a fact named, is not blamed again.
func meshFindings(in Input, known []Finding) []Finding {
	if len(in.Matrix.VIP) == 0 {
		return nil
	}
	explained := map[string]bool{}
	for _, f := range known {
		if f.Kind != Fault {
			continue
		}
		for _, n := range []string{f.Node, f.Peer} {
			if n != "" {
				explained[n] = true
			}
		}
	}
	out := vipFindings(in, explained)
	return append(out, routingMeshFindings(in, explained)...)
}

// vipFindings: nodes whose task could not reach the responder through its
// virtual IP; every node failing is one fault of the swarm.
func vipFindings(in Input, explained map[string]bool) []Finding {
	var failed []string
	for _, n := range sortedKeys(in.Matrix.VIP) {
		if in.Matrix.VIP[n] != OK && !explained[n] {
			failed = append(failed, n)
		}
	}
	if len(failed) > 1 && len(failed) == len(in.Matrix.VIP) {
		return []Finding{{Kind: Fault, Check: "vip",
			Cause: "a service's virtual IP answers on no node (its tasks answer by DNS round robin): IPVS load balancing in the tasks' namespaces does not work",
			Fix:   "load ip_vs, ip_vs_rr and nf_conntrack on every node, keep iptables on one backend (legacy or nft), then restart dockerd"}}
	}
	var out []Finding
	for _, n := range failed {
		out = append(out, Finding{Kind: Fault, Node: n, Check: "vip",
			Cause: fmt.Sprintf("a service's virtual IP does not answer from tasks on %s (the other nodes reach it)", n),
			Fix:   fmt.Sprintf("on %s: load ip_vs, ip_vs_rr and nf_conntrack, keep iptables on one backend, then restart dockerd", n)})
	}
	return out
}

// routingMeshFindings: published ports that did not answer at a node's
// address, by the node when no peer got through it, else pair by pair.
func routingMeshFindings(in Input, explained map[string]bool) []Finding {
	port := in.Matrix.MeshPort
	cells := unexplainedCells(in.Matrix.Cells, explained)
	dead := deadMeshNodes(in.Nodes, cells)
	var out []Finding
	for _, n := range in.Nodes {
		if dead[n] {
			out = append(out, Finding{Kind: Fault, Node: n, Check: "routing-mesh",
				Cause: fmt.Sprintf("the routing mesh on %s does not answer: a port published by a service (%d/tcp) is not served at %s's address", n, port, n),
				Fix:   fmt.Sprintf("on %s: let published ports through the firewall (INPUT and FORWARD), check 'docker network inspect ingress'; restarting dockerd rebuilds its ingress", n)})
		}
	}
	for _, c := range cells {
		if meshBad(c) && !dead[c.To] {
			out = append(out, Finding{Kind: Fault, Node: c.From, Peer: c.To, Check: "routing-mesh",
				Cause: fmt.Sprintf("from %s, the port %d/tcp published at %s does not answer through the routing mesh", c.From, port, c.To),
				Fix:   fmt.Sprintf("check the firewalls between %s and %s for published ports", c.From, c.To)})
		}
	}
	return out
}

// unexplainedCells are the cells neither end of which a fault already
// explains.
func unexplainedCells(cells []Cell, explained map[string]bool) []Cell {
	var out []Cell
	for _, c := range cells {
		if !explained[c.From] && !explained[c.To] {
			out = append(out, c)
		}
	}
	return out
}

// deadMeshNodes are the nodes whose routing mesh no peer got through (with
// two nodes, the one peer is enough to say so; else at least two).
func deadMeshNodes(nodes []string, cells []Cell) map[string]bool {
	total, failed := map[string]int{}, map[string]int{}
	for _, c := range cells {
		if c.Mesh != Skipped {
			total[c.To]++
		}
		if meshBad(c) {
			failed[c.To]++
		}
	}
	dead := map[string]bool{}
	for _, n := range nodes {
		if total[n] > 0 && failed[n] == total[n] && (total[n] > 1 || len(nodes) == 2) {
			dead[n] = true
		}
	}
	return dead
}
