package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/cluster/clusterfile"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/test/simhost"
)

// simCluster is `cluster up` in process against simulated hosts: each an
// in-process SSH server answering as a Debian host with Docker
// (test/simhost), its engine a node of the lab's in-memory swarm.
type simCluster struct {
	lab  *simhost.Lab
	conv *Converger
	spec *Spec
}

func simName(i int) string { return simhost.Name(i) }

func newSimCluster(tb testing.TB, managers, workers, parallel int) *simCluster {
	tb.Helper()
	dir := tb.TempDir()
	lab, err := simhost.New(filepath.Join(dir, "hosts"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(lab.Close)
	var eps []simhost.Endpoint
	for i := 0; i < managers+workers; i++ {
		h, err := lab.Add(simhost.Name(i), simhost.Addr(i))
		if err != nil {
			tb.Fatal(err)
		}
		eps = append(eps, simhost.Endpoint{Name: h.Name, Addr: h.Addr, Port: h.Port})
	}
	st, err := store.New(filepath.Join(dir, "store"))
	if err != nil {
		tb.Fatal(err)
	}
	reg := drivers.NewRegistry(drivertest.NewWorld().Spec())
	spec, diags := LoadSource([]byte(simhost.ClusterFile(eps, managers)), filepath.Join(dir, "sim.hcl"), clusterfile.Options{}, reg)
	if diags.HasErrors() {
		tb.Fatal(diags.Error())
	}
	m := machine.NewManager(st, reg)
	m.ConnectTimeout = 30 * time.Second
	m.OpenEngine = func(mach *machine.Machine) bootstrap.Engine { return lab.World.Engine(mach.Name) }
	return &simCluster{lab: lab, conv: &Converger{Machines: m, Parallel: parallel}, spec: spec}
}

func (s *simCluster) up(tb testing.TB) *Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := s.conv.Up(ctx, s.spec)
	if err != nil {
		tb.Fatalf("cluster up: %v", err)
	}
	for _, h := range s.lab.Hosts() {
		if u := h.Unknown(); len(u) > 0 {
			tb.Fatalf("%s: commands the simulated host does not know:\n%s", h.Name, strings.Join(u, "\n----\n"))
		}
	}
	return res
}

// TestUpSimulatedHosts is Converger.Up end to end on 5 simulated hosts:
// the first run makes the swarm and its registry, the second changes
// nothing on any host or in the swarm.
func TestUpSimulatedHosts(t *testing.T) {
	s := newSimCluster(t, 3, 2, 4)
	res := s.up(t)
	if !res.Changed || len(res.Nodes) != 5 || res.Leader != simName(0) {
		t.Fatalf("first run: changed %v, %d nodes, leader %q", res.Changed, len(res.Nodes), res.Leader)
	}
	ctx := context.Background()
	nodes, err := s.lab.World.Engine(simName(0)).NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, n := range nodes {
		roles[n.Description.Hostname] = string(n.Spec.Role)
	}
	want := map[string]string{simName(0): "manager", simName(1): "manager", simName(2): "manager", simName(3): "worker", simName(4): "worker"}
	if fmt.Sprint(roles) != fmt.Sprint(want) {
		t.Errorf("swarm nodes %v, want %v", roles, want)
	}
	if _, _, err := s.lab.World.Engine(simName(0)).ServiceInspectWithRaw(ctx, "registry", client.ServiceInspectOptions{}); err != nil {
		t.Errorf("the registry service: %v", err)
	}
	for _, h := range s.lab.Hosts() {
		hosts, _ := h.File("/etc/hosts")
		for i := range 5 {
			if !strings.Contains(hosts, simName(i)) {
				t.Errorf("%s: /etc/hosts does not name %s:\n%s", h.Name, simName(i), hosts)
			}
		}
		if h.Changes() == nil {
			t.Errorf("%s: the first run changed nothing on it", h.Name)
		}
		h.ResetChanges()
	}
	s.lab.World.ResetCalls()

	res = s.up(t)
	if res.Changed {
		t.Error("the second run says it changed something")
	}
	for _, h := range s.lab.Hosts() {
		if c := h.Changes(); len(c) > 0 {
			t.Errorf("%s: the second run changed the host: %q", h.Name, c)
		}
	}
	if m := s.lab.World.Mutations(); len(m) > 0 {
		t.Errorf("the second run changed the swarm: %v", m)
	}
}

// TestUpSimulatedNoOpWritesNoConfig: a run that changes nothing rewrites
// no machine's config.json (each holds every node's /etc/hosts entry: at
// 1,000 hosts rewriting them was a third of a no-op's CPU).
func TestUpSimulatedNoOpWritesNoConfig(t *testing.T) {
	s := newSimCluster(t, 3, 2, 4)
	s.up(t)
	s.up(t) // records the daemon the first run started (store.Daemon)
	before := configFiles(t, s.conv.Machines.Store)
	if len(before) != 5 {
		t.Fatalf("%d config.json files, want 5", len(before))
	}
	if res := s.up(t); res.Changed {
		t.Error("the no-op run says it changed something")
	}
	after := configFiles(t, s.conv.Machines.Store)
	for name, fi := range before {
		if !os.SameFile(fi, after[name]) || !fi.ModTime().Equal(after[name].ModTime()) {
			t.Errorf("%s: the no-op run wrote its config.json (modified %v, before %v)", name, after[name].ModTime(), fi.ModTime())
		}
	}
}

// configFiles are the machines' config.json files as they are now.
func configFiles(t *testing.T, st *store.Store) map[string]os.FileInfo {
	t.Helper()
	names, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]os.FileInfo{}
	for _, n := range names {
		fi, err := os.Stat(filepath.Join(st.MachineDir(n), store.ConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		out[n] = fi
	}
	return out
}
