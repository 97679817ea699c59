package bootstrap

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"

	"github.com/moby/moby/api/types/swarm"
	"github.com/shoal-dev/shoal/internal/validate"
)

// The decisions of the swarm reconciler: pure functions from what the nodes
// say (observed) to what must be done (wanted). Nothing here talks to a node.
//
// Rules that never bend:
//   - a node of this swarm is never left or re-initialised;
//   - a locked node is only ever unlocked;
//   - a node of another swarm is left only when the user forced it.

// The swarm roles as the Engine API and the user's files write them
// (internal/validate's Role is the one definition).
const (
	RoleManager = validate.Manager
	RoleWorker  = validate.Worker
)

// Local node states, as `docker info` reports them.
const (
	StateInactive = string(swarm.LocalNodeStateInactive)
	StatePending  = string(swarm.LocalNodeStatePending)
	StateActive   = string(swarm.LocalNodeStateActive)
	StateLocked   = string(swarm.LocalNodeStateLocked)
	StateError    = string(swarm.LocalNodeStateError)
)

// Membership is what the reconciler does about one node's place in the swarm.
type Membership string

const (
	// Keep: the node is in this swarm; only its role, labels and
	// availability may change.
	Keep Membership = "keep"
	// Init: the node starts the swarm.
	Init Membership = "init"
	// Join: the node is in no swarm and joins this one.
	Join Membership = "join"
	// Unlock: the node is a locked manager; it is unlocked, nothing else.
	Unlock Membership = "unlock"
	// Rejoin: the node is in another swarm (forced) or stuck half-way in
	// none (pending, error); it leaves that and then joins or inits.
	Rejoin Membership = "rejoin"
	// Readdress: the node is in this swarm under an address it no longer
	// has; it is demoted (a manager, quorum kept), leaves, its entry goes,
	// and it joins again with its new address.
	Readdress Membership = "readdress"
)

// Want is what one node should be.
type Want struct {
	Name     string
	Hostname string
	Role     validate.Role
	Labels   map[string]string
	// Availability is active, pause or drain; "" keeps what is there.
	Availability string
	// Advertise is the address the swarm should reach the node on.
	Advertise string
}

// Observed is what the reconciler knows of the nodes before it acts.
type Observed struct {
	// States holds what each reachable node's engine says, by machine name.
	States map[string]State
	// Unreachable holds why a node's engine did not answer, by name.
	Unreachable map[string]string
	// Members is the swarm's node list as a live manager of it sees it
	// (empty before a swarm exists).
	Members []Member
}

// Member is one entry of the swarm's node list.
type Member struct {
	ID           string
	Hostname     string
	Addr         string
	Role         validate.Role
	Ready        bool
	Availability string
	// Reachable is a manager's Raft reachability.
	Reachable bool
	Leader    bool
}

// Policy is what the user allows.
type Policy struct {
	// Leader is where a new swarm starts.
	Leader string
	// Anchors are managers outside the reconciled set that the nodes join
	// (machine create --swarm-join MASTER); they are never changed.
	Anchors []string
	// ClusterID is the swarm these nodes belong to, when shoal recorded it.
	ClusterID string
	// Force lets a node of another swarm leave it.
	Force bool
	// CanUnlock: an unlock key is at hand and unlocking is allowed.
	CanUnlock bool
	// Restarted names the nodes whose dockerd this run restarted: with the
	// key at hand, a manager that shoal locked that way is unlocked even
	// without CanUnlock.
	Restarted map[string]bool
	// ForceHint and UnlockHint name what the user types (flag or HCL
	// attribute; command) in refusals.
	ForceHint, UnlockHint string
}

// NodeDecision is the membership decision for one node.
type NodeDecision struct {
	Name       string     `json:"name"`
	Membership Membership `json:"membership"`
	Reason     string     `json:"reason,omitempty"`
}

// Decision is what the reconciler will do about membership.
type Decision struct {
	// Anchor is the live manager of this swarm that the others join
	// through ("" when the swarm is to be initialised or unlocked first).
	Anchor    string
	ClusterID string
	Nodes     []NodeDecision
}

// Of returns the decision for a node.
func (d Decision) Of(name string) NodeDecision {
	for _, n := range d.Nodes {
		if n.Name == name {
			return n
		}
	}
	return NodeDecision{Name: name}
}

// NeedsUnlock tells whether some node must be unlocked before the rest can
// be decided for certain.
func (d Decision) NeedsUnlock() bool {
	for _, n := range d.Nodes {
		if n.Membership == Unlock {
			return true
		}
	}
	return false
}

// PickAnchor chooses the live manager of this swarm that the others join:
// the first of AnchorCandidates.
func PickAnchor(want []Want, obs Observed, pol Policy) (name, clusterID string) {
	c := AnchorCandidates(want, obs, pol)
	if len(c) == 0 {
		return "", ""
	}
	return c[0], obs.States[c[0]].ClusterID
}

// AnchorCandidates lists, best first, the managers of this swarm the
// others could join through: the anchors, then the leader, then (when shoal
// recorded the swarm's ID) any manager of the wanted set, in order. A
// manager that cannot list the swarm's nodes (cut off from its peers) is
// passed over by the caller.
func AnchorCandidates(want []Want, obs Observed, pol Policy) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range candidateOrder(want, pol) {
		s, ok := obs.States[n]
		if seen[n] || !ok || !managesSwarm(s, pol.ClusterID) {
			continue
		}
		seen[n] = true
		out = append(out, n)
		if pol.ClusterID == "" {
			break // without a record only the first is this swarm
		}
	}
	return out
}

// candidateOrder is the order AnchorCandidates looks at: the anchors, the
// leader, then the wanted nodes. The other nodes are searched only for the
// recorded swarm: without a record, a manager of some swarm among them is
// not known to be this one (the leader starts the swarm; the others are
// refused).
func candidateOrder(want []Want, pol Policy) []string {
	var order []string
	order = append(order, pol.Anchors...)
	order = append(order, pol.Leader)
	if pol.ClusterID != "" {
		for _, w := range want {
			order = append(order, w.Name)
		}
	}
	return order
}

// managesSwarm: s is an active manager that knows its swarm's ID, and
// that swarm is clusterID ("" for any).
func managesSwarm(s State, clusterID string) bool {
	return s.Active() && s.Manager && s.ClusterID != "" && (clusterID == "" || s.ClusterID == clusterID)
}

// Electing tells whether some manager answers without its swarm's ID, as
// managers do while their swarm elects a new Raft leader.
func Electing(obs Observed) bool {
	for _, s := range obs.States {
		if s.Active() && s.Manager && s.ClusterID == "" {
			return true
		}
	}
	return false
}

// moved tells whether the swarm knows node w (state s) at another address
// than the one it has now.
func moved(w Want, s State, members []Member) bool {
	for _, m := range members {
		if m.ID == s.NodeID {
			return w.Advertise != "" && (m.Addr != "" && m.Addr != w.Advertise || advertisesElsewhere(w, s))
		}
	}
	return false
}

// movedWhy says which old address a moved node is known at.
func movedWhy(w Want, s State, m Member) string {
	if advertisesElsewhere(w, s) {
		return "its engine advertises " + s.NodeAddr + ", its address is now " + w.Advertise
	}
	return "the swarm knows it at " + m.Addr + ", its address is now " + w.Advertise
}

// advertisesElsewhere tells whether the engine still advertises an address
// the host no longer has. A worker that came back with a new address
// reconnects to the managers, whose entry for it then shows the new
// address, while its own gossip and VXLAN stay on the old one: its overlay
// traffic is lost until it joins again. Only IP addresses are compared (the
// engine says an IP; an interface name or host name is not wrong for that).
func advertisesElsewhere(w Want, s State) bool {
	want, have := net.ParseIP(w.Advertise), net.ParseIP(s.NodeAddr)
	return want != nil && have != nil && !want.Equal(have)
}

// lockedMember finds a locked node's entry: by its node ID when the engine
// says it, else by its hostname (unique in a cluster).
func lockedMember(w Want, s State, members []Member) (Member, bool) {
	for _, m := range members {
		if s.NodeID != "" && m.ID == s.NodeID || s.NodeID == "" && m.Hostname == w.Hostname {
			return m, true
		}
	}
	return Member{}, false
}

// SteadyAnchor keeps PickAnchor's anchor unless its address changed: a
// manager is joined again (Readdress) through another, so another live
// manager of the swarm that is where the swarm knows it takes its place.
// obs.Members come from the anchor.
func SteadyAnchor(want []Want, obs Observed, anchor, clusterID string) string {
	i := slices.IndexFunc(want, func(w Want) bool { return w.Name == anchor })
	if i < 0 || !moved(want[i], obs.States[anchor], obs.Members) {
		return anchor
	}
	for _, w := range want {
		s := obs.States[w.Name]
		if w.Name != anchor && s.Active() && s.Manager && s.ClusterID == clusterID && !moved(w, s, obs.Members) {
			return w.Name
		}
	}
	return anchor
}

// Decide decides each wanted node's membership. anchor and clusterID come
// from PickAnchor; obs.Members from the anchor. It refuses (an error that
// names every node at fault and what to type) rather than harm a swarm.
func Decide(want []Want, obs Observed, pol Policy, anchor, clusterID string) (Decision, error) {
	dc := newDecider(want, obs, pol, anchor, clusterID)
	dc.checkAnchors()
	for _, w := range want {
		dc.decideNode(w)
	}
	dc.checkLeader()
	sortErrs(dc.errs)
	return dc.d, errors.Join(dc.errs...)
}

// decider is one Decide's working state: what it knows, what it decided,
// what it refuses. Its rules are methods, each for one kind of node.
type decider struct {
	obs       Observed
	pol       Policy
	anchor    string
	clusterID string
	// known are the swarm's node IDs (from the anchor's list).
	known map[string]Member
	// locked counts the wanted nodes that are locked managers.
	locked int
	d      Decision
	errs   []error
}

func newDecider(want []Want, obs Observed, pol Policy, anchor, clusterID string) *decider {
	dc := &decider{obs: obs, pol: pol, anchor: anchor, clusterID: clusterID, known: map[string]Member{},
		d: Decision{Anchor: anchor, ClusterID: clusterID}}
	for _, m := range obs.Members {
		dc.known[m.ID] = m
	}
	for _, w := range want {
		if s, ok := obs.States[w.Name]; ok && s.LocalNodeState == StateLocked {
			dc.locked++
		}
	}
	return dc
}

func (dc *decider) refuse(format string, a ...any) {
	dc.errs = append(dc.errs, fmt.Errorf(format, a...))
}

func (dc *decider) add(w Want, m Membership, reason string) {
	dc.d.Nodes = append(dc.d.Nodes, NodeDecision{Name: w.Name, Membership: m, Reason: reason})
}

// inSwarm tells whether a node's state is of this swarm; a worker does not
// know the cluster ID: then the swarm's list must know the node.
func (dc *decider) inSwarm(s State) bool {
	if !s.Active() {
		return false
	}
	if s.ClusterID != "" {
		return s.ClusterID == dc.clusterID
	}
	_, listed := dc.known[s.NodeID]
	return s.NodeID != "" && listed
}

// checkAnchors refuses when no anchor was found and a manager outside the
// set (--swarm-join) says why.
func (dc *decider) checkAnchors() {
	if dc.anchor != "" {
		return
	}
	for _, a := range dc.pol.Anchors {
		s, ok := dc.obs.States[a]
		switch {
		case !ok:
			dc.refuse("%s: the swarm's manager does not answer: %s", a, dc.obs.Unreachable[a])
		case s.LocalNodeState == StateLocked:
			dc.refuse("%s is a locked swarm manager: unlock it first (%s)", a, dc.pol.UnlockHint)
		default:
			dc.refuse("%s is not a swarm manager (state %s): create it with --swarm-master first", a, s.LocalNodeState)
		}
	}
}

// decideNode decides one node by its swarm state.
func (dc *decider) decideNode(w Want) {
	s, ok := dc.obs.States[w.Name]
	if !ok {
		dc.refuse("%s: the Docker engine does not answer: %s", w.Name, dc.obs.Unreachable[w.Name])
		return
	}
	switch s.LocalNodeState {
	case StateLocked:
		dc.lockedNode(w, s)
	case StateActive:
		dc.activeNode(w, s)
	case StateInactive, "":
		dc.add(w, dc.joinOrInit(w), "in no swarm")
	default: // pending, error
		dc.halfwayNode(w, s)
	}
}

// joinOrInit: a node in no swarm joins, or starts the swarm when it is the
// leader and there is none to join.
func (dc *decider) joinOrInit(w Want) Membership {
	if dc.anchor == "" && w.Name == dc.pol.Leader && len(dc.pol.Anchors) == 0 {
		return Init
	}
	return Join
}

// lockedNode: a locked manager is unlocked when allowed, never left or
// re-initialised.
func (dc *decider) lockedNode(w Want, s State) {
	if m, ok := lockedMember(w, s, dc.obs.Members); ok && dc.anchor != "" && m.Addr != "" && w.Advertise != "" && m.Addr != w.Advertise {
		// A locked manager cut off by an address change cannot be unlocked
		// (unlocking waits for its Raft peers, who call it at its old
		// address): it is demoted through the anchor and joins again,
		// which needs no unlock.
		dc.add(w, Readdress, "locked, and the swarm knows it at "+m.Addr+", its address is now "+w.Advertise)
		return
	}
	if dc.pol.CanUnlock || dc.pol.Restarted[w.Name] {
		dc.add(w, Unlock, "locked manager")
		return
	}
	dc.refuse("%s is a locked swarm manager (autolock): unlock it with %s; shoal never leaves or re-initialises it", w.Name, dc.pol.UnlockHint)
}

// activeNode: a node in a swarm is kept (or readdressed) in this one; in
// another it leaves only when forced.
func (dc *decider) activeNode(w Want, s State) {
	switch {
	case w.Name == dc.anchor:
		dc.add(w, Keep, "manager of swarm "+Short(dc.clusterID))
	case dc.anchor != "" && dc.inSwarm(s):
		dc.memberNode(w, s)
	case dc.anchor == "" && dc.locked > 0:
		// The swarm's managers are locked: nobody can tell yet whether this
		// node is one of theirs, so it is not touched.
		dc.add(w, Keep, "swarm managers locked: decided after unlock")
	case s.Manager && s.ClusterID == "":
		// A manager that does not know its swarm's ID has no leader (lost
		// quorum): its swarm cannot be told, and leaving would lose that
		// swarm's state.
		dc.refuse("%s manages a swarm that has no leader now (%s): shoal cannot tell whether it is this swarm and does not make it leave; bring a majority of its managers back", w.Name, s.Error)
	case dc.pol.Force:
		dc.add(w, Rejoin, "in another swarm "+Short(s.ClusterID)+": forced to leave it")
	default:
		dc.refuseOtherSwarm(w, s)
	}
}

// memberNode: a node of this swarm is kept, or readdressed when the swarm
// knows it at another address.
func (dc *decider) memberNode(w Want, s State) {
	if m, ok := dc.known[s.NodeID]; ok && moved(w, s, dc.obs.Members) {
		dc.add(w, Readdress, movedWhy(w, s, m))
		return
	}
	dc.add(w, Keep, "in the swarm")
}

// refuseOtherSwarm refuses a node of another swarm, unforced.
func (dc *decider) refuseOtherSwarm(w Want, s State) {
	what := "a worker of another swarm"
	if s.Manager {
		what = "a manager of another swarm " + Short(s.ClusterID)
	}
	dc.refuse("%s is %s: use %s to make it leave and join this one", w.Name, what, dc.pol.ForceHint)
}

// halfwayNode: a node pending or in error leaves a half-made membership;
// one that may be of this swarm is never made to leave.
func (dc *decider) halfwayNode(w Want, s State) {
	_, listed := dc.known[s.NodeID]
	switch {
	case s.NodeID == "":
		dc.add(w, Rejoin, "swarm state "+s.LocalNodeState+": leaves the half-made membership first")
	case listed:
		dc.refuse("%s is %s in the swarm (%s): see 'docker info' on it; shoal does not make it leave", w.Name, s.LocalNodeState, s.Error)
	case dc.anchor == "":
		// It holds a swarm's certificate and waits for that swarm's
		// managers (no quorum, or restarting): maybe this swarm, whose
		// state it keeps.
		dc.refuse("%s is %s as node %s of a swarm whose managers it cannot reach (%s): shoal cannot tell whether it is this swarm and does not make it leave; bring its managers back (see 'docker info' on it)", w.Name, s.LocalNodeState, Short(s.NodeID), s.Error)
	case dc.pol.Force:
		dc.add(w, Rejoin, "swarm state "+s.LocalNodeState+" in another swarm: forced to leave it")
	default:
		dc.refuse("%s is %s in another swarm (node %s): use %s to make it leave and join this one", w.Name, s.LocalNodeState, Short(s.NodeID), dc.pol.ForceHint)
	}
}

// checkLeader: a swarm made in this run needs its leader in no swarm (or
// leaving one), unless the nodes join a manager outside the set.
func (dc *decider) checkLeader() {
	if dc.anchor != "" || dc.locked > 0 || len(dc.errs) > 0 || len(dc.pol.Anchors) > 0 {
		return
	}
	for _, n := range dc.d.Nodes {
		if n.Name == dc.pol.Leader && (n.Membership == Init || n.Membership == Rejoin) {
			return
		}
	}
	dc.refuse("no node can start the swarm: the leader %s is not among the nodes in no swarm", dc.pol.Leader)
}

func sortErrs(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}

// Short is the 12-character form of a swarm or node ID.
func Short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
