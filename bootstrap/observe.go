package bootstrap

import (
	"context"
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"net"
	"sync"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Observe reads every node's swarm state in parallel; an engine that does
// not answer is recorded, not fatal.
func Observe(ctx context.Context, parallel int, nodes []*Node) Observed {
	obs := Observed{States: map[string]State{}, Unreachable: map[string]string{}}
	var mu sync.Mutex
	_ = forEach(ctx, parallel, nodes, func(ctx context.Context, n *Node) error {
		s, err := n.State(ctx)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			obs.Unreachable[n.Name] = err.Error()
		} else {
			obs.States[n.Name] = s
		}
		return nil
	})
	return obs
}

// observeKnown is Observe, taking the known states instead of asking
// those nodes when first is set.
func observeKnown(ctx context.Context, parallel int, nodes []*Node, known map[string]State, first bool) Observed {
	if !first || len(known) == 0 {
		return Observe(ctx, parallel, nodes)
	}
	var ask []*Node
	for _, n := range nodes {
		if _, ok := known[n.Name]; !ok {
			ask = append(ask, n)
		}
	}
	obs := Observe(ctx, parallel, ask)
	for _, n := range nodes {
		if s, ok := known[n.Name]; ok {
			obs.States[n.Name] = s
		}
	}
	return obs
}

// Members lists the swarm's nodes as a manager sees them.
func Members(ctx context.Context, mgr *Node) ([]Member, error) {
	nodes, err := mgr.API.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: node ls: %w", mgr.Name, err)
	}
	out := make([]Member, 0, len(nodes))
	for _, n := range nodes {
		m := Member{
			ID: n.ID, Hostname: n.Description.Hostname, Addr: n.Status.Addr, Role: validate.Role(n.Spec.Role),
			Ready: n.Status.State == swarm.NodeStateReady, Availability: string(n.Spec.Availability),
		}
		if n.ManagerStatus != nil {
			m.Reachable = n.ManagerStatus.Reachability == swarm.ReachabilityReachable
			m.Leader = n.ManagerStatus.Leader
			// A manager is reached at its Raft address.
			if h, _, err := net.SplitHostPort(n.ManagerStatus.Addr); err == nil {
				m.Addr = h
			}
		}
		if m.Addr == "0.0.0.0" {
			m.Addr = ""
		}
		out = append(out, m)
	}
	return out, nil
}
