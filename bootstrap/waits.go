package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
)

// WaitRole waits until a node has the role: a manager reachable in Raft,
// a worker without manager status.
func WaitRole(ctx context.Context, mgr *Node, id, role string, timeout time.Duration) error {
	return WaitNode(ctx, mgr, id, timeout, func(n swarm.Node) bool {
		if role == RoleManager {
			return n.ManagerStatus != nil && n.ManagerStatus.Reachability == swarm.ReachabilityReachable
		}
		return n.ManagerStatus == nil
	})
}

// WaitNode polls a manager until ok says yes about the node, bounded.
func WaitNode(ctx context.Context, mgr *Node, id string, timeout time.Duration, ok func(swarm.Node) bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		n, _, err := mgr.API.NodeInspectWithRaw(ctx, id)
		if err == nil && ok(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s on %s: %w", Short(id), mgr.Name, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

func waitState(ctx context.Context, n *Node, state string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		s, err := n.State(ctx)
		if err == nil && s.LocalNodeState == state {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for swarm state %s (now %s): %w", n.Name, state, s.LocalNodeState, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// waitLeft waits (bounded, without failing) until a manager sees a node that
// left as not Ready, or no longer lists it.
func waitLeft(ctx context.Context, mgr *Node, id string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		n, _, err := mgr.API.NodeInspectWithRaw(ctx, id)
		if errdefs.IsNotFound(err) || err == nil && n.Status.State != swarm.NodeStateReady {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollInterval):
		}
	}
}

// pollInterval is how often waits ask again.
const pollInterval = 250 * time.Millisecond

// WaitReady waits until the manager sees the node Ready (and, for a
// manager, reachable).
func WaitReady(ctx context.Context, mgr *Node, nodeID string, timeout time.Duration) error {
	return WaitAllReady(ctx, mgr, []string{nodeID}, nil, timeout)
}

// WaitAllReady waits until the manager's node list shows every one of
// ids Ready (a manager also reachable): one list a poll, whatever the
// number of nodes. names (id to name, may be nil) are for the error.
func WaitAllReady(ctx context.Context, mgr *Node, ids []string, names map[string]string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		listed, err := mgr.API.NodeList(ctx, swarm.NodeListOptions{})
		var left []string
		if err == nil {
			if left = NotReady(listed, ids, names); len(left) == 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			why := strings.Join(left, ", ")
			if err != nil {
				why = err.Error()
			}
			return fmt.Errorf("nodes not ready on %s: %s: %w", mgr.Name, why, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
