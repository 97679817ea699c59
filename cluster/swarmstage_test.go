package cluster

import (
	"context"
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/bootstrap/enginetest"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
)

// swarmStage is the cluster's swarm stage on an in-memory swarm: the hosts
// are provisioned already (their engines answer), the registry is off.
type swarmStage struct {
	t     *testing.T
	w     *enginetest.World
	c     *Converger
	spec  *Spec
	hosts []*host
}

func newSwarmStage(t *testing.T, roles ...string) *swarmStage {
	t.Helper()
	st, err := store.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	m := machine.NewManager(st, drivers.NewRegistry(drivertest.NewWorld().Spec()))
	s := &swarmStage{t: t, w: enginetest.NewWorld(), c: &Converger{Machines: m, Parallel: 4}, spec: &Spec{Name: "lab"}}
	for i, role := range roles {
		name := fmt.Sprintf("n%d", i+1)
		addr := fmt.Sprintf("10.1.0.%d", i+1)
		s.spec.Machines = append(s.spec.Machines, Node{Name: name, Role: validate.Role(role)})
		s.hosts = append(s.hosts, &host{
			spec: s.spec.Machines[i],
			mach: &machine.Machine{Machine: &store.Machine{Setup: store.Setup{Hostname: name}, Name: name, Address: addr}},
			node: &bootstrap.Node{Name: name, Hostname: name, Addr: addr, API: enginetest.NewEngine(s.w, name, addr)},
		})
	}
	return s
}

// run is one swarm stage, with the state the last one left.
func (s *swarmStage) run(prev *State) (changed bool, leader *host, clusterID string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.c.swarm(ctx, s.spec, s.hosts, s.spec.Machines[0].Name, prev)
}

func (s *swarmStage) mustRun(prev *State) (bool, string) {
	s.t.Helper()
	changed, leader, id, err := s.run(prev)
	if err != nil {
		s.t.Fatalf("swarm stage: %v", err)
	}
	if leader == nil || leader.spec.Name != "n1" || id == "" {
		s.t.Fatalf("leader %v, cluster ID %q", leader, id)
	}
	return changed, id
}

func TestSwarmStageFromScratchThenNothing(t *testing.T) {
	s := newSwarmStage(t, "manager", "manager", "worker")
	changed, id := s.mustRun(nil)
	if !changed {
		t.Error("the first run changed nothing")
	}
	if n := s.w.Engine("n1").Count("SwarmInit"); n != 1 {
		t.Errorf("SwarmInit on n1 %d times", n)
	}
	for _, h := range s.hosts {
		if h.state.ClusterID == "" && h.spec.Role == "manager" {
			t.Errorf("%s: no cluster ID after the stage: %+v", h.spec.Name, h.state)
		}
	}
	s.w.ResetCalls()
	changed, id2 := s.mustRun(&State{ClusterID: id})
	if changed || id2 != id {
		t.Errorf("second run: changed %v, cluster %s -> %s", changed, id, id2)
	}
	for host, calls := range s.w.Mutations() {
		if len(calls) > 0 {
			t.Errorf("a no-op run changed %s: %v", host, calls)
		}
	}
}

func TestSwarmStageLockedLeader(t *testing.T) {
	s := newSwarmStage(t, "manager", "manager", "manager")
	s.spec.Autolock = true
	_, id := s.mustRun(nil)
	keyFile := filepath.Join(s.c.Machines.Store.ClusterDir("lab"), "unlock-key")
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("unlock key file: %v %v", fi, err)
	}
	s.w.Restart("n1") // comes back locked
	s.w.ResetCalls()
	_, _, _, err = s.run(&State{ClusterID: id})
	if err == nil || !strings.Contains(err.Error(), "cluster unlock lab") {
		t.Fatalf("a locked leader without auto_unlock: %v, want a refusal naming 'cluster unlock lab'", err)
	}
	for host, calls := range s.w.Mutations() {
		if len(calls) > 0 {
			t.Errorf("a refused run changed %s: %v", host, calls)
		}
	}
	s.spec.AutoUnlock = true
	changed, id2 := s.mustRun(&State{ClusterID: id})
	if !changed || id2 != id {
		t.Errorf("auto_unlock: changed %v, cluster %s -> %s", changed, id, id2)
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		for _, c := range s.w.Engine(name).Mutations() {
			if strings.HasPrefix(c, "SwarmLeave") || strings.HasPrefix(c, "SwarmInit") {
				t.Errorf("%s: %s on a locked swarm", name, c)
			}
		}
	}
}

func TestSwarmStageReplacedWorkerAndForeignNode(t *testing.T) {
	s := newSwarmStage(t, "manager", "worker", "worker")
	_, id := s.mustRun(nil)
	// n3's host is replaced: a fresh engine, its old entry down.
	s.w.Kill("n3")
	s.w.Wipe("n3")
	if changed, _ := s.mustRun(&State{ClusterID: id}); !changed {
		t.Error("the replaced worker did not join again")
	}
	nodes, err := s.hosts[0].node.API.NodeList(context.Background(), swarmNodeListAll)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 {
		t.Errorf("want 3 node entries after the replacement, no stale ones: %d", len(nodes))
	}
	// A node of another swarm is refused without force_rejoin ...
	other := enginetest.NewEngine(s.w, "x1", "10.9.0.1")
	if _, err := other.SwarmInit(context.Background(), swarmInitAt("10.9.0.1")); err != nil {
		t.Fatal(err)
	}
	s.spec.Machines = append(s.spec.Machines, Node{Name: "x1", Role: "worker"})
	s.hosts = append(s.hosts, &host{spec: s.spec.Machines[3],
		mach: &machine.Machine{Machine: &store.Machine{Setup: store.Setup{Hostname: "x1"}, Name: "x1", Address: "10.9.0.1"}},
		node: &bootstrap.Node{Name: "x1", Hostname: "x1", Addr: "10.9.0.1", API: other}})
	if _, _, _, err := s.run(&State{ClusterID: id}); err == nil || !strings.Contains(err.Error(), "force_rejoin") {
		t.Errorf("a node of another swarm: %v, want a refusal naming force_rejoin", err)
	}
	// ... and joins with it.
	s.spec.ForceRejoin = true
	s.mustRun(&State{ClusterID: id})
	if st, _ := s.hosts[3].node.State(context.Background()); !st.Active() {
		t.Errorf("x1 after force_rejoin: %+v", st)
	}
}

var swarmNodeListAll = client.NodeListOptions{}

func swarmInitAt(addr string) swarm.InitRequest {
	return swarm.InitRequest{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: addr}
}

// TestSwarmStageUnlocksWhatItRestarted: a manager whose dockerd this run's
// provisioning restarted comes back locked; shoal unlocks it with the key
// it keeps, even without auto_unlock. One that restarted on its own is not.
func TestSwarmStageUnlocksWhatItRestarted(t *testing.T) {
	s := newSwarmStage(t, "manager", "manager", "manager")
	s.spec.Autolock = true
	_, id := s.mustRun(nil)
	s.w.Restart("n2")
	s.hosts[1].restarted = true // provisioning restarted n2
	s.mustRun(&State{ClusterID: id})
	if st, _ := s.hosts[1].node.State(context.Background()); st.LocalNodeState != bootstrap.StateActive {
		t.Errorf("n2 (restarted by shoal) is %s, want unlocked", st.LocalNodeState)
	}
	s.hosts[1].restarted = false
	s.w.Restart("n3") // on its own
	_, _, _, err := s.run(&State{ClusterID: id})
	if err == nil || !strings.Contains(err.Error(), "n3 is a locked swarm manager") {
		t.Fatalf("n3 locked on its own: %v, want a refusal", err)
	}
}
