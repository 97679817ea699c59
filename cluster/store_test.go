package cluster

import (
	"context"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
)

func fakeSpec(name string, port int, nodes ...string) *Spec {
	s := &Spec{Name: name}
	for i, n := range nodes {
		role := validate.Worker
		if i == 0 {
			role = validate.Manager
		}
		s.Machines = append(s.Machines, Node{Name: n, Role: role, Driver: drivertest.FakeName,
			DriverConfig: &drivertest.FakeConfig{Host: "127.0.0.1", Port: port, User: "root"}})
	}
	return s
}

// files lists every file and folder under root with its content.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) && p == root {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		line := fmt.Sprintf("%s %v %v", p, fi.Mode(), fi.ModTime().UnixNano())
		if !d.IsDir() {
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestPlanOnFreshStoreWritesNothing: plan on a store that does not exist yet
// makes nothing at all, not even the store's folder.
func TestPlanOnFreshStoreWritesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	w := drivertest.NewWorld()
	m := machine.NewManager(st, drivers.NewRegistry(w.Spec()))
	m.ReadOnly = true
	c := &Converger{Machines: m, Parallel: 4}
	plans, err := c.Plan(context.Background(), fakeSpec("lab", 22, "n1", "n2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(plans.Machines) != 2 || !strings.HasPrefix(plans.Machines[0].Actions[0], "create") {
		t.Errorf("plans = %+v, want two creates", plans)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("plan made %s: %v", root, err)
	}
}

// TestPlanOnExistingStoreWritesNothing: with machines, a CA and a cluster in
// the store, plan changes no file.
func TestPlanOnExistingStoreWritesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	rw, err := store.New(root)
	if err != nil {
		t.Fatal(err)
	}
	w := drivertest.NewWorld()
	reg := drivers.NewRegistry(w.Spec())
	spec := fakeSpec("lab", 22, "n1", "n2")
	mw := machine.NewManager(rw, reg)
	for _, n := range spec.Machines {
		if _, err := mw.EnsureHost(context.Background(), machine.CreateOptions{
			Setup: store.Setup{
				Cluster: "lab",
				Engine:  store.Engine{TLS: true},
			},
			Name: n.Name, Driver: n.Driver, DriverConfig: n.DriverConfig}); err != nil {
			t.Fatal(err)
		}
	}
	w.SetState("n2", drivers.NotFound) // gone behind shoal's back: plan says create
	w.SetState("n1", drivers.Stopped)  // plan says start
	before := files(t, root)

	ro, _ := store.Open(root)
	m := machine.NewManager(ro, reg)
	m.ReadOnly = true
	c := &Converger{Machines: m, Parallel: 4}
	plans, err := c.Plan(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(plans.Machines) != 2 || plans.Machines[0].Actions[0] != "start" || !strings.HasPrefix(plans.Machines[1].Actions[0], "create") {
		t.Errorf("plans = %+v", plans)
	}
	if after := files(t, root); !reflect.DeepEqual(before, after) {
		t.Errorf("plan changed the store:\nbefore %q\nafter  %q", before, after)
	}
}

// TestUpHoldsMachineLocks: while 'cluster up' works on a machine (here:
// waits for its SSH), 'machine provision' of it cannot start; the locks go
// when up ends.
func TestUpHoldsMachineLocks(t *testing.T) {
	st, err := store.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	w := drivertest.NewWorld()
	m := machine.NewManager(st, drivers.NewRegistry(w.Spec()))
	m.ConnectTimeout = 3 * time.Second
	c := &Converger{Machines: m, Parallel: 4}
	done := make(chan error, 1)
	go func() {
		_, err := c.Up(context.Background(), fakeSpec("lab", closedPort(t), "n1", "n2"))
		done <- err
	}()
	// Stage 1 is instant with the fake driver; stage 2 waits for SSH.
	deadline := time.Now().Add(2 * time.Second)
	for !st.Exists("n1") || !st.Exists("n2") {
		if time.Now().After(deadline) {
			t.Fatal("up made no machine")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	for _, n := range []string{"n1", "n2"} {
		if u, err := st.TryLock("machine", n); err == nil {
			u()
			t.Errorf("machine %s is not locked while up works on it", n)
		}
	}
	other := machine.NewManager(st, drivers.NewRegistry(w.Spec()))
	other.Store = &store.Store{Root: st.Root, LockWait: 200 * time.Millisecond}
	if _, err := other.Provision(context.Background(), "n1"); err == nil || !strings.Contains(err.Error(), "locked by pid") {
		t.Errorf("machine provision during up = %v, want a clear 'locked' error", err)
	}
	if err := <-done; err == nil {
		t.Fatal("up against closed ports succeeded")
	}
	for _, n := range []string{"n1", "n2"} {
		u, err := st.TryLock("machine", n)
		if err != nil {
			t.Errorf("machine %s still locked after up: %v", n, err)
			continue
		}
		u()
	}
}

// TestUpRecordsAddressesNotNames: a host given by name goes into the
// /etc/hosts block by address.
func TestUpRecordsAddressesNotNames(t *testing.T) {
	st, err := store.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	w := drivertest.NewWorld()
	m := machine.NewManager(st, drivers.NewRegistry(w.Spec()))
	m.ConnectTimeout = time.Second
	spec := fakeSpec("lab", closedPort(t), "n1", "n2")
	for i := range spec.Machines {
		spec.Machines[i].DriverConfig.(*drivertest.FakeConfig).Address = "localhost"
	}
	c := &Converger{Machines: m, Parallel: 4}
	_, _ = c.Up(context.Background(), spec) // fails at SSH, after the block is saved
	for _, n := range []string{"n1", "n2"} {
		saved, err := st.Load(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(saved.Hosts) != 2 {
			t.Fatalf("%s: hosts block %+v", n, saved.Hosts)
		}
		for _, e := range saved.Hosts {
			if ip := net.ParseIP(e.IP); ip == nil || !ip.IsLoopback() {
				t.Errorf("%s: /etc/hosts entry %+v has no address", n, e)
			}
		}
	}
}

// TestDownAndStatusRefuseBadNames: a cluster name that would leave the store
// is refused before any path is made of it; the folder it names survives.
func TestDownAndStatusRefuseBadNames(t *testing.T) {
	top := t.TempDir()
	victim := filepath.Join(top, "victim")
	if err := os.MkdirAll(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := store.New(filepath.Join(top, "store"))
	if err != nil {
		t.Fatal(err)
	}
	c := &Converger{Machines: machine.NewManager(st, drivers.NewRegistry()), Parallel: 1}
	for _, n := range []string{"../../victim", "../victim", "a/b", "", ".."} {
		if err := c.Down(context.Background(), n, true); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Down(%q) = %v, want ErrInvalidName", n, err)
		}
		if _, _, err := c.Status(context.Background(), n); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Status(%q) = %v, want ErrInvalidName", n, err)
		}
		if _, err := LoadState(st, n); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("LoadState(%q) = %v, want ErrInvalidName", n, err)
		}
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("the victim folder is gone: %v", err)
	}
}

// TestPlanSaysTheSSHKeyRotates: a machine that was of the cluster (its
// state lists it) and is in the file no more held the cluster key; the
// plan says up makes it anew.
func TestPlanSaysTheSSHKeyRotates(t *testing.T) {
	st, err := store.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	w := drivertest.NewWorld()
	reg := drivers.NewRegistry(w.Spec())
	spec := fakeSpec("lab", 22, "n1", "n2")
	mw := machine.NewManager(st, reg)
	for _, n := range spec.Machines {
		if _, err := mw.EnsureHost(context.Background(), machine.CreateOptions{
			Setup: store.Setup{Cluster: "lab"}, Name: n.Name, Driver: n.Driver, DriverConfig: n.DriverConfig}); err != nil {
			t.Fatal(err)
		}
		w.SetState(n.Name, drivers.Stopped) // plan says start, and connects to none
	}
	c := &Converger{Machines: mw, Parallel: 4}
	for _, tc := range []struct {
		was  []string
		want bool
	}{
		{[]string{"n1", "n2"}, false},
		{[]string{"n1", "n2", "gone"}, true},
	} {
		if err := saveState(st, &State{Version: 1, Name: "lab", Machines: tc.was, Leader: "n1"}); err != nil {
			t.Fatal(err)
		}
		plan, err := c.Plan(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if plan.SSHKeyRotates != tc.want {
			t.Errorf("the cluster had %v: SSHKeyRotates = %v, want %v", tc.was, plan.SSHKeyRotates, tc.want)
		}
	}
}
