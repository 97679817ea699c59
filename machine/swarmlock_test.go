package machine

import (
	"context"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/bootstrap/enginetest"
)

// TestLockSwarm: while one command holds a swarm's lock, a second one on
// the same swarm (through any of its managers) is refused at once; another
// swarm is not held up, and the lock is free again once released.
func TestLockSwarm(t *testing.T) {
	ctx := context.Background()
	w := enginetest.NewWorld()
	node := func(name, addr string) *bootstrap.Node {
		return &bootstrap.Node{Name: name, Hostname: name, Addr: addr, API: enginetest.NewEngine(w, name, addr)}
	}
	m1, m2, x1 := node("m1", "10.0.0.1"), node("m2", "10.0.0.2"), node("x1", "10.0.1.1")
	for _, n := range []*bootstrap.Node{m1, x1} {
		if err := n.Init(ctx, n.Addr); err != nil {
			t.Fatal(err)
		}
	}
	sw, err := m1.API.SwarmInspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.API.SwarmJoin(ctx, swarm.JoinRequest{RemoteAddrs: []string{"10.0.0.1:2377"}, JoinToken: sw.JoinTokens.Manager}); err != nil {
		t.Fatal(err)
	}
	mgr := newManager(t)

	unlock, err := mgr.LockSwarm(ctx, m1)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	if _, err := mgr.LockSwarm(ctx, m2); err == nil || !strings.Contains(err.Error(), "another roll, upgrade or rotate runs on it") {
		t.Fatalf("second lock through another manager while the first holds it: %v, want refused", err)
	}
	other, err := mgr.LockSwarm(ctx, x1)
	if err != nil {
		t.Fatalf("another swarm's lock: %v", err)
	}
	other()
	unlock()
	again, err := mgr.LockSwarm(ctx, m2)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}
