package cluster

import (
	"context"
	"github.com/shoal-dev/shoal/machine"
	"strings"
	"testing"
	"time"
)

// TestRollRefusedWhileTheSwarmIsLocked: while another command holds the
// swarm's lock (a roll of 'machine upgrade', a 'cluster rotate'), the roll
// of 'cluster up' is refused before it drains anything, with the command
// to type again.
func TestRollRefusedWhileTheSwarmIsLocked(t *testing.T) {
	s := newSwarmStage(t, "manager", "manager", "manager", "worker")
	_, id := s.mustRun(nil)
	// Another process holds it (the same process's holders take turns).
	other := machine.NewManager(s.c.Machines.Store, s.c.Machines.Drivers)
	unlock, err := other.LockSwarm(context.Background(), s.hosts[0].node)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	s.hosts[1].held, s.hosts[1].heldWhy = true, "engine 28.5.1 -> 28.5.2"
	s.w.ResetCalls()
	_, _, _, err = s.run(&State{ClusterID: id})
	if err == nil || !strings.Contains(err.Error(), "another roll, upgrade or rotate runs on it") {
		t.Fatalf("a roll while the swarm is locked: %v, want refused", err)
	}
	for host, calls := range s.w.Mutations() {
		if len(calls) > 0 {
			t.Errorf("a refused roll changed %s: %v", host, calls)
		}
	}
}

// TestRotateRefusedDuringUp: rotate does not make new tokens while 'cluster
// up' (which holds the cluster's lock) may be joining nodes with the old.
func TestRotateRefusedDuringUp(t *testing.T) {
	s := newSwarmStage(t, "manager")
	unlock, err := s.c.Machines.Store.TryLock("cluster", "lab")
	if err != nil {
		t.Fatal(err)
	}
	err = s.c.Rotate(context.Background(), s.spec, false, time.Second)
	unlock()
	if err == nil || !strings.Contains(err.Error(), "another 'cluster up' or 'cluster down' is running") {
		t.Fatalf("rotate during up: %v, want refused", err)
	}
}
