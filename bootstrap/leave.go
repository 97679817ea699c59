package bootstrap

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Leave makes the node leave its swarm when it is in one, and says whether
// it left. force: leave even as a manager whose going costs the quorum (a
// swarm taken apart, a node that joins another swarm).
func Leave(ctx context.Context, n *Node, force bool) (left bool, err error) {
	s, err := n.State(ctx)
	if err != nil {
		return false, err
	}
	if !s.Active() {
		return false, nil
	}
	if err := n.Leave(ctx, force); err != nil {
		return false, err
	}
	return true, nil
}

// leaveWait bounds LeaveThrough's waits for the swarm to see the change.
const leaveWait = 30 * time.Second

// LeaveThrough takes the node (whose state is s) out of its swarm through
// via, another live manager of it (nil: none answers): a manager is
// demoted first, so that the others keep their quorum; the node leaves;
// and via drops it from the node list once it sees it down (bounded). Only
// the last manager, or one whose peers cannot be reached, must force.
func LeaveThrough(ctx context.Context, n *Node, s State, via *Node) error {
	if s.Manager && via != nil {
		if _, err := EnsureNode(ctx, via, s.NodeID, NodeWant{Role: RoleWorker}); err != nil {
			return err
		}
		if err := WaitRole(ctx, via, s.NodeID, RoleWorker, leaveWait); err != nil {
			return err
		}
	}
	if err := n.Leave(ctx, s.Manager && via == nil); err != nil {
		return err
	}
	if via == nil {
		return nil
	}
	_ = WaitNode(ctx, via, s.NodeID, leaveWait, func(n swarm.Node) bool { return n.Status.State == swarm.NodeStateDown })
	return RemoveNode(ctx, via, s.NodeID)
}
