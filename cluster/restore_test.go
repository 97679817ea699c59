package cluster

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
)

func TestRestoreAction(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     bootstrap.State
		want  restoreStep
		refus bool
	}{
		{"no swarm", bootstrap.State{LocalNodeState: bootstrap.StateInactive}, restorePut, false},
		{"no state read", bootstrap.State{}, restorePut, false},
		{"runs the backup's swarm", bootstrap.State{LocalNodeState: "active", Manager: true, ClusterID: "SW"}, restoreHas, false},
		{"manager of another swarm", bootstrap.State{LocalNodeState: "active", Manager: true, ClusterID: "OTHER"}, 0, true},
		{"worker of the backup's swarm", bootstrap.State{LocalNodeState: "active", ClusterID: "SW"}, 0, true},
		{"locked", bootstrap.State{LocalNodeState: bootstrap.StateLocked}, 0, true},
		{"pending", bootstrap.State{LocalNodeState: bootstrap.StatePending}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := restoreAction("n1", tc.s, "SW")
			if tc.refus {
				if err == nil || !strings.Contains(err.Error(), "n1 is in a swarm already") {
					t.Fatalf("want a refusal, got %v %v", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
}

// TestRefusedRestoreChangesNothing: a restore refused before its swarm
// state is in place (the cluster's lock held; the first manager cannot be
// checked) leaves the store byte for byte as it was: the live swarm's
// unlock key, state.json and the machines' configs.
func TestRefusedRestoreChangesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	st, err := store.New(root)
	if err != nil {
		t.Fatal(err)
	}
	w := drivertest.NewWorld()
	m := machine.NewManager(st, drivers.NewRegistry(w.Spec()))
	m.ConnectTimeout = time.Second
	spec := fakeSpec("lab", closedPort(t), "n1", "n2")
	old := fakeSpec("lab", closedPort(t), "old")
	for _, n := range append(spec.Machines, old.Machines...) {
		if _, err := m.EnsureHost(context.Background(), machine.CreateOptions{Setup: store.Setup{Cluster: "lab"},
			Name: n.Name, Driver: n.Driver, DriverConfig: n.DriverConfig}); err != nil {
			t.Fatal(err)
		}
	}
	if err := saveState(st, &State{Name: "lab", Machines: []string{"n1", "n2", "old"}, Leader: "n1", ClusterID: "LIVE"}); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(st.ClusterDir("lab"), "unlock-key"), []byte("SWMKEY-1-live\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The lock files are the locks' own business, not the store's content.
	state := func() []string {
		var out []string
		for _, f := range files(t, root) {
			if !strings.Contains(f, string(filepath.Separator)+"locks") {
				out = append(out, f)
			}
		}
		return out
	}
	before := state()
	b := &Backup{Manifest: bootstrap.Manifest{Version: 1, Cluster: "lab", SwarmID: "BACKUP"}, Key: "SWMKEY-1-backup",
		Shoal: map[string][]byte{store.KeyFile: []byte("PRIV"), store.KeyFile + ".pub": []byte("PUB")}}
	c := &Converger{Machines: m, Parallel: 4}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	unlock, err := st.TryLock("cluster", "lab")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Restore(ctx, spec, b)
	unlock()
	if err == nil || !strings.Contains(err.Error(), "is running") {
		t.Errorf("restore with the lock held: %v", err)
	}
	if after := state(); !reflect.DeepEqual(before, after) {
		t.Errorf("a restore refused for the lock changed the store:\nbefore %q\nafter  %q", before, after)
	}

	_, err = c.Restore(ctx, spec, b)
	if err == nil || !strings.Contains(err.Error(), "n1, the first manager: cannot check its swarm") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("restore with the first manager unreachable: %v", err)
	}
	if after := state(); !reflect.DeepEqual(before, after) {
		t.Errorf("a restore refused for an unreachable first manager changed the store:\nbefore %q\nafter  %q", before, after)
	}
	if _, err := os.Stat(filepath.Join(st.ClusterDir("lab"), "unlock-key")); err != nil {
		t.Error(err)
	}
}

// TestRestoredWritesTheStore: once the backup's state is in place, the
// store names the backup's swarm, has its unlock key, and the machines the
// file does not have are no longer the cluster's.
func TestRestoredWritesTheStore(t *testing.T) {
	st, err := store.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	m := machine.NewManager(st, drivers.NewRegistry(drivertest.NewWorld().Spec()))
	spec := fakeSpec("lab", 22, "n1")
	for _, n := range []string{"n1", "old"} {
		if _, err := m.EnsureHost(context.Background(), machine.CreateOptions{Setup: store.Setup{Cluster: "lab"},
			Name: n, Driver: drivertest.FakeName, DriverConfig: spec.Machines[0].DriverConfig}); err != nil {
			t.Fatal(err)
		}
	}
	c := &Converger{Machines: m, restore: &Backup{Manifest: bootstrap.Manifest{Version: 1, Cluster: "lab", SwarmID: "BACKUP"}, Key: "SWMKEY-1-backup"}}
	if err := c.restored(spec); err != nil {
		t.Fatal(err)
	}
	if s, err := LoadState(st, "lab"); err != nil || s.ClusterID != "BACKUP" || !reflect.DeepEqual(s.Machines, []string{"n1"}) {
		t.Errorf("state %+v %v", s, err)
	}
	if k, _ := os.ReadFile(filepath.Join(st.ClusterDir("lab"), "unlock-key")); string(k) != "SWMKEY-1-backup\n" {
		t.Errorf("unlock key %q", k)
	}
	if o, _ := st.Load("old"); o == nil || o.Cluster != "" {
		t.Errorf("old is still the cluster's: %+v", o)
	}
	if n1, _ := st.Load("n1"); n1 == nil || n1.Cluster != "lab" {
		t.Errorf("n1: %+v", n1)
	}
}

// TestHostMoved: a stored machine the file gives another driver or another
// driver configuration (an adopted host at a new address) is another host,
// checked when the run reaches it, not at its old address.
func TestHostMoved(t *testing.T) {
	stored := &store.Machine{Driver: "ssh", DriverConfig: []byte(`{"host":"10.0.0.1","port":22,"user":"tester"}`)}
	for _, tc := range []struct {
		name string
		n    Node
		want bool
	}{
		{"same host", Node{Driver: "ssh", DriverConfig: map[string]any{"user": "tester", "host": "10.0.0.1", "port": 22}}, false},
		{"new address", Node{Driver: "ssh", DriverConfig: map[string]any{"user": "tester", "host": "10.0.0.9", "port": 22}}, true},
		{"other driver", Node{Driver: "docker", DriverConfig: map[string]any{"host": "10.0.0.1"}}, true},
	} {
		got, err := hostMoved(stored, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("%s: moved %v, err %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestKeepsState: after a restore, a node keeps its swarm state only when
// it has none or is a Ready member of the restored swarm; otherwise it
// leaves the old swarm's state to join the restored one.
func TestKeepsState(t *testing.T) {
	ready := map[string]bool{"n1": true, "n2": false}
	for _, tc := range []struct {
		name string
		st   bootstrap.State
		want bool
	}{
		{"no swarm", bootstrap.State{LocalNodeState: bootstrap.StateInactive}, true},
		{"no state read", bootstrap.State{}, true},
		{"ready member of the restored swarm", bootstrap.State{LocalNodeState: "active", NodeID: "n1", ClusterID: "sw"}, true},
		{"ready, swarm ID not known", bootstrap.State{LocalNodeState: "active", NodeID: "n1"}, true},
		{"not ready", bootstrap.State{LocalNodeState: "active", NodeID: "n2", ClusterID: "sw"}, false},
		{"not a member", bootstrap.State{LocalNodeState: "active", NodeID: "n3", ClusterID: "sw"}, false},
		{"another swarm", bootstrap.State{LocalNodeState: "active", NodeID: "n1", ClusterID: "other"}, false},
		{"pending", bootstrap.State{LocalNodeState: "pending", NodeID: "n1"}, false},
		{"locked", bootstrap.State{LocalNodeState: bootstrap.StateLocked, NodeID: "n1"}, false},
	} {
		if got := keepsState(tc.st, ready, "sw"); got != tc.want {
			t.Errorf("%s: keepsState = %v, want %v", tc.name, got, tc.want)
		}
	}
}
