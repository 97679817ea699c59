package machine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
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
	// Another process (another Manager on the same store) is refused.
	otherProcess := NewManager(mgr.Store, mgr.Drivers)
	if _, err := otherProcess.LockSwarm(ctx, m2); err == nil || !strings.Contains(err.Error(), "another roll, upgrade or rotate runs on it") {
		t.Fatalf("second lock through another manager while the first holds it: %v, want refused", err)
	}
	// The same process waits for its turn ('machine provision m1 w1 m2'):
	// bounded by its context here.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if _, err := mgr.LockSwarm(short, m2); err == nil || !strings.Contains(err.Error(), "waiting for this command's other work") {
		t.Fatalf("same process, lock held: %v, want a wait bounded by the context", err)
	}
	cancel()
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

	// Holders of one process take turns: the second gets the lock once the
	// first lets it go.
	first, err := mgr.LockSwarm(ctx, m1)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		second, err := mgr.LockSwarm(ctx, m2)
		if err == nil {
			second()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second holder of the same process did not wait: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	first()
	if err := <-got; err != nil {
		t.Fatalf("second holder after the first let go: %v", err)
	}
}
