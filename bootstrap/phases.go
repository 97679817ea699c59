package bootstrap

import (
	"context"
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
)

// Reconcile makes the targets one swarm: unlock locked managers (when
// allowed), init once, remove entries of replaced hosts, join (managers one
// at a time, workers in parallel), roles one at a time with quorum kept,
// labels and availability, and wait until every node is Ready.
func (r *Reconciler) Reconcile(ctx context.Context, req Request) (*Outcome, error) {
	if r.Redactor == nil {
		r.Redactor = &sshrun.Redactor{}
	}
	out, members, err := r.Plan(ctx, req)
	if err != nil {
		return out, err
	}
	run := &reconcileRun{r: r, req: req, out: out, members: members}
	for _, phase := range []func(context.Context) error{
		run.unlockLocked,
		run.initOrKeep,
		run.removeStale,
		run.joinNew,
		run.readdressMoved,
		run.setRoles,
		run.setNodes,
		run.waitReady,
	} {
		if err := phase(ctx); err != nil {
			return run.out, err
		}
	}
	return run.out, nil
}

// reconcileRun is what the phases of one Reconcile share.
type reconcileRun struct {
	r   *Reconciler
	req Request
	out *Outcome
	// members is the swarm's node list as last read.
	members []Member
	// anchor is the manager the others join and are changed through.
	anchor *Node
	// The join tokens, fetched once when a node joins (secrets: redacted).
	workerToken, managerToken string
}

func (run *reconcileRun) membership(t *Target) NodeDecision {
	return run.out.Decision.Of(t.Want.Name)
}

// noteState records a target's state after a change.
func (run *reconcileRun) noteState(ctx context.Context, t *Target) error {
	s, err := t.Node.State(ctx)
	if err != nil {
		return err
	}
	run.out.NodeIDs[t.Want.Name], run.out.States[t.Want.Name] = s.NodeID, s
	return nil
}

// unlockLocked unlocks the locked managers, all at once: dockerd answers an
// unlock when the manager is ready, and it is ready only once a quorum of
// managers is. Then the swarm can be told for certain: decide again,
// unlocking no more.
func (run *reconcileRun) unlockLocked(ctx context.Context) error {
	if !run.out.Decision.NeedsUnlock() {
		return nil
	}
	var locked []*Node
	for _, t := range run.req.Targets {
		if run.membership(t).Membership == Unlock {
			locked = append(locked, t.Node)
		}
	}
	key := run.req.UnlockKey
	if err := forEach(ctx, len(locked), locked, func(ctx context.Context, n *Node) error {
		return run.r.unlock(ctx, n, key)
	}); err != nil {
		return err
	}
	run.req.UnlockKey = ""
	var err error
	if run.out, run.members, err = run.r.Plan(ctx, run.req); err != nil {
		return err
	}
	run.out.Changed = true
	return nil
}

// initOrKeep makes the swarm on the leader when there is none to join, and
// says what in the existing one differs from the init settings asked.
func (run *reconcileRun) initOrKeep(ctx context.Context) error {
	if run.out.Anchor == nil {
		t := targetOf(run.req.Targets, run.req.Policy.Leader)
		if t == nil {
			return fmt.Errorf("no swarm manager to join and no leader to start one")
		}
		if err := run.initOn(ctx, t); err != nil {
			return err
		}
	} else if t := targetOf(run.req.Targets, run.out.Anchor.Name); t != nil {
		run.r.event(t.Want.Name, "swarm-init", ui.Unchanged, "manager of swarm "+Short(run.out.ClusterID))
	}
	run.out.Warnings = append(run.out.Warnings, initDiffers(ctx, run.out.Anchor, run.req.Init)...)
	run.anchor = run.out.Anchor
	return nil
}

// initOn makes a new swarm with t its first manager (t leaves a swarm of
// its own first when Decide said so).
func (run *reconcileRun) initOn(ctx context.Context, t *Target) error {
	r := run.r
	if err := run.leaveToRejoinElsewhere(ctx, t); err != nil {
		return err
	}
	if err := r.initSwarm(ctx, t, run.req.Init); err != nil {
		return err
	}
	run.out.Changed = true
	if err := run.noteState(ctx, t); err != nil {
		return err
	}
	run.out.Anchor, run.out.ClusterID = t.Node, run.out.States[t.Want.Name].ClusterID
	var err error
	run.members, err = Members(ctx, t.Node)
	return err
}

// leaveToRejoinElsewhere makes a node that Decide says rejoins leave the
// swarm (or half-made membership) it has.
func (run *reconcileRun) leaveToRejoinElsewhere(ctx context.Context, t *Target) error {
	if dec := run.membership(t); dec.Membership == Rejoin {
		return run.r.leave(ctx, t.Node, dec.Reason)
	}
	return nil
}

// removeStale takes out the entries of replaced hosts before the new ones
// join, demoted first so that Raft counts only the managers that are there.
func (run *reconcileRun) removeStale(ctx context.Context) error {
	stale := run.staleEntries()
	if len(stale) == 0 {
		return nil
	}
	gone := map[string]bool{}
	for _, m := range stale {
		gone[m.ID] = true
	}
	if _, err := QuorumCheck(run.members, gone, 0); err != nil {
		return err
	}
	for _, m := range stale {
		if err := RemoveStale(ctx, run.anchor, m); err != nil {
			return err
		}
		run.r.event(nameOfHostname(run.req.Targets, m.Hostname), "swarm-stale", ui.Changed, "removed the old node entry "+Short(m.ID))
		run.out.Changed = true
	}
	return nil
}

// staleEntries lists the swarm's entries that no target is, by hostname.
func (run *reconcileRun) staleEntries() []Member {
	out := run.out
	hostnames := map[string]bool{}
	for _, w := range wantsOf(run.req.Targets) {
		hostnames[w.Hostname] = true
	}
	// A locked engine may not say its node ID: the swarm's list does.
	for _, t := range run.req.Targets {
		if run.membership(t).Membership == Readdress && out.NodeIDs[t.Want.Name] == "" {
			if m, ok := lockedMember(t.Want, State{}, run.members); ok {
				out.NodeIDs[t.Want.Name] = m.ID
			}
		}
	}
	current := map[string]string{}
	joining := map[string]bool{}
	for _, t := range run.req.Targets {
		switch run.membership(t).Membership {
		case Keep, Readdress:
			current[t.Want.Name] = out.NodeIDs[t.Want.Name]
		case Join:
			joining[t.Want.Hostname] = true
		}
	}
	current[run.anchor.Name] = out.NodeIDs[run.anchor.Name]
	return Stale(run.members, current, hostnames, joining)
}

// tokens fetches the join tokens once, and has them redacted.
func (run *reconcileRun) tokens(ctx context.Context) error {
	if run.workerToken != "" {
		return nil
	}
	var err error
	run.workerToken, run.managerToken, err = Tokens(ctx, run.anchor)
	if err != nil {
		return err
	}
	run.r.Redactor.Add(run.workerToken)
	run.r.Redactor.Add(run.managerToken)
	return nil
}

// tokenFor is the join token of the target's role.
func (run *reconcileRun) tokenFor(t *Target) string {
	if t.Want.Role == RoleManager {
		return run.managerToken
	}
	return run.workerToken
}

// joiners are the targets that join (again), managers and workers apart.
func (run *reconcileRun) joiners() (managers, workers []*Target) {
	for _, t := range run.req.Targets {
		m := run.membership(t).Membership
		if t.Node == run.anchor || (m != Join && m != Rejoin) {
			continue
		}
		if t.Want.Role == RoleManager {
			managers = append(managers, t)
		} else {
			workers = append(workers, t)
		}
	}
	return managers, workers
}

// joinNew joins the targets not in the swarm: managers one at a time (Raft
// adds one member at once), workers in parallel.
func (run *reconcileRun) joinNew(ctx context.Context) error {
	managers, workers := run.joiners()
	if len(managers)+len(workers) > 0 {
		if err := run.tokens(ctx); err != nil {
			return err
		}
		run.out.Changed = true
	}
	for _, t := range managers {
		if err := run.r.withManagerLock(ctx, func() error { return run.join(ctx, t) }); err != nil {
			return err
		}
	}
	if err := forEach(ctx, run.r.Parallel, workers, run.join); err != nil {
		return err
	}
	for _, t := range append(managers, workers...) {
		if err := run.noteState(ctx, t); err != nil {
			return err
		}
	}
	run.sayInSwarm()
	return nil
}

// sayInSwarm says of the targets that did not join that they are in.
func (run *reconcileRun) sayInSwarm() {
	for _, t := range run.req.Targets {
		if m := run.membership(t).Membership; t.Node != run.anchor && m != Join && m != Rejoin {
			run.r.event(t.Want.Name, "swarm-join", ui.Unchanged, "in the swarm")
		}
	}
}

// join makes one target join (leaving a swarm of its own first when Decide
// said so).
func (run *reconcileRun) join(ctx context.Context, t *Target) error {
	r := run.r
	if err := run.leaveToRejoinElsewhere(ctx, t); err != nil {
		return err
	}
	return r.joinSwarm(ctx, t, run.anchor.Addr, run.tokenFor(t))
}

// readdressMoved makes the nodes whose address changed join again with the
// new one, one at a time, managers with the quorum kept.
func (run *reconcileRun) readdressMoved(ctx context.Context) error {
	for _, t := range run.req.Targets {
		dec := run.membership(t)
		if dec.Membership != Readdress {
			continue
		}
		if err := run.tokens(ctx); err != nil {
			return err
		}
		if err := run.readdress(ctx, t, run.out.NodeIDs[t.Want.Name], dec.Reason); err != nil {
			return fmt.Errorf("%s: readdress: %w", t.Want.Name, err)
		}
		if err := run.noteState(ctx, t); err != nil {
			return err
		}
		run.out.Changed = true
	}
	return nil
}

// setRoles promotes, then demotes, one at a time, each waiting until Raft
// has settled; the quorum is checked first.
func (run *reconcileRun) setRoles(ctx context.Context) error {
	var err error
	if run.members, err = Members(ctx, run.anchor); err != nil {
		return err
	}
	changes := RoleChanges(wantsOf(run.req.Targets), run.out.NodeIDs, run.members)
	demoted, promoted := map[string]bool{}, 0
	for _, c := range changes {
		if c.To == RoleWorker {
			demoted[c.NodeID] = true
		} else {
			promoted++
		}
	}
	warn, err := QuorumCheck(run.members, demoted, promoted)
	if err != nil {
		return err
	}
	if warn != "" && len(changes) > 0 {
		run.out.Warnings = append(run.out.Warnings, warn)
	}
	for _, c := range changes {
		if err := run.changeRole(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// changeRole makes one role change through the anchor, or, when the anchor
// itself steps down, through another manager, which becomes the anchor.
func (run *reconcileRun) changeRole(ctx context.Context, c RoleChange) error {
	mgr := run.anchor
	if c.NodeID == run.out.NodeIDs[run.anchor.Name] {
		if mgr = otherManagerTarget(run.req.Targets, run.anchor); mgr == nil {
			return fmt.Errorf("%s: no other manager to demote it through", c.Name)
		}
	}
	if err := run.r.withManagerLock(ctx, func() error {
		got, err := EnsureNode(ctx, mgr, c.NodeID, NodeWant{Role: c.To})
		if err != nil {
			return err
		}
		run.r.event(c.Name, "swarm-role", ui.Changed, strings.Join(got, ", "))
		return WaitRole(ctx, mgr, c.NodeID, c.To, run.r.readyTimeout())
	}); err != nil {
		return err
	}
	run.out.Changed = true
	run.anchor, run.out.Anchor = mgr, mgr
	return nil
}

// setNodes sets labels and availability from one node list: only the
// nodes that differ cost a call.
func (run *reconcileRun) setNodes(ctx context.Context) error {
	want := map[string]NodeWant{}
	for _, t := range run.req.Targets {
		want[run.out.NodeIDs[t.Want.Name]] = NodeWant{Labels: t.Want.Labels, Availability: t.Want.Availability}
	}
	got, err := EnsureNodes(ctx, run.anchor, want, run.r.Parallel)
	if err != nil {
		return err
	}
	for _, t := range run.req.Targets {
		if g := got[run.out.NodeIDs[t.Want.Name]]; len(g) > 0 {
			run.out.Changed = true
			run.r.event(t.Want.Name, "swarm-node", ui.Changed, strings.Join(g, ", "))
		}
	}
	return nil
}

// waitReady waits, one node list a poll, until every target is Ready.
func (run *reconcileRun) waitReady(ctx context.Context) error {
	nameOf := map[string]string{}
	ids := make([]string, 0, len(run.req.Targets))
	for _, t := range run.req.Targets {
		id := run.out.NodeIDs[t.Want.Name]
		nameOf[id] = t.Want.Name
		ids = append(ids, id)
	}
	return WaitAllReady(ctx, run.anchor, ids, nameOf, run.r.readyTimeout())
}

// readdress makes a node of this swarm join again under its new address:
// a manager is demoted first (the quorum checked), the node leaves, its old
// entry goes, and it joins with the token of its role.
func (run *reconcileRun) readdress(ctx context.Context, t *Target, id, why string) error {
	r, anchor := run.r, run.anchor
	r.event(t.Want.Name, "swarm-readdress", ui.Started, why)
	members, err := Members(ctx, anchor)
	if err != nil {
		return err
	}
	id, listed, wasManager := entryOf(t.Want, id, members)
	return r.withManagerLock(ctx, func() error {
		if wasManager {
			if err := r.demoteFor(ctx, anchor, members, id); err != nil {
				return err
			}
		}
		if err := leaveToRejoin(ctx, t.Node, wasManager, listed); err != nil {
			return err
		}
		if listed {
			waitLeft(ctx, anchor, id)
			if err := RemoveNode(ctx, anchor, id); err != nil {
				return err
			}
		}
		if err := t.Node.Join(ctx, t.Advertise, anchor.Addr, run.tokenFor(t), r.Redactor.Redact); err != nil {
			r.event(t.Want.Name, "swarm-readdress", ui.Failed, "")
			return err
		}
		r.event(t.Want.Name, "swarm-readdress", ui.Changed, "joined again at "+t.Advertise)
		return nil
	})
}

// entryOf finds the node's entry in the swarm's list: by id, or, when its
// (locked) engine did not say it, by the want. It says the id, whether it
// is listed, and whether as a manager.
func entryOf(w Want, id string, members []Member) (_ string, listed, wasManager bool) {
	if id == "" {
		if m, ok := lockedMember(w, State{}, members); ok {
			id = m.ID
		}
	}
	for _, m := range members {
		if m.ID == id {
			listed = true
			wasManager = m.Role == RoleManager
		}
	}
	return id, listed, wasManager
}

// demoteFor demotes a manager that is to leave, the quorum checked, and
// waits until Raft no longer counts it.
func (r *Reconciler) demoteFor(ctx context.Context, mgr *Node, members []Member, id string) error {
	if _, err := QuorumCheck(members, map[string]bool{id: true}, 0); err != nil {
		return err
	}
	if _, err := EnsureNode(ctx, mgr, id, NodeWant{Role: RoleWorker}); err != nil {
		return err
	}
	return WaitRole(ctx, mgr, id, RoleWorker, r.readyTimeout())
}

// leaveToRejoin makes a node leave so that it can join again. A demoted
// manager that was cut off may not know it yet (or is locked): its leave is
// forced, which is safe once Raft no longer counts it, or the swarm no
// longer lists it at all.
func leaveToRejoin(ctx context.Context, n *Node, wasManager, listed bool) error {
	err := n.Leave(ctx, false)
	if err == nil {
		return nil
	}
	if !wasManager && listed {
		return err
	}
	return n.Leave(ctx, true)
}
