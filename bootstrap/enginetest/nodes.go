package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// only refuses filters the fake does not implement, so that a test never
// passes on a filter silently ignored.
func only(args client.Filters, keys ...string) error {
	for _, k := range slices.Sorted(maps.Keys(args)) {
		if !slices.Contains(keys, k) {
			return fmt.Errorf("enginetest: filter %q not implemented", k)
		}
	}
	return nil
}

// get is a filter's values (client.Filters keeps them as a set).
func get(f client.Filters, key string) []string {
	return slices.Sorted(maps.Keys(f[key]))
}

func (e *Engine) NodeList(ctx context.Context, options client.NodeListOptions) ([]swarm.Node, error) {
	defer e.end()
	c, err := e.manage("NodeList")
	if err != nil {
		return nil, err
	}
	if err := only(options.Filters, "role"); err != nil {
		return nil, err
	}
	var out []swarm.Node
	for _, n := range c.nodes {
		if roles := get(options.Filters, "role"); len(roles) == 0 || slices.Contains(roles, string(n.role)) {
			out = append(out, c.apiNode(n))
		}
	}
	return out, nil
}

func (e *Engine) NodeInspectWithRaw(ctx context.Context, nodeID string) (swarm.Node, []byte, error) {
	defer e.end()
	c, err := e.manage("NodeInspect " + nodeID)
	if err != nil {
		return swarm.Node{}, nil, err
	}
	n := c.node(nodeID)
	if n == nil {
		return swarm.Node{}, nil, notFound(fmt.Errorf("node %s not found", nodeID))
	}
	out := c.apiNode(n)
	raw, err := json.Marshal(out)
	return out, raw, err
}

func (e *Engine) NodeUpdate(ctx context.Context, nodeID string, version swarm.Version, spec swarm.NodeSpec) error {
	defer e.end()
	c, err := e.manage("NodeUpdate " + nodeID)
	if err != nil {
		return err
	}
	n := c.node(nodeID)
	switch {
	case n == nil:
		return notFound(fmt.Errorf("node %s not found", nodeID))
	case version.Index != n.version:
		return errSequence
	case spec.Role != swarm.NodeRoleManager && spec.Role != swarm.NodeRoleWorker:
		return invalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = invalid role %q", spec.Role))
	case !slices.Contains([]swarm.NodeAvailability{swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain}, spec.Availability):
		return invalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = invalid availability %q", spec.Availability))
	}
	if n.role == swarm.NodeRoleManager && spec.Role == swarm.NodeRoleWorker {
		all, reachable := c.managers()
		if c.inRaft(n) {
			reachable--
		}
		if all == 1 {
			return invalidParameter(errors.New("rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm"))
		}
		if reachable < (all-1)/2+1 {
			return invalidParameter(errors.New("rpc error: code = FailedPrecondition desc = can't remove member from the raft: this would result in a loss of quorum"))
		}
	}
	switch { // a new manager's Raft address is where it is now
	case n.role == swarm.NodeRoleWorker && spec.Role == swarm.NodeRoleManager:
		n.raft = n.addr
	case spec.Role == swarm.NodeRoleWorker:
		n.raft = ""
	}
	n.role, n.avail, n.labels = spec.Role, spec.Availability, copyMap(spec.Labels)
	n.version = c.bump()
	c.settle()
	return nil
}

func (e *Engine) NodeRemove(ctx context.Context, nodeID string, options client.NodeRemoveOptions) error {
	defer e.end()
	c, err := e.manage("NodeRemove " + nodeID)
	if err != nil {
		return err
	}
	n := c.node(nodeID)
	switch {
	case n == nil:
		return notFound(fmt.Errorf("node %s not found", nodeID))
	case n.role == swarm.NodeRoleManager:
		return invalidParameter(fmt.Errorf("rpc error: code = FailedPrecondition desc = node %s is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal", n.id))
	case c.ready(n) && !options.Force:
		return invalidParameter(fmt.Errorf("rpc error: code = FailedPrecondition desc = node %s is not down and can't be removed", n.id))
	}
	c.nodes = slices.DeleteFunc(c.nodes, func(m *entry) bool { return m == n })
	if o := n.eng; o != nil && o.c == c && o.nodeID == n.id {
		// A node removed while up loses its membership.
		o.state, o.errMsg = swarm.LocalNodeStateError, "rpc error: code = PermissionDenied desc = node was removed from the swarm"
		n.eng = nil
	}
	c.bump()
	c.settle()
	return nil
}
