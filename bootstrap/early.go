package bootstrap

import (
	"context"
	"strings"
	"sync"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
)

// The early swarm: `cluster up` starts the swarm on the leader as soon as
// the leader is provisioned, and joins each other node as soon as it is,
// instead of waiting for the slowest host. Only the plain cases are done
// early (a leader that starts or keeps the swarm, a node in no swarm that
// joins it); everything else is left to Reconcile, which runs over every
// node afterwards and stays the one that decides the hard cases.

// EarlyAnchor decides, from the leader alone, whether the swarm can be
// started or joined through it before the other nodes are observed: Init
// for a leader in no swarm when no swarm was recorded, Keep for a leader
// that manages the recorded swarm (or, with no record, any swarm: the one
// Reconcile would anchor on too) at the address it has. members come from
// the leader when it manages a swarm. ok is false when only the full
// reconciliation can tell.
func EarlyAnchor(w Want, s State, members []Member, pol Policy) (m Membership, ok bool) {
	if len(pol.Anchors) > 0 || w.Name != pol.Leader {
		return "", false
	}
	switch {
	case s.LocalNodeState == StateInactive || s.LocalNodeState == "":
		// With a record, another manager may hold the swarm: Reconcile
		// looks for it among all the nodes.
		return decided(Init, pol.ClusterID == "")
	case managesSwarm(s, pol.ClusterID):
		return decided(Keep, !moved(w, s, members))
	}
	return "", false
}

// decided is m when ok, else no decision.
func decided(m Membership, ok bool) (Membership, bool) {
	if !ok {
		return "", false
	}
	return m, true
}

// DecideOne decides one node against a live anchor of the swarm with
// Decide itself. ok is true only for what can be done at once and alone: a
// node already in the swarm (Keep, nothing to do now) and a node in no
// swarm whose hostname the swarm holds no entry of (Join: a replaced host's
// old entry must go first, which Reconcile does).
func DecideOne(w Want, s State, members []Member, anchor, clusterID string) (m Membership, ok bool) {
	obs := Observed{States: map[string]State{w.Name: s}, Members: members}
	d, err := Decide([]Want{w}, obs, Policy{}, anchor, clusterID)
	if err != nil {
		return "", false
	}
	switch m := d.Of(w.Name).Membership; m {
	case Keep:
		return Keep, true
	case Join:
		for _, mem := range members {
			if mem.Hostname == w.Hostname {
				return "", false
			}
		}
		return Join, true
	}
	return "", false
}

// Early starts the swarm on the leader and joins the other nodes one by
// one as they become ready. It is safe for concurrent use; managers still
// join one at a time.
type Early struct {
	R *Reconciler
	// Policy is the run's policy (Leader, ClusterID).
	Policy Policy
	// Init are the settings of a swarm Start makes.
	Init InitOptions

	mu sync.Mutex
	// managers serialises manager joins: Raft adds one member at once.
	managers sync.Mutex
	anchor   *Node
	cid      string
	tokens   [2]string
	changed  bool
	// members is the swarm's node list as Start saw it: Join decides
	// every node against it rather than list the swarm once a node (30
	// lists on the leader while 30 nodes join). Since Start, only the
	// early joins changed it, each of another node.
	members []Member
	// states are the nodes' states read after the early pass's last
	// change to them (States).
	states map[string]State
}

// initOn initialises the swarm on t and reads its state and members then.
func (e *Early) initOn(ctx context.Context, t *Target) (State, []Member, error) {
	if err := e.R.initSwarm(ctx, t, e.Init); err != nil {
		return State{}, nil, err
	}
	s, err := t.Node.State(ctx)
	if err != nil {
		return State{}, nil, err
	}
	members, err := Members(ctx, t.Node)
	return s, members, err
}

// Start observes the leader and, when EarlyAnchor allows it, initialises
// the swarm on it or takes it as the anchor. ok is false when the rest is
// left to Reconcile.
func (e *Early) Start(ctx context.Context, t *Target) (ok bool, err error) {
	if e.R.Redactor == nil {
		e.R.Redactor = &sshrun.Redactor{}
	}
	w := wantOf(t)
	s, members, m, ok := e.observeLeader(ctx, t, w)
	if !ok {
		return false, nil // Reconcile sees to it (and reports what it could not read)
	}
	if m == Init {
		if s, members, err = e.initOn(ctx, t); err != nil {
			return false, err
		}
	}
	worker, manager, err := Tokens(ctx, t.Node)
	if err != nil {
		return false, err
	}
	e.R.Redactor.Add(worker)
	e.R.Redactor.Add(manager)
	e.mu.Lock()
	defer e.mu.Unlock()
	if m == Init {
		e.labels(ctx, t.Node, w, s)
	}
	e.anchor, e.cid, e.tokens, e.members = t.Node, s.ClusterID, [2]string{worker, manager}, members
	e.know(w.Name, s)
	e.changed = e.changed || m == Init
	return true, nil
}

// observeLeader reads the leader's state (and, of a manager, the swarm's
// node list) and asks EarlyAnchor; ok is false when it cannot tell.
func (e *Early) observeLeader(ctx context.Context, t *Target, w Want) (s State, members []Member, m Membership, ok bool) {
	s, err := t.Node.State(ctx)
	if err != nil {
		return s, nil, "", false
	}
	if s.Active() && s.Manager {
		if members, err = Members(ctx, t.Node); err != nil {
			return s, nil, "", false
		}
	}
	m, ok = EarlyAnchor(w, s, members, e.Policy)
	return s, members, m, ok
}

// Join decides one node against the anchor (DecideOne) and joins it when
// that is all there is to do; ready, when given, is waited for first, and
// only then (what the join must come after: the other managers, say). It
// does nothing when Start did not succeed or the node needs more than a
// join: Reconcile will see to it. Nodes already in the swarm are read side
// by side; only the manager joins go one at a time.
func (e *Early) Join(ctx context.Context, t *Target, ready func(context.Context) error) (joined bool, err error) {
	e.mu.Lock()
	anchor, cid, tokens, members := e.anchor, e.cid, e.tokens, e.members
	e.mu.Unlock()
	if anchor == nil || t.Node == anchor {
		return false, nil
	}
	w := wantOf(t)
	if !e.needsJoin(ctx, t, w, members, anchor, cid) {
		return false, nil
	}
	if ready != nil {
		if err := ready(ctx); err != nil {
			return false, err
		}
	}
	if err := e.join(ctx, t, anchor, tokens); err != nil {
		return false, err
	}
	e.afterJoin(ctx, t, w, anchor)
	return true, nil
}

// needsJoin reads the node and tells whether a join is all it needs (a
// node kept as it is has its state recorded).
func (e *Early) needsJoin(ctx context.Context, t *Target, w Want, members []Member, anchor *Node, cid string) bool {
	s, err := t.Node.State(ctx)
	if err != nil {
		return false
	}
	m, ok := DecideOne(w, s, members, anchor.Name, cid)
	if ok && m == Keep {
		e.mu.Lock()
		e.know(w.Name, s)
		e.mu.Unlock()
	}
	return ok && m == Join
}

// join makes the node join; managers one at a time (Raft adds one member
// at once), across processes too.
func (e *Early) join(ctx context.Context, t *Target, anchor *Node, tokens [2]string) error {
	token := tokens[0]
	manager := t.Want.Role == RoleManager
	if manager {
		token = tokens[1]
		e.managers.Lock()
		defer e.managers.Unlock()
	}
	return e.R.withManagerLockIf(ctx, manager, func() error {
		return e.R.joinSwarm(ctx, t, anchor.Addr, token)
	})
}

// afterJoin reads the node once more while the pipeline runs (the swarm
// pass then need not ask; a state it cannot read is asked again there) and
// gives it its labels.
func (e *Early) afterJoin(ctx context.Context, t *Target, w Want, anchor *Node) {
	s, err := t.Node.State(ctx)
	if err == nil {
		e.labels(ctx, anchor, w, s)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.changed = true
	if err == nil {
		e.know(w.Name, s)
	}
}

// labels gives a node the swarm just took in its labels and availability
// at once, through mgr: the swarm pass then finds them right (a failure
// is left to it, which reports it).
func (e *Early) labels(ctx context.Context, mgr *Node, w Want, s State) {
	if s.NodeID == "" || len(w.Labels) == 0 && w.Availability == "" {
		return
	}
	got, err := EnsureNode(ctx, mgr, s.NodeID, NodeWant{Labels: w.Labels, Availability: w.Availability})
	if err == nil && len(got) > 0 {
		e.R.event(w.Name, "swarm-node", ui.Changed, strings.Join(got, ", "))
	}
}

// know records a node's state (e.mu held).
func (e *Early) know(name string, s State) {
	if e.states == nil {
		e.states = map[string]State{}
	}
	e.states[name] = s
}

// States are the nodes' states the early pass read after its last change
// to each (Request.Known), by name.
func (e *Early) States() map[string]State {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]State, len(e.states))
	for k, v := range e.states {
		out[k] = v
	}
	return out
}

// Anchor is the node Start anchored on (nil when it did not).
func (e *Early) Anchor() *Node {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.anchor
}

// Changed tells whether Start or Join changed the swarm.
func (e *Early) Changed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

func (r *Reconciler) withManagerLockIf(ctx context.Context, manager bool, f func() error) error {
	if !manager {
		return f()
	}
	return r.withManagerLock(ctx, f)
}
