package bootstrap

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/shoal-dev/shoal/internal/ui"
)

// Leaving is a node that leaves the swarm for good (scale down, a machine
// removed from the file).
type Leaving struct {
	Name     string
	Hostname string
	// Node is nil when the host is gone or does not answer.
	Node *Node
}

// MemberOf finds a leaving node's entry in the swarm's list: by the node ID
// its engine reports, else by hostname.
func MemberOf(members []Member, nodeID, hostname string) (Member, bool) {
	for _, m := range members {
		if nodeID != "" && m.ID == nodeID {
			return m, true
		}
	}
	if nodeID != "" {
		return Member{}, false
	}
	for _, m := range members {
		if m.Hostname == hostname {
			return m, true
		}
	}
	return Member{}, false
}

// Retire takes nodes out of the swarm one at a time, without losing a task
// or the quorum: drain and wait until its tasks run elsewhere (bounded by
// drainTimeout), demote a manager and wait for Raft, leave, and remove the
// entry. The quorum check runs before anything changes.
func (r *Reconciler) Retire(ctx context.Context, anchor *Node, leaving []Leaving, drainTimeout time.Duration) error {
	if len(leaving) == 0 {
		return nil
	}
	members, err := Members(ctx, anchor)
	if err != nil {
		return err
	}
	ids, going := leavingIDs(ctx, members, leaving)
	warn, err := QuorumCheck(members, going, 0)
	if err != nil {
		return err
	}
	if warn != "" {
		r.event(anchor.Name, "swarm-quorum", ui.Info, warn)
	}
	for i, l := range leaving {
		if err := r.retireOne(ctx, anchor, l, ids[i], drainTimeout); err != nil {
			return fmt.Errorf("%s: %w", l.Name, err)
		}
	}
	return nil
}

// leavingIDs finds each leaving node's entry in the swarm's list (by the
// node ID its engine says, else by hostname): their IDs in order ("" for
// none), and the set of them.
func leavingIDs(ctx context.Context, members []Member, leaving []Leaving) ([]string, map[string]bool) {
	ids := make([]string, len(leaving))
	going := map[string]bool{}
	for i, l := range leaving {
		nodeID := ""
		if l.Node != nil {
			if s, err := l.Node.State(ctx); err == nil && s.LocalNodeState != StateInactive {
				nodeID = s.NodeID
			}
		}
		if m, ok := MemberOf(members, nodeID, l.Hostname); ok {
			ids[i] = m.ID
			going[m.ID] = true
		}
	}
	return ids, going
}

func (r *Reconciler) retireOne(ctx context.Context, anchor *Node, l Leaving, id string, drainTimeout time.Duration) error {
	if id != "" {
		if err := r.drainOut(ctx, anchor, l, id, drainTimeout); err != nil {
			return err
		}
	}
	if err := r.leaveIfIn(ctx, l); err != nil {
		return err
	}
	if id == "" {
		return nil
	}
	return r.removeEntry(ctx, anchor, l, id)
}

// leaveIfIn makes the leaving node, when it answers and is in a swarm,
// leave it.
func (r *Reconciler) leaveIfIn(ctx context.Context, l Leaving) error {
	if l.Node == nil {
		return nil
	}
	if s, err := l.Node.State(ctx); err != nil || s.LocalNodeState == StateInactive {
		return nil
	}
	return r.leave(ctx, l.Node, "removed from the cluster")
}

// removeEntry removes the node's entry once the manager sees it down
// (bounded: a node that is gone already is down).
func (r *Reconciler) removeEntry(ctx context.Context, anchor *Node, l Leaving, id string) error {
	waitLeft(ctx, anchor, id)
	if err := RemoveNode(ctx, anchor, id); err != nil {
		return err
	}
	r.event(l.Name, "swarm-remove", ui.Changed, "node "+Short(id))
	return nil
}

// drainOut drains a leaving node until its tasks run elsewhere, then
// demotes it when it manages.
func (r *Reconciler) drainOut(ctx context.Context, anchor *Node, l Leaving, id string, drainTimeout time.Duration) error {
	r.event(l.Name, "swarm-drain", ui.Started, "")
	if _, err := EnsureNode(ctx, anchor, id, NodeWant{Availability: "drain"}); err != nil {
		return err
	}
	if err := WaitDrained(ctx, anchor, id, drainTimeout); err != nil {
		r.event(l.Name, "swarm-drain", ui.Failed, "")
		return fmt.Errorf("%w (the node stays drained; run again, or raise --drain-timeout)", err)
	}
	r.event(l.Name, "swarm-drain", ui.Changed, "its tasks run elsewhere")
	n, _, err := anchor.API.NodeInspectWithRaw(ctx, id)
	if err != nil {
		return err
	}
	if n.Spec.Role != swarm.NodeRoleManager {
		return nil
	}
	if err := r.withManagerLock(ctx, func() error {
		if _, err := EnsureNode(ctx, anchor, id, NodeWant{Role: RoleWorker}); err != nil {
			return err
		}
		return WaitRole(ctx, anchor, id, RoleWorker, r.readyTimeout())
	}); err != nil {
		return err
	}
	r.event(l.Name, "swarm-role", ui.Changed, "demoted")
	return nil
}
