package bootstrap

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const (
	thisSwarm  = "thisswarm0000000000000000"
	otherSwarm = "otherswarm000000000000000"
)

// subjects are the states a wanted node can be in, as the reconciler
// observes them.
var subjects = []struct {
	name string
	// state is what the engine says; nil: it does not answer.
	state *State
	// member: the anchor lists its node ID (this swarm).
	member bool
}{
	{"inactive", &State{LocalNodeState: StateInactive}, false},
	{"pending-joining", &State{LocalNodeState: StatePending}, false},
	{"pending-member", &State{LocalNodeState: StatePending, NodeID: "subj"}, true},
	{"pending-unknown-id", &State{LocalNodeState: StatePending, NodeID: "subj"}, false},
	{"error", &State{LocalNodeState: StateError, Error: "tls: bad certificate"}, false},
	{"this-manager", &State{LocalNodeState: StateActive, NodeID: "subj", ClusterID: thisSwarm, Manager: true}, true},
	{"this-worker", &State{LocalNodeState: StateActive, NodeID: "subj"}, true},
	{"other-manager", &State{LocalNodeState: StateActive, NodeID: "subj", ClusterID: otherSwarm, Manager: true}, false},
	{"other-worker", &State{LocalNodeState: StateActive, NodeID: "subj"}, false},
	{"locked", &State{LocalNodeState: StateLocked, Error: "Swarm is encrypted and locked."}, false},
	{"unreachable", nil, false},
}

// world builds what the reconciler observes: the node "subj" in the given
// state, and the node "lead" a live manager of this swarm (anchor) or a
// fresh engine (no anchor).
func world(sub int, anchor bool) ([]Want, Observed) {
	s := subjects[sub]
	want := []Want{
		{Name: "lead", Hostname: "lead", Role: RoleManager},
		{Name: "subj", Hostname: "subj", Role: RoleWorker},
	}
	obs := Observed{States: map[string]State{}, Unreachable: map[string]string{}}
	if anchor {
		obs.States["lead"] = State{LocalNodeState: StateActive, NodeID: "leadid", ClusterID: thisSwarm, Manager: true}
		obs.Members = []Member{{ID: "leadid", Hostname: "lead", Role: RoleManager, Ready: true, Reachable: true, Leader: true}}
		if s.member {
			obs.Members = append(obs.Members, Member{ID: "subj", Hostname: "subj", Role: RoleWorker, Ready: s.state.Active()})
		}
	} else {
		obs.States["lead"] = State{LocalNodeState: StateInactive}
	}
	if s.state == nil {
		obs.Unreachable["subj"] = "ssh: connection refused"
	} else {
		obs.States["subj"] = *s.state
	}
	return want, obs
}

// TestDecideRules runs every combination of a node's state, the anchor,
// the leader, Force, CanUnlock and a recorded swarm ID, and checks the
// rules that never bend.
func TestDecideRules(t *testing.T) {
	for sub, s := range subjects {
		for _, anchor := range []bool{true, false} {
			for _, leader := range []string{"lead", "subj"} {
				for _, force := range []bool{false, true} {
					for _, canUnlock := range []bool{false, true} {
						for _, recorded := range []string{"", thisSwarm} {
							name := fmt.Sprintf("%s/anchor=%v/leader=%s/force=%v/unlock=%v/recorded=%v", s.name, anchor, leader, force, canUnlock, recorded != "")
							want, obs := world(sub, anchor)
							pol := Policy{Leader: leader, ClusterID: recorded, Force: force, CanUnlock: canUnlock, ForceHint: "--force", UnlockHint: "machine swarm-unlock"}
							a, cid := PickAnchor(want, obs, pol)
							// PickAnchor's order is pinned by TestPickAnchor;
							// here the rules hold whichever live manager it
							// takes. With the swarm recorded, it takes lead
							// (or subj when subj is its manager too).
							switch {
							case a != "" && a != "lead" && a != "subj":
								t.Fatalf("%s: anchor %q", name, a)
							case recorded != "" && anchor && a != "lead" && !(a == "subj" && s.name == "this-manager"):
								t.Errorf("%s: anchor %q, want lead", name, a)
							case a == "subj" && (s.state == nil || !s.state.Active() || !s.state.Manager):
								t.Errorf("%s: anchor subj in state %+v", name, s.state)
							}
							if a != "lead" {
								obs.Members = nil // the members come from the anchor
							}
							d, err := Decide(want, obs, pol, a, cid)
							if a == "subj" {
								if d.Of("subj").Membership != Keep {
									t.Errorf("%s: the anchor is %q, want Keep", name, d.Of("subj").Membership)
								}
								continue
							}
							checkRules(t, name, s.name, s.member && a == "lead", a == "lead", pol, a, cid, d, err)
						}
					}
				}
			}
		}
	}
}

func checkRules(t *testing.T, name, state string, member, anchor bool, pol Policy, a, cid string, d Decision, err error) {
	t.Helper()
	m := d.Of("subj").Membership
	refused := err != nil && strings.Contains(err.Error(), "subj")
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s (membership %q, err %v)", name, fmt.Sprintf(format, args...), m, err)
	}
	if anchor && cid != thisSwarm {
		fail("swarm %q, want this one", cid)
	}
	if m != "" && refused {
		fail("both decided and refused")
	}
	// Init only where no swarm is, and only on the leader.
	for _, n := range d.Nodes {
		if n.Membership == Init && (a != "" || n.Name != pol.Leader) {
			fail("%s is Init with anchor %q, leader %q", n.Name, a, pol.Leader)
		}
	}
	switch state {
	case "this-manager", "this-worker":
		if anchor && m != Keep {
			fail("a node of this swarm must be kept")
		}
		if !anchor && !pol.Force && (m == Rejoin || m == Init) {
			fail("a node of a swarm is left only when forced")
		}
	case "pending-member", "pending-unknown-id":
		// A pending node with a node ID holds a swarm's certificate: it is
		// a member of a swarm it cannot reach now (its managers have no
		// quorum, or are restarting) — maybe this one.
		switch {
		case anchor && member && (m != "" || !refused):
			fail("a pending member of this swarm is refused, never made to leave")
		case pol.Force:
		case !anchor || !member:
			mustNot(t, name, m == Rejoin, "a pending node with a node ID is Rejoined (left, re-made) without Force")
		}
	case "locked":
		switch {
		case pol.CanUnlock && m != Unlock:
			fail("a locked node with a key must be Unlock")
		case !pol.CanUnlock && (m != "" || !refused || !strings.Contains(err.Error(), pol.UnlockHint)):
			fail("a locked node without a key must be refused, naming %q", pol.UnlockHint)
		}
	case "other-manager", "other-worker":
		if m == Rejoin && !pol.Force {
			fail("another swarm's node Rejoined without Force")
		}
		if anchor || pol.ClusterID != "" || state == "other-worker" {
			if !pol.Force && (!refused || !strings.Contains(err.Error(), pol.ForceHint)) {
				fail("another swarm's node must be refused, naming %q", pol.ForceHint)
			}
			if pol.Force && m != Rejoin && a != "subj" {
				fail("another swarm's node is Rejoined when forced")
			}
		}
	case "inactive":
		if err == nil && m != Join && m != Init {
			fail("a node in no swarm joins or inits")
		}
		if m == Init && (anchor || pol.Leader != "subj") {
			fail("Init while a swarm is there or not the leader")
		}
	case "pending-joining", "error":
		if err == nil && m != Rejoin {
			fail("a half-made membership is left and made again")
		}
	case "unreachable":
		if !refused || !strings.Contains(err.Error(), "does not answer") {
			fail("an engine that does not answer must be refused")
		}
	}
}

// mustNot fails the test when a rule is broken, saying which and how.
func mustNot(t *testing.T, name string, broken bool, what string) {
	t.Helper()
	if broken {
		t.Errorf("%s: %s", name, what)
	}
}

func TestPickAnchor(t *testing.T) {
	mgr := func(cid string) State {
		return State{LocalNodeState: StateActive, NodeID: "id", ClusterID: cid, Manager: true}
	}
	want := []Want{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	tests := []struct {
		name     string
		states   map[string]State
		pol      Policy
		wantName string
		wantCID  string
	}{
		{"nothing active", map[string]State{"a": {LocalNodeState: StateInactive}}, Policy{Leader: "a"}, "", ""},
		{"the leader first", map[string]State{"a": mgr("X"), "b": mgr("X")}, Policy{Leader: "b"}, "b", "X"},
		{"an anchor before the leader", map[string]State{"m": mgr("X"), "a": mgr("X")}, Policy{Leader: "a", Anchors: []string{"m"}}, "m", "X"},
		{"a locked leader is no anchor", map[string]State{"a": {LocalNodeState: StateLocked}, "c": mgr("X")}, Policy{Leader: "a", ClusterID: "X"}, "c", "X"},
		{"a worker is no anchor", map[string]State{"a": {LocalNodeState: StateActive, NodeID: "w"}, "b": mgr("X")}, Policy{Leader: "a", ClusterID: "X"}, "b", "X"},
		{"an inactive leader is no anchor", map[string]State{"a": {LocalNodeState: StateInactive}, "b": mgr("X")}, Policy{Leader: "a", ClusterID: "X"}, "b", "X"},
		{"the recorded swarm only", map[string]State{"a": mgr("OTHER"), "b": mgr("X")}, Policy{Leader: "a", ClusterID: "X"}, "b", "X"},
		{"none of the recorded swarm", map[string]State{"a": mgr("OTHER")}, Policy{Leader: "a", ClusterID: "X"}, "", ""},
		// Without a recorded ID, the leader's swarm is the one; Decide then
		// refuses the other one's nodes (without Force).
		{"unrecorded: the leader's swarm", map[string]State{"a": mgr("OTHER"), "b": mgr("X")}, Policy{Leader: "b"}, "b", "X"},
		// (Without a record and the leader in no swarm, the code today
		// takes another wanted node's swarm: TestReconcileOtherSwarmFirstRun.)
	}
	for _, tc := range tests {
		n, cid := PickAnchor(want, Observed{States: tc.states}, tc.pol)
		if n != tc.wantName || cid != tc.wantCID {
			t.Errorf("%s: got %q %q, want %q %q", tc.name, n, cid, tc.wantName, tc.wantCID)
		}
	}
}

// TestDecideCases pins whole decisions and the refusals' words.
func TestDecideCases(t *testing.T) {
	inactive := State{LocalNodeState: StateInactive}
	mgr := State{LocalNodeState: StateActive, NodeID: "m1", ClusterID: thisSwarm, Manager: true}
	want3 := []Want{{Name: "m1", Role: RoleManager}, {Name: "m2", Role: RoleManager}, {Name: "w1", Role: RoleWorker}}
	wantAddrs := []Want{{Name: "m1", Role: RoleManager, Advertise: "10.0.0.1"}, {Name: "w1", Role: RoleWorker, Advertise: "10.0.0.9"}}
	tests := []struct {
		name    string
		want    []Want
		states  map[string]State
		unreach map[string]string
		members []Member
		pol     Policy
		wantD   map[string]Membership
		wantErr []string
	}{
		{
			name: "a new swarm", want: want3,
			states: map[string]State{"m1": inactive, "m2": inactive, "w1": inactive},
			pol:    Policy{Leader: "m1"},
			wantD:  map[string]Membership{"m1": Init, "m2": Join, "w1": Join},
		},
		{
			name: "the leader is in no swarm, another manager is", want: want3,
			states:  map[string]State{"m1": inactive, "m2": {LocalNodeState: StateActive, NodeID: "m2", ClusterID: thisSwarm, Manager: true}, "w1": {LocalNodeState: StateActive, NodeID: "w1"}},
			members: []Member{{ID: "m2", Role: RoleManager}, {ID: "w1", Role: RoleWorker}},
			pol:     Policy{Leader: "m1", ClusterID: thisSwarm},
			wantD:   map[string]Membership{"m1": Join, "m2": Keep, "w1": Keep},
		},
		{
			name: "every manager locked, no key: workers wait", want: want3,
			states: map[string]State{"m1": {LocalNodeState: StateLocked}, "m2": {LocalNodeState: StateLocked}, "w1": {LocalNodeState: StateActive, NodeID: "w1"}},
			pol:    Policy{Leader: "m1", ClusterID: thisSwarm, UnlockHint: "--unlock-key"},
			wantD:  map[string]Membership{"w1": Keep}, wantErr: []string{"m1 is a locked swarm manager", "m2 is a locked swarm manager", "--unlock-key"},
		},
		{
			name: "every manager locked, a key", want: want3,
			states: map[string]State{"m1": {LocalNodeState: StateLocked}, "m2": {LocalNodeState: StateLocked}, "w1": {LocalNodeState: StateActive, NodeID: "w1"}},
			pol:    Policy{Leader: "m1", ClusterID: thisSwarm, CanUnlock: true},
			wantD:  map[string]Membership{"m1": Unlock, "m2": Unlock, "w1": Keep},
		},
		{
			name: "a recorded swarm and a manager that does not answer: no new swarm", want: want3,
			states:  map[string]State{"m1": inactive, "w1": inactive},
			unreach: map[string]string{"m2": "no route to host"},
			pol:     Policy{Leader: "m1", ClusterID: thisSwarm},
			wantD:   map[string]Membership{"m1": Init, "w1": Join},
			wantErr: []string{"m2: the Docker engine does not answer: no route to host"},
		},
		{
			name: "the leader in another swarm, not forced", want: want3,
			states:  map[string]State{"m1": {LocalNodeState: StateActive, NodeID: "x", ClusterID: otherSwarm, Manager: true}, "m2": inactive, "w1": inactive},
			pol:     Policy{Leader: "m1", ClusterID: thisSwarm, ForceHint: "--force"},
			wantD:   map[string]Membership{"m2": Join, "w1": Join},
			wantErr: []string{"m1 is a manager of another swarm " + Short(otherSwarm) + ": use --force"},
		},
		{
			// The swarm's entry of a worker shows where its connection
			// comes from (the new address); the engine still advertises
			// the old one for gossip and VXLAN.
			name: "a worker that still advertises its old address", want: wantAddrs,
			states:  map[string]State{"m1": {LocalNodeState: StateActive, NodeID: "m1", NodeAddr: "10.0.0.1", ClusterID: thisSwarm, Manager: true}, "w1": {LocalNodeState: StateActive, NodeID: "w1", NodeAddr: "10.0.0.3"}},
			members: []Member{{ID: "m1", Role: RoleManager, Addr: "10.0.0.1"}, {ID: "w1", Role: RoleWorker, Addr: "10.0.0.9"}},
			pol:     Policy{Leader: "m1", ClusterID: thisSwarm},
			wantD:   map[string]Membership{"m1": Keep, "w1": Readdress},
		},
		{
			name: "a worker that advertises its address", want: wantAddrs,
			states:  map[string]State{"m1": {LocalNodeState: StateActive, NodeID: "m1", NodeAddr: "10.0.0.1", ClusterID: thisSwarm, Manager: true}, "w1": {LocalNodeState: StateActive, NodeID: "w1", NodeAddr: "10.0.0.9"}},
			members: []Member{{ID: "m1", Role: RoleManager, Addr: "10.0.0.1"}, {ID: "w1", Role: RoleWorker, Addr: "10.0.0.9"}},
			pol:     Policy{Leader: "m1", ClusterID: thisSwarm},
			wantD:   map[string]Membership{"m1": Keep, "w1": Keep},
		},
		{
			name: "a worker whose address is a host name", want: []Want{wantAddrs[0], {Name: "w1", Role: RoleWorker, Advertise: "w1.lan"}},
			states:  map[string]State{"m1": {LocalNodeState: StateActive, NodeID: "m1", NodeAddr: "10.0.0.1", ClusterID: thisSwarm, Manager: true}, "w1": {LocalNodeState: StateActive, NodeID: "w1", NodeAddr: "10.0.0.9"}},
			members: []Member{{ID: "m1", Role: RoleManager, Addr: "10.0.0.1"}, {ID: "w1", Role: RoleWorker}},
			pol:     Policy{Leader: "m1", ClusterID: thisSwarm},
			wantD:   map[string]Membership{"m1": Keep, "w1": Keep},
		},
		{
			name: "an anchor outside the set", want: want3[1:],
			states:  map[string]State{"boss": mgr, "m2": inactive, "w1": inactive},
			members: []Member{{ID: "m1", Role: RoleManager}},
			pol:     Policy{Leader: "m2", Anchors: []string{"boss"}},
			wantD:   map[string]Membership{"m2": Join, "w1": Join},
		},
		{
			name: "an anchor that is locked", want: want3[1:],
			states:  map[string]State{"boss": {LocalNodeState: StateLocked}, "m2": inactive, "w1": inactive},
			pol:     Policy{Leader: "m2", Anchors: []string{"boss"}, UnlockHint: "machine swarm-unlock boss"},
			wantD:   map[string]Membership{"m2": Join, "w1": Join},
			wantErr: []string{"boss is a locked swarm manager: unlock it first (machine swarm-unlock boss)"},
		},
	}
	for _, tc := range tests {
		obs := Observed{States: tc.states, Unreachable: tc.unreach, Members: tc.members}
		a, cid := PickAnchor(tc.want, obs, tc.pol)
		if a == "" {
			obs.Members = nil
		}
		d, err := Decide(tc.want, obs, tc.pol, a, cid)
		got := map[string]Membership{}
		for _, n := range d.Nodes {
			got[n.Name] = n.Membership
		}
		if !reflect.DeepEqual(got, tc.wantD) {
			t.Errorf("%s: decision %v, want %v", tc.name, got, tc.wantD)
		}
		if len(tc.wantErr) == 0 && err != nil {
			t.Errorf("%s: unexpected refusal: %v", tc.name, err)
		}
		for _, w := range tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: refusal %v does not say %q", tc.name, err, w)
			}
		}
	}
}

func TestQuorumCheck(t *testing.T) {
	mgrs := func(reachable ...bool) []Member {
		var ms []Member
		for i, r := range reachable {
			ms = append(ms, Member{ID: fmt.Sprint("m", i), Hostname: fmt.Sprint("host", i), Role: RoleManager, Reachable: r, Ready: r})
		}
		return append(ms, Member{ID: "w", Hostname: "worker", Role: RoleWorker, Ready: true})
	}
	set := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	tests := []struct {
		name     string
		members  []Member
		leaving  map[string]bool
		promoted int
		warn     string // a part of the warning; "" for none
		err      string // a part of the error; "" for none
	}{
		{"3 managers, remove 1", mgrs(true, true, true), set("m0"), 0, "2 managers tolerate no loss", ""},
		{"3 managers, 1 unreachable, remove a reachable one", mgrs(true, true, false), set("m0"), 0, "", "would lose the Raft quorum"},
		{"3 managers, 1 unreachable, remove the unreachable one", mgrs(true, true, false), set("m2"), 0, "2 managers", ""},
		{"remove every manager", mgrs(true, true, true), set("m0", "m1", "m2"), 0, "", "leaves the swarm no manager"},
		{"remove every manager, one promoted", mgrs(true), set("m0"), 1, "", ""},
		{"a worker leaves", mgrs(true, true, true), set("w"), 0, "", ""},
		{"2 managers", mgrs(true, true), nil, 0, "2 managers tolerate no loss", ""},
		{"1 manager, 1 promoted", mgrs(true), nil, 1, "2 managers tolerate no loss", ""},
		{"4 managers", mgrs(true, true, true, true), nil, 0, "4 managers tolerate no more failures than 3", ""},
		{"5 managers, 2 unreachable, remove a reachable one", mgrs(true, true, true, false, false), set("m0"), 0, "", "would lose the Raft quorum"},
		{"5 managers, 1 unreachable, remove a reachable one", mgrs(true, true, true, true, false), set("m0"), 0, "4 managers", ""},
		{"quorum lost, remove the unreachable", mgrs(true, false, false), set("m1", "m2"), 0, "", "has lost its quorum"},
		{"3 managers, nothing leaves", mgrs(true, true, true), nil, 0, "", ""},
	}
	for _, tc := range tests {
		warn, err := QuorumCheck(tc.members, tc.leaving, tc.promoted)
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
		if (tc.warn == "") != (warn == "") || !strings.Contains(warn, tc.warn) {
			t.Errorf("%s: warning %q, want %q", tc.name, warn, tc.warn)
		}
	}
}

func TestStale(t *testing.T) {
	members := []Member{
		{ID: "new-a", Hostname: "a", Ready: true},
		{ID: "old-a", Hostname: "a"},                    // replaced host: stale
		{ID: "old-b", Hostname: "b"},                    // b's engine is down, still its node: kept
		{ID: "gone", Hostname: "elsewhere"},             // not a host of ours: kept
		{ID: "old-c", Hostname: "c", Ready: true},       // ready, c not joining: kept
		{ID: "old-d", Hostname: "d", Ready: true},       // ready, but d joins afresh: the swarm has not noticed yet
		{ID: "old-e", Hostname: "e", Role: RoleManager}, // a replaced manager: stale too
	}
	current := map[string]string{"a": "new-a", "b": "old-b", "c": "new-c"}
	hostnames := map[string]bool{"a": true, "b": true, "c": true, "d": true, "e": true}
	got := Stale(members, current, hostnames, map[string]bool{"d": true, "e": true})
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	if want := []string{"old-a", "old-d", "old-e"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("stale %v, want %v", ids, want)
	}
}

func TestRoleChanges(t *testing.T) {
	members := []Member{
		{ID: "1", Role: RoleManager}, {ID: "2", Role: RoleWorker}, {ID: "3", Role: RoleManager}, {ID: "4", Role: RoleWorker},
	}
	want := []Want{
		{Name: "a", Role: RoleWorker},  // demote
		{Name: "b", Role: RoleManager}, // promote
		{Name: "c", Role: RoleManager}, // as is
		{Name: "d", Role: ""},          // no say
		{Name: "e", Role: RoleManager}, // not a member yet
	}
	ids := map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
	got := RoleChanges(want, ids, members)
	wantRC := []RoleChange{{Name: "b", NodeID: "2", To: RoleManager}, {Name: "a", NodeID: "1", To: RoleWorker}}
	if !reflect.DeepEqual(got, wantRC) {
		t.Errorf("role changes %+v, want %+v (promotions first)", got, wantRC)
	}
}

// TestDecideLockedAndMoved: a locked manager whose address changed is
// joined again (it cannot be unlocked while its peers call its old
// address); a locked manager where the swarm knows it is only unlocked.
func TestDecideLockedAndMoved(t *testing.T) {
	members := []Member{
		{ID: "a", Hostname: "m1", Addr: "10.0.0.1", Role: RoleManager, Ready: true, Reachable: true},
		{ID: "b", Hostname: "m2", Addr: "10.0.0.2", Role: RoleManager, Ready: false},
	}
	obs := Observed{Members: members, States: map[string]State{
		"m1": {LocalNodeState: StateActive, NodeID: "a", ClusterID: "c", Manager: true},
		"m2": {LocalNodeState: StateLocked},
	}}
	for _, tc := range []struct {
		addr string
		pol  Policy
		want Membership
	}{
		{"10.0.0.9", Policy{Leader: "m1"}, Readdress},
		{"10.0.0.9", Policy{Leader: "m1", CanUnlock: true}, Readdress},
		{"10.0.0.2", Policy{Leader: "m1", CanUnlock: true}, Unlock},
	} {
		want := []Want{{Name: "m1", Hostname: "m1", Role: RoleManager, Advertise: "10.0.0.1"}, {Name: "m2", Hostname: "m2", Role: RoleManager, Advertise: tc.addr}}
		d, err := Decide(want, obs, tc.pol, "m1", "c")
		if err != nil {
			t.Errorf("%s: %v", tc.addr, err)
			continue
		}
		if got := d.Of("m2").Membership; got != tc.want {
			t.Errorf("locked m2 at %s (%+v): %s, want %s", tc.addr, tc.pol, got, tc.want)
		}
	}
	// Not moved and no key: refused, never left.
	want := []Want{{Name: "m1", Hostname: "m1", Role: RoleManager, Advertise: "10.0.0.1"}, {Name: "m2", Hostname: "m2", Role: RoleManager, Advertise: "10.0.0.2"}}
	if _, err := Decide(want, obs, Policy{Leader: "m1", UnlockHint: "cluster unlock x"}, "m1", "c"); err == nil || !strings.Contains(err.Error(), "cluster unlock x") {
		t.Errorf("locked, not moved, no key: %v", err)
	}
}

func TestMovedWhy(t *testing.T) {
	w := Want{Name: "w1", Advertise: "10.0.0.9"}
	m := Member{ID: "w1", Addr: "10.0.0.9"}
	if got := movedWhy(w, State{NodeAddr: "10.0.0.3"}, m); !strings.Contains(got, "advertises 10.0.0.3") {
		t.Errorf("stale engine address: %q", got)
	}
	if got := movedWhy(w, State{NodeAddr: "10.0.0.9"}, Member{Addr: "10.0.0.2"}); !strings.Contains(got, "knows it at 10.0.0.2") {
		t.Errorf("stale swarm entry: %q", got)
	}
}
