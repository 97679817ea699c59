package bootstrap

import (
	"context"
	"slices"
	"testing"
)

func TestLeaveOnlyWhenInASwarm(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	left, err := Leave(ctx, l.nodes["w1"], true)
	if err != nil || left {
		t.Fatalf("a node in no swarm: left %v, %v", left, err)
	}
	l.never("SwarmLeave")
	l.up()
	if left, err = Leave(ctx, l.nodes["w1"], true); err != nil || !left {
		t.Fatalf("a worker of the swarm: left %v, %v", left, err)
	}
	if s := l.state("w1"); s.Active() {
		t.Fatalf("w1 is still %s", s.LocalNodeState)
	}
	if got := l.engine("w1").Calls(); !slices.Contains(got, "SwarmLeave force=true") {
		t.Errorf("w1 calls %v, want a forced leave", got)
	}
}

func TestLeaveThroughDemotesAndRemoves(t *testing.T) {
	l := newLab(t)
	l.up()
	ctx := context.Background()
	s := l.state("m2")
	if err := LeaveThrough(ctx, l.nodes["m2"], s, l.nodes["m1"]); err != nil {
		t.Fatal(err)
	}
	if got := l.engine("m2").Calls(); !slices.Contains(got, "SwarmLeave force=false") {
		t.Errorf("m2 calls %v, want a leave not forced (demoted first)", got)
	}
	for _, m := range l.members("m1") {
		if m.ID == s.NodeID {
			t.Errorf("m2's entry is still listed: %+v", m)
		}
	}
}

func TestLeaveThroughLastManagerForces(t *testing.T) {
	l := newLab(t)
	l.reconcile(l.request(Policy{}, "m1"))
	if err := LeaveThrough(context.Background(), l.nodes["m1"], l.state("m1"), nil); err != nil {
		t.Fatal(err)
	}
	if got := l.engine("m1").Calls(); !slices.Contains(got, "SwarmLeave force=true") {
		t.Errorf("m1 calls %v, want a forced leave", got)
	}
}
