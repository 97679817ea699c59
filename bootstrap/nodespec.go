package bootstrap

import (
	"context"
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// NodeWant is the role, labels and availability a node should have.
type NodeWant struct {
	Role         validate.Role // "" keeps what is there
	Labels       map[string]string
	Availability string // active, pause, drain; "" keeps what is there
}

// NodeChanges applies want to a node's spec: the spec to send and what
// changes ("role=manager", "label zone=a"); nothing when it is right.
func NodeChanges(have swarm.NodeSpec, want NodeWant) (swarm.NodeSpec, []string) {
	spec := have
	var changed []string
	if want.Role != "" && validate.Role(spec.Role) != want.Role {
		spec.Role = swarm.NodeRole(want.Role)
		changed = append(changed, "role="+string(want.Role))
	}
	if want.Availability != "" && string(spec.Availability) != want.Availability {
		spec.Availability = swarm.NodeAvailability(want.Availability)
		changed = append(changed, "availability="+want.Availability)
	}
	if labels, added := labelChanges(have.Labels, want.Labels); labels != nil {
		spec.Labels = labels
		changed = append(changed, added...)
	}
	return spec, changed
}

// labelChanges returns have's labels with want's set (a copy: a listed
// node's map is not written to) and the changes, in key order; nil when
// none changes.
func labelChanges(have, want map[string]string) (map[string]string, []string) {
	var labels map[string]string
	var changed []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v := want[k]
		if cur, ok := have[k]; ok && cur == v {
			continue
		}
		if labels == nil {
			labels = make(map[string]string, len(have)+len(want))
			maps.Copy(labels, have)
		}
		labels[k] = v
		changed = append(changed, "label "+k+"="+v)
	}
	return labels, changed
}

// EnsureNode sets the node's role, labels and availability through a
// manager; it returns what it changed.
func EnsureNode(ctx context.Context, mgr *Node, nodeID string, want NodeWant) ([]string, error) {
	node, _, err := mgr.API.NodeInspectWithRaw(ctx, nodeID)
	if err != nil {
		return nil, fmt.Errorf("%s: node inspect %s: %w", mgr.Name, nodeID, err)
	}
	return updateNode(ctx, mgr, node, want)
}

// updateNode sends what NodeChanges says of node (as listed or inspected,
// with its version); nothing when it is right.
func updateNode(ctx context.Context, mgr *Node, node swarm.Node, want NodeWant) ([]string, error) {
	spec, changed := NodeChanges(node.Spec, want)
	if len(changed) == 0 {
		return nil, nil
	}
	if err := mgr.API.NodeUpdate(ctx, node.ID, node.Version, spec); err != nil {
		return nil, fmt.Errorf("%s: node update %s (%s): %w", mgr.Name, node.ID, strings.Join(changed, ", "), err)
	}
	return changed, nil
}

// EnsureNodes is EnsureNode for many nodes from one node list: only the
// nodes that differ cost a call. A node updated meanwhile (its version
// moved on) is inspected and tried again.
func EnsureNodes(ctx context.Context, mgr *Node, want map[string]NodeWant, parallel int) (map[string][]string, error) {
	listed, err := mgr.API.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: node ls: %w", mgr.Name, err)
	}
	byID := nodesByID(listed)
	out := map[string][]string{}
	var mu sync.Mutex
	err = forEach(ctx, parallel, nodesToChange(byID, want), func(ctx context.Context, id string) error {
		got, err := ensureListed(ctx, mgr, byID, id, want[id])
		if err != nil {
			return err
		}
		mu.Lock()
		out[id] = got
		mu.Unlock()
		return nil
	})
	return out, err
}

// nodesToChange are the IDs, in order, of the nodes the list has not as
// wanted (or not at all).
func nodesToChange(byID map[string]swarm.Node, want map[string]NodeWant) []string {
	var todo []string
	for id, w := range want {
		n, ok := byID[id]
		if _, changes := NodeChanges(n.Spec, w); !ok || len(changes) > 0 {
			todo = append(todo, id)
		}
	}
	sort.Strings(todo)
	return todo
}

// ensureListed updates node id as listed, or as inspected anew when the
// list has it not or it was updated meanwhile.
func ensureListed(ctx context.Context, mgr *Node, byID map[string]swarm.Node, id string, w NodeWant) ([]string, error) {
	n, ok := byID[id]
	var got []string
	var err error
	if ok {
		got, err = updateNode(ctx, mgr, n, w)
	}
	if !ok || err != nil && strings.Contains(err.Error(), "update out of sequence") {
		got, err = EnsureNode(ctx, mgr, id, w)
	}
	return got, err
}

// nodesByID indexes a node list.
func nodesByID(listed []swarm.Node) map[string]swarm.Node {
	byID := make(map[string]swarm.Node, len(listed))
	for _, n := range listed {
		byID[n.ID] = n
	}
	return byID
}

// nodeReady: Ready and, for a manager, reachable.
func nodeReady(n swarm.Node) bool {
	return n.Status.State == swarm.NodeStateReady &&
		(n.Spec.Role != swarm.NodeRoleManager || n.ManagerStatus != nil && n.ManagerStatus.Reachability == swarm.ReachabilityReachable)
}

// NotReady lists the ids that the node list does not show ready, with
// their state (and name, from names), sorted.
func NotReady(listed []swarm.Node, ids []string, names map[string]string) []string {
	byID := nodesByID(listed)
	var out []string
	for _, id := range ids {
		n, ok := byID[id]
		who := id
		if names[id] != "" {
			who = names[id] + " " + Short(id)
		}
		switch {
		case !ok:
			out = append(out, who+" (not in the swarm)")
		case n.Status.State != swarm.NodeStateReady:
			out = append(out, fmt.Sprintf("%s (%s)", who, n.Status.State))
		case !nodeReady(n):
			out = append(out, who+" (a manager not reachable)")
		}
	}
	sort.Strings(out)
	return out
}

// RemoveNode deletes a node that left from the manager's node list.
func RemoveNode(ctx context.Context, mgr *Node, nodeID string) error {
	err := mgr.API.NodeRemove(ctx, nodeID, client.NodeRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%s: node rm %s: %w", mgr.Name, nodeID, err)
	}
	return nil
}

// RemoveStale takes a replaced host's old entry out of the swarm's list
// (a manager entry is demoted first).
func RemoveStale(ctx context.Context, mgr *Node, m Member) error {
	if m.Role == RoleManager {
		if _, err := EnsureNode(ctx, mgr, m.ID, NodeWant{Role: RoleWorker}); err != nil {
			return err
		}
		if err := WaitRole(ctx, mgr, m.ID, RoleWorker, time.Minute); err != nil {
			return err
		}
	}
	return RemoveNode(ctx, mgr, m.ID)
}
