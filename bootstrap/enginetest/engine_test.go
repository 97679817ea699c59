package enginetest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/bootstrap/enginetest"
)

var _ bootstrap.Engine = (*enginetest.Engine)(nil)

func wantErr(t *testing.T, err error, contains string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %v, want one containing %q", err, contains)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func info(t *testing.T, e *enginetest.Engine) swarm.Info {
	t.Helper()
	i, err := e.Info(context.Background())
	must(t, err)
	return i.Swarm
}

func node(t *testing.T, mgr *enginetest.Engine, id string) swarm.Node {
	t.Helper()
	n, _, err := mgr.NodeInspectWithRaw(context.Background(), id)
	must(t, err)
	return n
}

// TestSwarm walks the life of a swarm through the fake and checks dockerd's
// answers on the way.
func TestSwarm(t *testing.T) {
	ctx := context.Background()
	w := enginetest.NewWorld()
	m1 := enginetest.NewEngine(w, "m1", "10.0.0.1")
	m2 := enginetest.NewEngine(w, "m2", "10.0.0.2")
	w1 := enginetest.NewEngine(w, "w1", "10.0.0.3")

	if s := info(t, m1); s.LocalNodeState != swarm.LocalNodeStateInactive || s.NodeID != "" {
		t.Fatalf("a new engine: %+v", s)
	}
	_, err := w1.SwarmInspect(ctx)
	wantErr(t, err, "This node is not a swarm manager")
	id1, err := m1.SwarmInit(ctx, swarm.InitRequest{AdvertiseAddr: "10.0.0.1"})
	must(t, err)
	_, err = m1.SwarmInit(ctx, swarm.InitRequest{})
	wantErr(t, err, "This node is already part of a swarm")
	sw, err := m1.SwarmInspect(ctx)
	must(t, err)

	must(t, m2.SwarmJoin(ctx, swarm.JoinRequest{RemoteAddrs: []string{"10.0.0.1:2377"}, JoinToken: sw.JoinTokens.Manager}))
	wantErr(t, w1.SwarmJoin(ctx, swarm.JoinRequest{RemoteAddrs: []string{"10.0.0.1:2377"}, JoinToken: "SWMTKN-1-bad"}), "A valid join token is necessary")
	if s := info(t, w1); s.LocalNodeState != swarm.LocalNodeStateInactive {
		t.Fatalf("after a refused join: %s", s.LocalNodeState)
	}
	must(t, w1.SwarmJoin(ctx, swarm.JoinRequest{RemoteAddrs: []string{"10.0.0.2:2377"}, JoinToken: sw.JoinTokens.Worker}))

	s1, s2, sw1 := info(t, m1), info(t, m2), info(t, w1)
	if s1.NodeID != id1 || !s1.ControlAvailable || s1.Cluster == nil || s1.Cluster.ID != sw.ID || s1.Managers != 2 || s1.Nodes != 3 {
		t.Fatalf("manager m1: %+v", s1)
	}
	if !s2.ControlAvailable || s2.Cluster == nil || s2.Cluster.ID != sw.ID {
		t.Fatalf("manager m2: %+v", s2)
	}
	if sw1.LocalNodeState != swarm.LocalNodeStateActive || sw1.ControlAvailable || sw1.Cluster != nil || sw1.NodeID == "" {
		t.Fatalf("a worker knows its node ID, not its cluster: %+v", sw1)
	}
	_, err = w1.NodeList(ctx, client.NodeListOptions{})
	wantErr(t, err, "Worker nodes can't be used")

	// Leaving, demoting, removing: what dockerd refuses.
	wantErr(t, m2.SwarmLeave(ctx, false), "You are attempting to leave the swarm on a node that is participating as a manager")
	wantErr(t, m1.NodeRemove(ctx, s2.NodeID, client.NodeRemoveOptions{Force: true}), "must be demoted to worker before removal")
	wantErr(t, m1.NodeRemove(ctx, sw1.NodeID, client.NodeRemoveOptions{}), "is not down and can't be removed")
	n2 := node(t, m1, s2.NodeID)
	if n2.ManagerStatus == nil || n2.ManagerStatus.Reachability != swarm.ReachabilityReachable || n2.ManagerStatus.Leader || n2.Status.Addr != "10.0.0.2" {
		t.Fatalf("m2's entry: %+v %+v", n2.Status, n2.ManagerStatus)
	}
	stale := n2.Spec
	stale.Role = swarm.NodeRoleWorker
	must(t, m1.NodeUpdate(ctx, n2.ID, n2.Version, stale))
	wantErr(t, m1.NodeUpdate(ctx, n2.ID, n2.Version, stale), "update out of sequence")
	if n := node(t, m1, s2.NodeID); n.ManagerStatus != nil || n.Spec.Role != swarm.NodeRoleWorker {
		t.Fatalf("demoted m2: %+v", n)
	}
	n1 := node(t, m1, id1)
	demote := n1.Spec
	demote.Role = swarm.NodeRoleWorker
	wantErr(t, m1.NodeUpdate(ctx, id1, n1.Version, demote), "attempting to demote the last manager")
	n2 = node(t, m1, s2.NodeID)
	promote := n2.Spec
	promote.Role = swarm.NodeRoleManager
	must(t, m1.NodeUpdate(ctx, n2.ID, n2.Version, promote))

	// A service: tasks move off a drained node and off a killed one.
	three := uint64(3)
	_, err = m1.ServiceCreate(ctx, swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"}, Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &three}}})
	must(t, err)
	running := func(nodeID string) (all, on int) {
		tasks, err := m1.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("desired-state", "running")})
		must(t, err)
		for _, tk := range tasks {
			if tk.Status.State == swarm.TaskStateRunning {
				all++
				if tk.NodeID == nodeID {
					on++
				}
			}
		}
		return all, on
	}
	if all, on := running(sw1.NodeID); all != 3 || on != 1 {
		t.Fatalf("3 replicas on 3 nodes: %d running, %d on w1", all, on)
	}
	nw := node(t, m1, sw1.NodeID)
	drain := nw.Spec
	drain.Availability = swarm.NodeAvailabilityDrain
	must(t, m1.NodeUpdate(ctx, nw.ID, nw.Version, drain))
	if all, on := running(sw1.NodeID); all != 3 || on != 0 {
		t.Fatalf("after drain: %d running, %d on w1", all, on)
	}

	// Quorum: with m2 down, 1 of 2 managers is no quorum.
	w.Kill("m2")
	_, err = m2.Info(ctx)
	wantErr(t, err, "Cannot connect to the Docker daemon")
	_, err = m1.NodeList(ctx, client.NodeListOptions{})
	wantErr(t, err, "does not have a leader")
	if s := info(t, m1); !s.ControlAvailable || s.Cluster == nil || s.Cluster.ID != "" || s.Error == "" {
		t.Fatalf("a manager without quorum: %+v", s)
	}
	w.Restart("m2")
	if n := node(t, m1, s2.NodeID); n.Status.State != swarm.NodeStateReady {
		t.Fatalf("m2 after restart: %s", n.Status.State)
	}

	// Autolock: a restarted manager is locked until the right key.
	sw, err = m1.SwarmInspect(ctx)
	must(t, err)
	sw.Spec.EncryptionConfig.AutoLockManagers = true
	must(t, m1.SwarmUpdate(ctx, client.SwarmUpdateOptions{Version: sw.Version, Spec: sw.Spec}))
	key, err := m1.SwarmGetUnlockKey(ctx)
	must(t, err)
	w.Restart("m1")
	if s := info(t, m1); s.LocalNodeState != swarm.LocalNodeStateLocked || s.ControlAvailable || s.NodeID != "" {
		t.Fatalf("m1 after restart with autolock: %+v", s)
	}
	_, err = m1.NodeList(ctx, client.NodeListOptions{})
	wantErr(t, err, "Swarm is encrypted and locked")
	wantErr(t, m1.SwarmUnlock(ctx, swarm.UnlockRequest{UnlockKey: "SWMKEY-1-wrong"}), "invalid key")
	wantErr(t, m1.SwarmLeave(ctx, false), "locked")
	must(t, m1.SwarmUnlock(ctx, swarm.UnlockRequest{UnlockKey: key.UnlockKey}))
	if s := info(t, m1); s.LocalNodeState != swarm.LocalNodeStateActive || s.NodeID != id1 || s.Cluster.ID != sw.ID {
		t.Fatalf("m1 unlocked: %+v", s)
	}
	wantErr(t, m1.SwarmUnlock(ctx, swarm.UnlockRequest{UnlockKey: key.UnlockKey}), "not locked")
	if w1.Count("SwarmJoin") != 2 || len(m2.Mutations()) != 2 { // m2: join and the refused leave
		t.Fatalf("call logs: w1 %v, m2 %v", w1.Calls(), m2.Mutations())
	}

	// A replaced host: a fresh engine, the old entry down; removable.
	w.Wipe("w1")
	if s := info(t, w1); s.LocalNodeState != swarm.LocalNodeStateInactive || s.NodeID != "" {
		t.Fatalf("wiped w1: %+v", s)
	}
	if n := node(t, m1, sw1.NodeID); n.Status.State != swarm.NodeStateDown {
		t.Fatalf("the wiped host's entry: %s", n.Status.State)
	}
	must(t, m1.NodeRemove(ctx, sw1.NodeID, client.NodeRemoveOptions{}))
	_, _, err = m1.NodeInspectWithRaw(ctx, sw1.NodeID)
	if !errdefs.IsNotFound(err) {
		t.Fatalf("removed node: %v", err)
	}

	// A join to an address where no manager answers stays pending.
	wantErr(t, w1.SwarmJoin(ctx, swarm.JoinRequest{RemoteAddrs: []string{"10.9.9.9:2377"}, JoinToken: sw.JoinTokens.Worker}), "Timeout was reached")
	if s := info(t, w1); s.LocalNodeState != swarm.LocalNodeStatePending {
		t.Fatalf("w1 after a join to nowhere: %s", s.LocalNodeState)
	}
	must(t, w1.SwarmLeave(ctx, false))
}

// TestUnlockWaitsForQuorum: as dockerd, an unlock answers once the manager
// is ready, which takes a quorum of managers unlocked.
func TestUnlockWaitsForQuorum(t *testing.T) {
	ctx := context.Background()
	w := enginetest.NewWorld()
	var ms []*enginetest.Engine
	for i := 1; i <= 3; i++ {
		ms = append(ms, enginetest.NewEngine(w, fmt.Sprint("m", i), fmt.Sprint("10.0.0.", i)))
	}
	_, err := ms[0].SwarmInit(ctx, swarm.InitRequest{AutoLockManagers: true})
	must(t, err)
	sw, err := ms[0].SwarmInspect(ctx)
	must(t, err)
	for _, m := range ms[1:] {
		must(t, m.SwarmJoin(ctx, swarm.JoinRequest{RemoteAddrs: []string{"10.0.0.1:2377"}, JoinToken: sw.JoinTokens.Manager}))
	}
	key, err := ms[0].SwarmGetUnlockKey(ctx)
	must(t, err)
	for i := 1; i <= 3; i++ {
		w.Restart(fmt.Sprint("m", i))
	}
	first := make(chan error, 1)
	go func() { first <- ms[0].SwarmUnlock(ctx, swarm.UnlockRequest{UnlockKey: key.UnlockKey}) }()
	select {
	case err := <-first:
		t.Fatalf("the first unlock answered without a quorum: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if s := info(t, ms[0]); s.LocalNodeState != swarm.LocalNodeStatePending {
		t.Fatalf("m1 unlocked without a quorum: %s", s.LocalNodeState)
	}
	must(t, ms[1].SwarmUnlock(ctx, swarm.UnlockRequest{UnlockKey: key.UnlockKey}))
	must(t, <-first)
	if s := info(t, ms[0]); s.LocalNodeState != swarm.LocalNodeStateActive || s.Cluster == nil || s.Cluster.ID != sw.ID {
		t.Fatalf("m1 after a quorum is back: %+v", s)
	}
}
