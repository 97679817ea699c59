package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"
	"github.com/shoal-dev/shoal/internal/fanout"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
)

// Target is one node the reconciler puts where Want says.
type Target struct {
	Node *Node
	Want Want
	// Advertise is the address the swarm reaches the node on.
	Advertise string
}

// Reconciler acts on the decisions of Decide: it observes every node,
// decides, and only then changes anything.
type Reconciler struct {
	Event    func(node, step string, st ui.Status, detail string)
	Redactor *sshrun.Redactor
	// Parallel bounds how many nodes are worked on at once.
	Parallel int
	// ReadyTimeout bounds each wait for a node to be Ready.
	ReadyTimeout time.Duration
	// ManagerLock, when set, is held while a manager joins or leaves
	// (across processes that share a store).
	ManagerLock func(ctx context.Context) (func(), error)
}

// Request is one reconciliation.
type Request struct {
	Targets []*Target
	// Anchors are managers the targets join; never changed.
	Anchors []*Node
	Policy  Policy
	// UnlockKey unlocks locked managers when Policy.CanUnlock.
	UnlockKey string
	// Init are the settings a swarm made in this run gets; an existing
	// swarm whose settings differ is reported, never made again.
	Init InitOptions
	// Known are targets' states read since anything last changed them
	// (the early swarm's, by name): the first observation takes them
	// instead of asking those engines again.
	Known map[string]State
}

// Outcome is what Reconcile found and did.
type Outcome struct {
	Anchor    *Node
	ClusterID string
	// NodeIDs are the targets' swarm node IDs, by name.
	NodeIDs  map[string]string
	States   map[string]State
	Decision Decision
	Changed  bool
	Warnings []string
}

func (r *Reconciler) event(node, step string, st ui.Status, detail string) {
	if r.Event != nil {
		r.Event(node, step, st, detail)
	}
}

// electionWait bounds the wait for a swarm to elect a Raft leader.
func (r *Reconciler) electionWait() time.Duration {
	if r.ReadyTimeout > 0 && r.ReadyTimeout < 30*time.Second {
		return r.ReadyTimeout
	}
	return 30 * time.Second
}

func (r *Reconciler) readyTimeout() time.Duration {
	if r.ReadyTimeout > 0 {
		return r.ReadyTimeout
	}
	return 2 * time.Minute
}

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
	nodes, err := mgr.API.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: node ls: %w", mgr.Name, err)
	}
	out := make([]Member, 0, len(nodes))
	for _, n := range nodes {
		m := Member{
			ID: n.ID, Hostname: n.Description.Hostname, Addr: n.Status.Addr, Role: string(n.Spec.Role),
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

// Decide observes the nodes and decides, changing nothing (the plan).
func (r *Reconciler) Decide(ctx context.Context, req Request) (*Outcome, []Member, error) {
	all := append(append([]*Node(nil), req.Anchors...), nodesOf(req.Targets)...)
	want := wantsOf(req.Targets)
	// A swarm that just lost its Raft leader (a manager gone or moved)
	// elects another within seconds: meanwhile its managers answer without
	// the swarm's ID, or cannot list its nodes. Wait for it, bounded, rather
	// than take them for strangers.
	deadline := time.Now().Add(r.electionWait())
	var obs Observed
	anchor, cid := "", ""
	first := true
	for {
		obs = observeKnown(ctx, r.Parallel, all, req.Known, first)
		first = false
		var listErrs []error
		for _, c := range AnchorCandidates(want, obs, req.Policy) {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			members, err := Members(lctx, byName(all, c))
			cancel()
			if err != nil {
				listErrs = append(listErrs, err)
				continue
			}
			anchor, cid, obs.Members = c, obs.States[c].ClusterID, members
			break
		}
		if anchor != "" || (len(listErrs) == 0 && !Electing(obs)) {
			break
		}
		if time.Now().After(deadline) {
			if len(listErrs) > 0 {
				return nil, nil, fmt.Errorf("no manager of the swarm can list its nodes: %w", errors.Join(listErrs...))
			}
			break // Decide says which managers have no leader
		}
		r.event(req.Policy.Leader, "swarm", ui.Info, "waiting for the swarm to elect a leader")
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if anchor != "" {
		anchor = SteadyAnchor(want, obs, anchor, cid)
	}
	pol := req.Policy
	pol.CanUnlock = pol.CanUnlock && req.UnlockKey != ""
	if req.UnlockKey == "" {
		pol.Restarted = nil
	}
	d, err := Decide(want, obs, pol, anchor, cid)
	out := &Outcome{ClusterID: cid, Decision: d, States: obs.States, NodeIDs: map[string]string{}}
	if anchor != "" {
		out.Anchor = byName(all, anchor)
	}
	for n, s := range obs.States {
		out.NodeIDs[n] = s.NodeID
	}
	return out, obs.Members, err
}

// Reconcile makes the targets one swarm: unlock locked managers (when
// allowed), init once, remove entries of replaced hosts, join (managers one
// at a time, workers in parallel), roles one at a time with quorum kept,
// labels and availability, and wait until every node is Ready.
func (r *Reconciler) Reconcile(ctx context.Context, req Request) (*Outcome, error) {
	if r.Redactor == nil {
		r.Redactor = &sshrun.Redactor{}
	}
	out, members, err := r.Decide(ctx, req)
	if err != nil {
		return out, err
	}
	if out.Decision.NeedsUnlock() {
		var locked []*Node
		for _, t := range req.Targets {
			if out.Decision.Of(t.Want.Name).Membership == Unlock {
				locked = append(locked, t.Node)
			}
		}
		// All at once: dockerd answers an unlock when the manager is
		// ready, and it is ready only once a quorum of managers is.
		if err := forEach(ctx, len(locked), locked, func(ctx context.Context, n *Node) error {
			return r.unlock(ctx, n, req.UnlockKey)
		}); err != nil {
			return out, err
		}
		// Now the swarm can be told for certain: decide again, unlocking
		// no more.
		req.UnlockKey = ""
		if out, members, err = r.Decide(ctx, req); err != nil {
			return out, err
		}
		out.Changed = true
	}
	want := wantsOf(req.Targets)
	if out.Anchor == nil {
		t := targetOf(req.Targets, req.Policy.Leader)
		if t == nil {
			return out, fmt.Errorf("no swarm manager to join and no leader to start one")
		}
		if out.Decision.Of(t.Want.Name).Membership == Rejoin {
			if err := r.leave(ctx, t.Node, out.Decision.Of(t.Want.Name).Reason); err != nil {
				return out, err
			}
		}
		r.event(t.Want.Name, "swarm-init", ui.Started, t.Advertise)
		if err := t.Node.InitWith(ctx, t.Advertise, req.Init); err != nil {
			r.event(t.Want.Name, "swarm-init", ui.Failed, "")
			return out, err
		}
		r.event(t.Want.Name, "swarm-init", ui.Changed, t.Advertise)
		out.Changed = true
		s, err := t.Node.State(ctx)
		if err != nil {
			return out, err
		}
		out.Anchor, out.ClusterID = t.Node, s.ClusterID
		out.NodeIDs[t.Want.Name], out.States[t.Want.Name] = s.NodeID, s
		if members, err = Members(ctx, t.Node); err != nil {
			return out, err
		}
	} else if t := targetOf(req.Targets, out.Anchor.Name); t != nil {
		r.event(t.Want.Name, "swarm-init", ui.Unchanged, "manager of swarm "+Short(out.ClusterID))
	}
	out.Warnings = append(out.Warnings, initDiffers(ctx, out.Anchor, req.Init)...)
	anchor := out.Anchor

	// Entries of replaced hosts go before the new ones join, demoted first
	// so that Raft counts only the managers that are there.
	hostnames := map[string]bool{}
	for _, w := range want {
		hostnames[w.Hostname] = true
	}
	// A locked engine may not say its node ID: the swarm's list does.
	for _, t := range req.Targets {
		if out.Decision.Of(t.Want.Name).Membership == Readdress && out.NodeIDs[t.Want.Name] == "" {
			if m, ok := lockedMember(t.Want, State{}, members); ok {
				out.NodeIDs[t.Want.Name] = m.ID
			}
		}
	}
	current := map[string]string{}
	joining := map[string]bool{}
	for _, t := range req.Targets {
		switch out.Decision.Of(t.Want.Name).Membership {
		case Keep, Readdress:
			current[t.Want.Name] = out.NodeIDs[t.Want.Name]
		case Join:
			joining[t.Want.Hostname] = true
		}
	}
	current[anchor.Name] = out.NodeIDs[anchor.Name]
	stale := Stale(members, current, hostnames, joining)
	if len(stale) > 0 {
		gone := map[string]bool{}
		for _, m := range stale {
			gone[m.ID] = true
		}
		if _, err := QuorumCheck(members, gone, 0); err != nil {
			return out, err
		}
		for _, m := range stale {
			if err := RemoveStale(ctx, anchor, m); err != nil {
				return out, err
			}
			r.event(nameOfHostname(req.Targets, m.Hostname), "swarm-stale", ui.Changed, "removed the old node entry "+Short(m.ID))
			out.Changed = true
		}
	}

	var workerToken, managerToken string
	tokens := func() error {
		if workerToken != "" {
			return nil
		}
		var err error
		workerToken, managerToken, err = Tokens(ctx, anchor)
		if err != nil {
			return err
		}
		r.Redactor.Add(workerToken)
		r.Redactor.Add(managerToken)
		return nil
	}
	join := func(ctx context.Context, t *Target) error {
		if dec := out.Decision.Of(t.Want.Name); dec.Membership == Rejoin {
			if err := r.leave(ctx, t.Node, dec.Reason); err != nil {
				return err
			}
		}
		token := workerToken
		if t.Want.Role == RoleManager {
			token = managerToken
		}
		r.event(t.Want.Name, "swarm-join", ui.Started, t.Want.Role)
		if err := t.Node.Join(ctx, t.Advertise, anchor.Addr, token, r.Redactor.Redact); err != nil {
			r.event(t.Want.Name, "swarm-join", ui.Failed, "")
			return err
		}
		r.event(t.Want.Name, "swarm-join", ui.Changed, t.Want.Role)
		return nil
	}
	var joiningManagers, joiningWorkers []*Target
	for _, t := range req.Targets {
		m := out.Decision.Of(t.Want.Name).Membership
		if t.Node == anchor || (m != Join && m != Rejoin) {
			continue
		}
		if t.Want.Role == RoleManager {
			joiningManagers = append(joiningManagers, t)
		} else {
			joiningWorkers = append(joiningWorkers, t)
		}
	}
	if len(joiningManagers)+len(joiningWorkers) > 0 {
		if err := tokens(); err != nil {
			return out, err
		}
		out.Changed = true
	}
	// Managers one at a time: Raft adds one member at once.
	for _, t := range joiningManagers {
		if err := r.withManagerLock(ctx, func() error { return join(ctx, t) }); err != nil {
			return out, err
		}
	}
	if err := forEach(ctx, r.Parallel, joiningWorkers, join); err != nil {
		return out, err
	}
	for _, t := range append(joiningManagers, joiningWorkers...) {
		s, err := t.Node.State(ctx)
		if err != nil {
			return out, err
		}
		out.NodeIDs[t.Want.Name], out.States[t.Want.Name] = s.NodeID, s
	}
	for _, t := range req.Targets {
		if m := out.Decision.Of(t.Want.Name).Membership; t.Node != anchor && m != Join && m != Rejoin {
			r.event(t.Want.Name, "swarm-join", ui.Unchanged, "in the swarm")
		}
	}

	// Nodes whose address changed join again with the new one, one at a
	// time, managers with the quorum kept.
	for _, t := range req.Targets {
		dec := out.Decision.Of(t.Want.Name)
		if dec.Membership != Readdress {
			continue
		}
		if err := tokens(); err != nil {
			return out, err
		}
		if err := r.readdress(ctx, anchor, t, out.NodeIDs[t.Want.Name], dec.Reason, workerToken, managerToken); err != nil {
			return out, fmt.Errorf("%s: readdress: %w", t.Want.Name, err)
		}
		s, err := t.Node.State(ctx)
		if err != nil {
			return out, err
		}
		out.NodeIDs[t.Want.Name], out.States[t.Want.Name] = s.NodeID, s
		out.Changed = true
	}

	// Roles: promotions first, then demotions, one at a time, each waiting
	// until Raft has settled.
	if members, err = Members(ctx, anchor); err != nil {
		return out, err
	}
	changes := RoleChanges(want, out.NodeIDs, members)
	demoted, promoted := map[string]bool{}, 0
	for _, c := range changes {
		if c.To == RoleWorker {
			demoted[c.NodeID] = true
		} else {
			promoted++
		}
	}
	warn, err := QuorumCheck(members, demoted, promoted)
	if err != nil {
		return out, err
	}
	if warn != "" && len(changes) > 0 {
		out.Warnings = append(out.Warnings, warn)
	}
	for _, c := range changes {
		mgr := anchor
		if c.NodeID == out.NodeIDs[anchor.Name] {
			// The anchor itself steps down: another manager does it.
			if mgr = otherManagerTarget(req.Targets, want, anchor); mgr == nil {
				return out, fmt.Errorf("%s: no other manager to demote it through", c.Name)
			}
		}
		if err := r.withManagerLock(ctx, func() error {
			got, err := EnsureNode(ctx, mgr, c.NodeID, NodeWant{Role: c.To})
			if err != nil {
				return err
			}
			r.event(c.Name, "swarm-role", ui.Changed, strings.Join(got, ", "))
			return WaitRole(ctx, mgr, c.NodeID, c.To, r.readyTimeout())
		}); err != nil {
			return out, err
		}
		out.Changed = true
		if mgr != anchor {
			anchor, out.Anchor = mgr, mgr
		}
	}
	// Labels and availability from one node list: only the nodes that
	// differ cost a call. Then one list a poll until every node is Ready.
	wantNodes := map[string]NodeWant{}
	nameOf := map[string]string{}
	ids := make([]string, 0, len(req.Targets))
	for _, t := range req.Targets {
		id := out.NodeIDs[t.Want.Name]
		wantNodes[id] = NodeWant{Labels: t.Want.Labels, Availability: t.Want.Availability}
		nameOf[id] = t.Want.Name
		ids = append(ids, id)
	}
	got, err := EnsureNodes(ctx, anchor, wantNodes, r.Parallel)
	if err != nil {
		return out, err
	}
	for _, t := range req.Targets {
		if g := got[out.NodeIDs[t.Want.Name]]; len(g) > 0 {
			out.Changed = true
			r.event(t.Want.Name, "swarm-node", ui.Changed, strings.Join(g, ", "))
		}
	}
	return out, WaitAllReady(ctx, anchor, ids, nameOf, r.readyTimeout())
}

// readdress makes a node of this swarm join again under its new address:
// a manager is demoted first (the quorum checked), the node leaves, its old
// entry goes, and it joins with the token of its role.
func (r *Reconciler) readdress(ctx context.Context, anchor *Node, t *Target, id, why, workerToken, managerToken string) error {
	r.event(t.Want.Name, "swarm-readdress", ui.Started, why)
	members, err := Members(ctx, anchor)
	if err != nil {
		return err
	}
	if id == "" { // a locked engine may not say its node ID
		if m, ok := lockedMember(t.Want, State{}, members); ok {
			id = m.ID
		}
	}
	wasManager, listed := false, false
	for _, m := range members {
		if m.ID == id {
			listed = true
			wasManager = m.Role == RoleManager
		}
	}
	return r.withManagerLock(ctx, func() error {
		if wasManager {
			if _, err := QuorumCheck(members, map[string]bool{id: true}, 0); err != nil {
				return err
			}
			if _, err := EnsureNode(ctx, anchor, id, NodeWant{Role: RoleWorker}); err != nil {
				return err
			}
			if err := WaitRole(ctx, anchor, id, RoleWorker, r.readyTimeout()); err != nil {
				return err
			}
		}
		if err := t.Node.Leave(ctx, false); err != nil {
			// A demoted manager that was cut off may not know it yet (or
			// is locked): its leave is forced, which is safe once Raft no
			// longer counts it, or the swarm no longer lists it at all.
			if !wasManager && listed {
				return err
			}
			if err := t.Node.Leave(ctx, true); err != nil {
				return err
			}
		}
		if listed {
			waitLeft(ctx, anchor, id)
			if err := RemoveNode(ctx, anchor, id); err != nil {
				return err
			}
		}
		token := workerToken
		if t.Want.Role == RoleManager {
			token = managerToken
		}
		if err := t.Node.Join(ctx, t.Advertise, anchor.Addr, token, r.Redactor.Redact); err != nil {
			r.event(t.Want.Name, "swarm-readdress", ui.Failed, "")
			return err
		}
		r.event(t.Want.Name, "swarm-readdress", ui.Changed, "joined again at "+t.Advertise)
		return nil
	})
}

func (r *Reconciler) withManagerLock(ctx context.Context, f func() error) error {
	if r.ManagerLock == nil {
		return f()
	}
	unlock, err := r.ManagerLock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}

func (r *Reconciler) unlock(ctx context.Context, n *Node, key string) error {
	r.event(n.Name, "swarm-unlock", ui.Started, "")
	// The call returns when the manager is ready, which needs a quorum of
	// managers unlocked: bounded.
	uctx, cancel := context.WithTimeout(ctx, r.readyTimeout())
	defer cancel()
	if err := n.API.SwarmUnlock(uctx, swarm.UnlockRequest{UnlockKey: key}); err != nil {
		r.event(n.Name, "swarm-unlock", ui.Failed, "")
		if uctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("%s: swarm unlock: not ready within %s: a majority of the managers must be unlocked", n.Name, r.readyTimeout())
		}
		return fmt.Errorf("%s: swarm unlock: %s", n.Name, r.Redactor.Redact(err.Error()))
	}
	if err := waitState(ctx, n, StateActive, r.readyTimeout()); err != nil {
		return err
	}
	r.event(n.Name, "swarm-unlock", ui.Changed, "")
	return nil
}

func (r *Reconciler) leave(ctx context.Context, n *Node, why string) error {
	r.event(n.Name, "swarm-leave", ui.Started, why)
	if err := n.Leave(ctx, true); err != nil {
		r.event(n.Name, "swarm-leave", ui.Failed, "")
		return err
	}
	r.event(n.Name, "swarm-leave", ui.Changed, why)
	return nil
}

// UnlockLocked unlocks every locked manager among nodes with key and says
// which it unlocked. It never does anything else to a node.
func UnlockLocked(ctx context.Context, r *Reconciler, nodes []*Node, key string) ([]string, error) {
	obs := Observe(ctx, r.Parallel, nodes)
	var done []string
	var errs []error
	var locked []*Node
	for _, n := range nodes {
		s, ok := obs.States[n.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: the Docker engine does not answer: %s", n.Name, obs.Unreachable[n.Name]))
			continue
		}
		if s.LocalNodeState != StateLocked {
			r.event(n.Name, "swarm-unlock", ui.Unchanged, s.LocalNodeState)
			continue
		}
		locked = append(locked, n)
	}
	// All at once (see Reconcile).
	var mu sync.Mutex
	unlocked := map[*Node]bool{}
	errs = append(errs, forEach(ctx, len(locked), locked, func(ctx context.Context, n *Node) error {
		if err := r.unlock(ctx, n, key); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		unlocked[n] = true
		return nil
	}))
	for _, n := range locked {
		if unlocked[n] {
			done = append(done, n.Name)
		}
	}
	return done, errors.Join(errs...)
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

func otherManagerTarget(ts []*Target, want []Want, not *Node) *Node {
	for _, t := range ts {
		if t.Node != not && t.Want.Role == RoleManager {
			return t.Node
		}
	}
	return nil
}

func nodesOf(ts []*Target) []*Node {
	out := make([]*Node, len(ts))
	for i, t := range ts {
		out[i] = t.Node
	}
	return out
}

func wantsOf(ts []*Target) []Want {
	out := make([]Want, len(ts))
	for i, t := range ts {
		out[i] = t.Want
		if out[i].Advertise == "" {
			out[i].Advertise = t.Advertise
		}
	}
	return out
}

func byName(ns []*Node, name string) *Node {
	for _, n := range ns {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func targetOf(ts []*Target, name string) *Target {
	for _, t := range ts {
		if t.Want.Name == name {
			return t
		}
	}
	return nil
}

func nameOfHostname(ts []*Target, hostname string) string {
	for _, t := range ts {
		if t.Want.Hostname == hostname {
			return t.Want.Name
		}
	}
	return hostname
}

// forEach runs f for every item, at most n at once, and joins the errors.
func forEach[T any](ctx context.Context, n int, items []T, f func(context.Context, T) error) error {
	return fanout.Each(ctx, n, items, nil, f)
}

// initDiffers reports the init-only settings an existing swarm does not
// have as asked (see InitDiffers); nothing when none is asked.
func initDiffers(ctx context.Context, anchor *Node, o InitOptions) []string {
	if anchor == nil || (len(o.DefaultAddrPool) == 0 && o.DataPathPort == 0 && o.OverlayMTU == 0) {
		return nil
	}
	sw, err := anchor.API.SwarmInspect(ctx)
	if err != nil {
		return []string{fmt.Sprintf("%s: swarm inspect, to compare default_addr_pool and data_path_port: %v", anchor.Name, err)}
	}
	diffs := InitDiffers(sw.ClusterInfo, o)
	if o.OverlayMTU != 0 {
		ing, err := anchor.API.NetworkInspect(ctx, "ingress", network.InspectOptions{})
		if have := ing.Options[MTUOption]; err == nil && have != strconv.Itoa(o.OverlayMTU) {
			if have == "" {
				have = "Docker's default"
			}
			diffs = append(diffs, fmt.Sprintf("the ingress network's overlay_mtu is %s, not %d", have, o.OverlayMTU))
		}
	}
	var out []string
	for _, d := range diffs {
		out = append(out, fmt.Sprintf("swarm %s: %s; these are set when a swarm is made and shoal never makes one again over an existing swarm: "+
			"leave them out of the swarm block, or make the swarm anew yourself", Short(sw.ID), d))
	}
	return out
}
