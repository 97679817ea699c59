package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEarlyAnchor(t *testing.T) {
	w := Want{Name: "m1", Hostname: "m1", Role: RoleManager, Advertise: "10.0.0.1"}
	active := State{LocalNodeState: StateActive, Manager: true, ClusterID: "c1", NodeID: "n1"}
	here := []Member{{ID: "n1", Hostname: "m1", Addr: "10.0.0.1", Role: RoleManager}}
	moved := []Member{{ID: "n1", Hostname: "m1", Addr: "10.0.0.9", Role: RoleManager}}
	for _, c := range []struct {
		name    string
		w       Want
		s       State
		members []Member
		pol     Policy
		want    Membership
		ok      bool
	}{
		{"first run, leader in no swarm: init", w, State{LocalNodeState: StateInactive}, nil, Policy{Leader: "m1"}, Init, true},
		{"empty state is inactive", w, State{}, nil, Policy{Leader: "m1"}, Init, true},
		{"recorded swarm, leader in none: another manager may hold it", w, State{LocalNodeState: StateInactive}, nil, Policy{Leader: "m1", ClusterID: "c1"}, "", false},
		{"leader manages the recorded swarm", w, active, here, Policy{Leader: "m1", ClusterID: "c1"}, Keep, true},
		{"leader manages a swarm, no record", w, active, here, Policy{Leader: "m1"}, Keep, true},
		{"leader manages another swarm than the recorded one", w, active, here, Policy{Leader: "m1", ClusterID: "c2"}, "", false},
		{"leader's address changed", w, active, moved, Policy{Leader: "m1", ClusterID: "c1"}, "", false},
		{"leader locked", w, State{LocalNodeState: StateLocked}, nil, Policy{Leader: "m1", CanUnlock: true}, "", false},
		{"leader without a Raft leader (electing)", w, State{LocalNodeState: StateActive, Manager: true}, nil, Policy{Leader: "m1"}, "", false},
		{"leader is a worker of a swarm", w, State{LocalNodeState: StateActive, NodeID: "n1"}, nil, Policy{Leader: "m1"}, "", false},
		{"leader pending", w, State{LocalNodeState: StatePending}, nil, Policy{Leader: "m1"}, "", false},
		{"not the leader", Want{Name: "m2", Role: RoleManager}, State{LocalNodeState: StateInactive}, nil, Policy{Leader: "m1"}, "", false},
		{"outside anchors", w, State{LocalNodeState: StateInactive}, nil, Policy{Leader: "m1", Anchors: []string{"x"}}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, ok := EarlyAnchor(c.w, c.s, c.members, c.pol)
			if m != c.want || ok != c.ok {
				t.Errorf("EarlyAnchor = %q, %v; want %q, %v", m, ok, c.want, c.ok)
			}
		})
	}
}

func TestDecideOne(t *testing.T) {
	w := Want{Name: "w1", Hostname: "w1", Role: RoleWorker, Advertise: "10.0.0.4"}
	members := []Member{{ID: "a", Hostname: "m1", Addr: "10.0.0.1", Role: RoleManager, Ready: true}}
	withOld := append([]Member{{ID: "old", Hostname: "w1", Addr: "10.0.0.4", Role: RoleWorker}}, members...)
	withW1 := append([]Member{{ID: "n4", Hostname: "w1", Addr: "10.0.0.4", Role: RoleWorker, Ready: true}}, members...)
	for _, c := range []struct {
		name    string
		s       State
		members []Member
		want    Membership
		ok      bool
	}{
		{"in no swarm: join", State{LocalNodeState: StateInactive}, members, Join, true},
		{"a replaced host's old entry goes first", State{LocalNodeState: StateInactive}, withOld, "", false},
		{"in the swarm: keep", State{LocalNodeState: StateActive, NodeID: "n4"}, withW1, Keep, true},
		{"in the swarm at another address", State{LocalNodeState: StateActive, NodeID: "n4"}, []Member{{ID: "n4", Hostname: "w1", Addr: "10.0.0.8", Role: RoleWorker}}, "", false},
		{"in another swarm: never touched early", State{LocalNodeState: StateActive, Manager: true, ClusterID: "other", NodeID: "x"}, members, "", false},
		{"pending", State{LocalNodeState: StatePending}, members, "", false},
		{"locked", State{LocalNodeState: StateLocked}, members, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, ok := DecideOne(w, c.s, c.members, "m1", "c1")
			if m != c.want || ok != c.ok {
				t.Errorf("DecideOne = %q, %v; want %q, %v", m, ok, c.want, c.ok)
			}
		})
	}
}

// The early swarm as `cluster up` drives it: the leader starts it, the
// others join as they come (all at once here), managers one at a time, and
// the full reconciliation afterwards has nothing left but what it alone
// does (labels).
func TestEarlyThenReconcile(t *testing.T) {
	l := newLab(t)
	req := l.request(Policy{})
	e := &Early{R: l.r, Policy: req.Policy}
	ctx := context.Background()
	ok, err := e.Start(ctx, req.Targets[0])
	if err != nil || !ok {
		t.Fatalf("Start = %v, %v", ok, err)
	}
	var wg sync.WaitGroup
	var readies atomic.Int32
	errs := make([]error, len(req.Targets))
	for i, tg := range req.Targets[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.Join(ctx, tg, func(context.Context) error { readies.Add(1); return nil })
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := readies.Load(); n != int32(len(req.Targets)-1) {
		t.Errorf("ready was waited for %d times, want once a joining node (%d)", n, len(req.Targets)-1)
	}
	if !e.Changed() || e.Anchor() != l.nodes["m1"] {
		t.Errorf("changed %v, anchor %v", e.Changed(), e.Anchor())
	}
	if l.maxConcurrent.Load() != 1 || l.lockHeld.Load() != 2 {
		t.Errorf("manager lock taken %d times, %d at once; want the 2 managers one at a time", l.lockHeld.Load(), l.maxConcurrent.Load())
	}
	l.w.ResetCalls()
	// The early pass read every node after joining it: the swarm pass
	// asks none of them again.
	known := e.States()
	if len(known) != len(req.Targets) {
		t.Errorf("the early pass knows %d states, want %d", len(known), len(req.Targets))
	}
	req2 := l.request(Policy{})
	req2.Known = known
	out := l.reconcile(req2)
	for name := range l.nodes {
		if n := l.engine(name).Count("Info"); n != 0 {
			t.Errorf("%s was asked its state %d times after the early pass", name, n)
		}
	}
	l.healthy("m1")
	// The early pass gave each node its labels as it took it in: the
	// swarm pass has nothing left to do.
	l.noMutations("the swarm pass after the early one")
	if out.Changed {
		t.Error("the swarm pass after the early one changed something")
	}
	for name := range l.nodes {
		if !slices.ContainsFunc(l.events, func(e string) bool {
			return strings.HasPrefix(e, name+" swarm-node changed label dev.shoal.name="+name)
		}) {
			t.Errorf("no early label event for %s: %v", name, l.events)
		}
	}
	// A second early pass changes nothing.
	l.w.ResetCalls()
	cid := out.ClusterID
	e = &Early{R: l.r, Policy: Policy{Leader: "m1", ClusterID: cid}}
	if ok, err := e.Start(ctx, req.Targets[0]); err != nil || !ok {
		t.Fatalf("Start again = %v, %v", ok, err)
	}
	for _, tg := range req.Targets[1:] {
		ready := func(context.Context) error { return fmt.Errorf("%s waited to join a swarm it is in", tg.Want.Name) }
		if joined, err := e.Join(ctx, tg, ready); err != nil || joined {
			t.Errorf("%s: joined %v, %v", tg.Want.Name, joined, err)
		}
	}
	l.noMutations("the second early pass")
	// The swarm is listed once for the whole pass, not once a node.
	if n := l.engine("m1").Count("NodeList"); n != 1 {
		t.Errorf("the early pass listed the swarm's nodes %d times, want 1", n)
	}
	if e.Changed() {
		t.Error("the second early pass says it changed something")
	}
}

// A node of another swarm is left alone early, and Reconcile refuses it as
// before.
func TestEarlyLeavesForeignNodes(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	if err := l.nodes["w2"].Init(ctx, "10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	req := l.request(Policy{})
	e := &Early{R: l.r, Policy: req.Policy}
	if ok, err := e.Start(ctx, req.Targets[0]); err != nil || !ok {
		t.Fatalf("Start = %v, %v", ok, err)
	}
	l.w.ResetCalls()
	if joined, err := e.Join(ctx, req.Targets[4], nil); err != nil || joined {
		t.Errorf("w2: joined %v, %v", joined, err)
	}
	if n := l.engine("w2").Count("SwarmLeave") + l.engine("w2").Count("SwarmJoin"); n != 0 {
		t.Errorf("w2 got %d leave/join calls", n)
	}
	if _, err := l.r.Reconcile(ctx, l.request(Policy{})); err == nil {
		t.Error("Reconcile took a node of another swarm without --force")
	}
}
