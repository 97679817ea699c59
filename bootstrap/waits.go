package bootstrap

import (
	"context"
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/wait"
)

// pollInterval is how often waits ask again.
const pollInterval = 250 * time.Millisecond

// WaitRole waits until a node has the role: a manager reachable in Raft,
// a worker without manager status.
func WaitRole(ctx context.Context, mgr *Node, id string, role validate.Role, timeout time.Duration) error {
	return WaitNode(ctx, mgr, id, timeout, func(n swarm.Node) bool {
		if role == RoleManager {
			return n.ManagerStatus != nil && n.ManagerStatus.Reachability == swarm.ReachabilityReachable
		}
		return n.ManagerStatus == nil
	})
}

// WaitNode polls a manager until ok says yes about the node, bounded.
func WaitNode(ctx context.Context, mgr *Node, id string, timeout time.Duration, ok func(swarm.Node) bool) error {
	err := wait.Poll(ctx, pollInterval, timeout, func(ctx context.Context) (bool, error) {
		n, _, err := mgr.API.NodeInspectWithRaw(ctx, id)
		return err == nil && ok(n), nil
	})
	if err != nil {
		return fmt.Errorf("node %s on %s: %w", Short(id), mgr.Name, err)
	}
	return nil
}

// waitState waits until the node's engine says its swarm state is state.
func waitState(ctx context.Context, n *Node, state string, timeout time.Duration) error {
	var last State
	err := wait.Poll(ctx, pollInterval, timeout, func(ctx context.Context) (bool, error) {
		s, err := n.State(ctx)
		last = s
		return err == nil && s.LocalNodeState == state, nil
	})
	if err != nil {
		return fmt.Errorf("%s: waiting for swarm state %s (now %s): %w", n.Name, state, last.LocalNodeState, err)
	}
	return nil
}

// waitLeft waits (bounded, without failing) until a manager sees a node that
// left as not Ready, or no longer lists it.
func waitLeft(ctx context.Context, mgr *Node, id string) {
	_ = wait.Poll(ctx, pollInterval, 30*time.Second, func(ctx context.Context) (bool, error) {
		n, _, err := mgr.API.NodeInspectWithRaw(ctx, id)
		return cerrdefs.IsNotFound(err) || err == nil && n.Status.State != swarm.NodeStateReady, nil
	})
}

// WaitReady waits until the manager sees the node Ready (and, for a
// manager, reachable).
func WaitReady(ctx context.Context, mgr *Node, nodeID string, timeout time.Duration) error {
	return WaitAllReady(ctx, mgr, []string{nodeID}, nil, timeout)
}

// WaitAllReady waits until the manager's node list shows every one of
// ids Ready (a manager also reachable): one list a poll, whatever the
// number of nodes. names (id to name, may be nil) are for the error.
func WaitAllReady(ctx context.Context, mgr *Node, ids []string, names map[string]string, timeout time.Duration) error {
	var why string
	err := wait.Poll(ctx, 200*time.Millisecond, timeout, func(ctx context.Context) (bool, error) {
		listed, err := mgr.API.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		left := NotReady(listed, ids, names)
		why = strings.Join(left, ", ")
		return len(left) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes not ready on %s: %s: %w", mgr.Name, why, err)
	}
	return nil
}
