package machine

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/internal/store"
)

// fakeManager is a manager of a fresh store whose only driver is the fake.
func fakeManager(t *testing.T) (*Manager, *drivertest.World) {
	t.Helper()
	st, err := store.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	w := drivertest.NewWorld()
	m := NewManager(st, drivers.NewRegistry(w.Spec()))
	m.ConnectTimeout = 2 * time.Second
	return m, w
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

func fakeOpts(name string, cfg drivertest.FakeConfig) CreateOptions {
	if cfg.Port == 0 {
		cfg.Port = 22
	}
	return CreateOptions{Name: name, Driver: drivertest.FakeName, DriverConfig: &cfg}
}

func storeNames(t *testing.T, m *Manager) []string {
	t.Helper()
	names, err := m.Store.List()
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(m.Store.Root, "machines"))
	for _, e := range entries {
		names = append(names, "dir:"+e.Name())
	}
	return names
}

// TestCreateFailedByDriverLeavesNothing: the driver fails; what it may
// have made is removed and the store forgets the machine.
func TestCreateFailedByDriverLeavesNothing(t *testing.T) {
	m, w := fakeManager(t)
	w.FailNext("n1", "Create", errors.New("quota exceeded"))
	_, err := m.Create(context.Background(), fakeOpts("n1", drivertest.FakeConfig{}))
	if err == nil || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("Create = %v, want the driver's error", err)
	}
	if got := storeNames(t, m); len(got) != 0 {
		t.Errorf("the store keeps %v after a failed create", got)
	}
	if !hasCall(w, "n1.Remove") {
		t.Errorf("the driver was not asked to remove what it made: %v", w.Calls())
	}
}

// TestCreateUnreachableIsBoundedAndLeavesNothing: the host is made but never
// answers SSH (a closed port): create gives up within the connect bound, the
// host is removed and the store forgets it.
func TestCreateUnreachableIsBoundedAndLeavesNothing(t *testing.T) {
	m, w := fakeManager(t)
	start := time.Now()
	_, err := m.Create(context.Background(), fakeOpts("n1", drivertest.FakeConfig{Host: "127.0.0.1", Port: closedPort(t)}))
	if err == nil {
		t.Fatal("Create of an unreachable host succeeded")
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("Create took %s with a 2s connect bound", took)
	}
	if !strings.Contains(err.Error(), "n1") {
		t.Errorf("error %q does not name the machine", err)
	}
	if got := storeNames(t, m); len(got) != 0 {
		t.Errorf("the store keeps %v after a failed create", got)
	}
	if hosts := w.Hosts(); len(hosts) != 0 {
		t.Errorf("the driver's hosts %v are still there", hosts)
	}
}

// TestCreateFailedRemoveKeepsMachine: when the driver cannot remove what it
// made, the machine stays so that 'machine rm -f' can, and the error says so.
func TestCreateFailedRemoveKeepsMachine(t *testing.T) {
	m, w := fakeManager(t)
	w.FailNext("n1", "Create", errors.New("boot failed"))
	w.FailNext("n1", "Remove", errors.New("hypervisor busy"))
	w.SetState("n1", drivers.Error) // the half-made host
	_, err := m.Create(context.Background(), fakeOpts("n1", drivertest.FakeConfig{}))
	if err == nil || !strings.Contains(err.Error(), "machine rm -f n1") || !strings.Contains(err.Error(), "boot failed") {
		t.Fatalf("Create = %v, want the cause and a 'machine rm -f' hint", err)
	}
	if !m.Store.Exists("n1") {
		t.Error("the machine was forgotten although its host could not be removed")
	}
}

// TestCreateFailureKeepsExistingMachine: a failed converge of a machine that
// existed before is no reason to remove it.
func TestCreateFailureKeepsExistingMachine(t *testing.T) {
	m, w := fakeManager(t)
	if _, err := m.EnsureHost(context.Background(), fakeOpts("n1", drivertest.FakeConfig{})); err != nil {
		t.Fatal(err)
	}
	w.FailNext("n1", "Create", errors.New("transient"))
	if _, err := m.EnsureHost(context.Background(), fakeOpts("n1", drivertest.FakeConfig{})); err == nil {
		t.Fatal("EnsureHost with a failing driver succeeded")
	}
	if !m.Store.Exists("n1") || hasCall(w, "n1.Remove") {
		t.Errorf("an existing machine was removed after a failed converge: %v", w.Calls())
	}
}

// TestEnsureHostResolvesAName: an address given by name is recorded as an
// address (it goes into /etc/hosts and certificates).
func TestEnsureHostResolvesAName(t *testing.T) {
	m, _ := fakeManager(t)
	mach, err := m.EnsureHost(context.Background(), fakeOpts("n1", drivertest.FakeConfig{Address: "localhost"}))
	if err != nil {
		t.Fatal(err)
	}
	if net.ParseIP(mach.Address) == nil || !net.ParseIP(mach.Address).IsLoopback() {
		t.Errorf("Address = %q, want localhost's address", mach.Address)
	}
	saved, _ := m.Store.Load("n1")
	if saved.Address != mach.Address {
		t.Errorf("stored address %q, want %q", saved.Address, mach.Address)
	}
}

// TestEnsureHostLockedHoldsTheLock: the caller works on the machine alone
// until it unlocks; a failure releases the lock at once.
func TestEnsureHostLockedHoldsTheLock(t *testing.T) {
	m, w := fakeManager(t)
	_, unlock, err := m.EnsureHostLocked(context.Background(), fakeOpts("n1", drivertest.FakeConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := m.Store.TryLock("machine", "n1"); err == nil {
		u()
		t.Fatal("the machine's lock is free while EnsureHostLocked's caller holds it")
	}
	unlock()
	u, err := m.Store.TryLock("machine", "n1")
	if err != nil {
		t.Fatalf("lock still held after unlock: %v", err)
	}
	u()
	w.FailNext("n2", "Create", errors.New("no"))
	if _, unlock, err := m.EnsureHostLocked(context.Background(), fakeOpts("n2", drivertest.FakeConfig{})); err == nil || unlock != nil {
		t.Fatalf("EnsureHostLocked failing = %v, unlock %v", err, unlock != nil)
	}
	if u, err := m.Store.TryLock("machine", "n2"); err != nil {
		t.Errorf("a failed EnsureHostLocked kept the lock: %v", err)
	} else {
		u()
	}
}

// TestBadNamesNeverReachTheDriver: rm, inspect (Load), provision and create
// refuse a name that would leave the store before any driver call.
func TestBadNamesNeverReachTheDriver(t *testing.T) {
	m, w := fakeManager(t)
	ctx := context.Background()
	for _, name := range []string{"../../victim", "a/b", "", ".", "/etc"} {
		calls := map[string]error{}
		calls["Remove"] = m.Remove(ctx, name, false)
		calls["Remove -f"] = m.Remove(ctx, name, true)
		_, calls["Load"] = m.Load(name)
		_, calls["Provision"] = m.Provision(ctx, name)
		_, calls["Create"] = m.Create(ctx, fakeOpts(name, drivertest.FakeConfig{}))
		_, calls["State"] = m.State(ctx, name)
		for what, err := range calls {
			if !errors.Is(err, store.ErrInvalidName) {
				t.Errorf("%s(%q) = %v, want ErrInvalidName", what, name, err)
			}
		}
	}
	if c := w.Calls(); len(c) != 0 {
		t.Errorf("the driver was called: %v", c)
	}
	if got := storeNames(t, m); !reflect.DeepEqual(got, []string(nil)) {
		t.Errorf("the store holds %v", got)
	}
}

func hasCall(w *drivertest.World, call string) bool {
	for _, c := range w.Calls() {
		if c.String() == call {
			return true
		}
	}
	return false
}

// TestReadOnlyTLSWritesNothing: a read-only manager (cluster plan) computes
// the TLS files a host should have without making a CA or a certificate.
func TestReadOnlyTLSWritesNothing(t *testing.T) {
	m, _ := fakeManager(t)
	mach, err := m.EnsureHost(context.Background(), fakeOpts("n1", drivertest.FakeConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	mach.Engine.TLS = true
	list := func() []string {
		var out []string
		filepath.WalkDir(m.Store.Root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				out = append(out, p)
			}
			return nil
		})
		return out
	}
	m.ReadOnly = true
	before := list()
	spec, err := m.provisionSpec(mach)
	if err != nil {
		t.Fatal(err)
	}
	if spec.TLS == nil || len(spec.TLS.Cert) == 0 {
		t.Fatal("no TLS in the read-only spec")
	}
	if after := list(); !reflect.DeepEqual(before, after) {
		t.Errorf("read-only provisionSpec wrote files: %v -> %v", before, after)
	}
	// With a CA in the store, that CA is the one compared with.
	m.ReadOnly = false
	ca, err := m.CA()
	if err != nil {
		t.Fatal(err)
	}
	m.ReadOnly = true
	before = list()
	spec, err = m.provisionSpec(mach)
	if err != nil {
		t.Fatal(err)
	}
	if string(spec.TLS.CA) != string(ca.CertPEM) {
		t.Error("the read-only spec does not use the store's CA")
	}
	if after := list(); !reflect.DeepEqual(before, after) {
		t.Errorf("read-only provisionSpec wrote files: %v -> %v", before, after)
	}
}

// TestDoubleDotNameIsReadNotMade: a machine named a..b (older shoal and
// docker-machine's import made such) is loaded as before, but no new one is
// made under that name: validate.Name, the one rule for new names, refuses it.
func TestDoubleDotNameIsReadNotMade(t *testing.T) {
	m, _ := fakeManager(t)
	if err := m.Store.Save(&store.Machine{Name: "a..b", Driver: drivertest.FakeName}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Load("a..b"); err != nil {
		t.Errorf("Load(a..b): %v", err)
	}
	if _, err := m.Create(context.Background(), fakeOpts("c..d", drivertest.FakeConfig{})); err == nil || !strings.Contains(err.Error(), "invalid name") {
		t.Errorf("Create(c..d) = %v, want invalid name", err)
	}
	if got := storeNames(t, m); strings.Contains(strings.Join(got, " "), "c..d") {
		t.Errorf("store holds %v", got)
	}
}

// TestEnsureHostKeepsHosts: EnsureHost again on a stored machine with
// nothing new writes no config.json, and KeepHosts keeps the stored
// /etc/hosts block (cluster up sets it once every address is known);
// without it the block is the options'.
func TestEnsureHostKeepsHosts(t *testing.T) {
	m, _ := fakeManager(t)
	ctx := context.Background()
	opts := fakeOpts("n1", drivertest.FakeConfig{})
	mach, err := m.EnsureHost(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	mach.Hosts = []store.HostEntry{{IP: "10.0.0.2", Names: []string{"n2"}}}
	if err := m.Store.Save(mach.Machine); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mach.Dir, store.ConfigFile)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	opts.KeepHosts = true
	if mach, err = m.EnsureHost(ctx, opts); err != nil {
		t.Fatal(err)
	}
	if len(mach.Hosts) != 1 || mach.Hosts[0].IP != "10.0.0.2" {
		t.Errorf("KeepHosts: hosts %v", mach.Hosts)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Error("EnsureHost with nothing new wrote config.json")
	}
	opts.KeepHosts = false
	if mach, err = m.EnsureHost(ctx, opts); err != nil {
		t.Fatal(err)
	}
	stored, err := m.Store.Load("n1")
	if err != nil {
		t.Fatal(err)
	}
	if len(mach.Hosts) != 0 || len(stored.Hosts) != 0 {
		t.Errorf("without KeepHosts the hosts stay: %v, stored %v", mach.Hosts, stored.Hosts)
	}
}

func TestSameRecord(t *testing.T) {
	base := func() *store.Machine {
		return &store.Machine{Version: store.ConfigVersion, Name: "n1", Driver: "fake", DriverConfig: json.RawMessage("{\n  \"port\": 22\n}"),
			Setup: store.Setup{Hostname: "n1", Swarm: &store.Swarm{Join: "n0"}, Hosts: []store.HostEntry{{IP: "10.0.0.1", Names: []string{"n0"}}}}, Address: "10.0.0.2"}
	}
	for _, tc := range []struct {
		name   string
		change func(m *store.Machine)
		same   bool
	}{
		{"as stored", func(m *store.Machine) {}, true},
		{"driver config compact, no version yet", func(m *store.Machine) { m.DriverConfig, m.Version = json.RawMessage(`{"port":22}`), 0 }, true},
		{"empty lists as none", func(m *store.Machine) { m.Swarm.Labels, m.AuthorizedKeys = []string{}, []string{} }, true},
		{"another address", func(m *store.Machine) { m.Address = "10.0.0.3" }, false},
		{"another driver config", func(m *store.Machine) { m.DriverConfig = json.RawMessage(`{"port":2222}`) }, false},
		{"a host's other name", func(m *store.Machine) { m.Hosts = []store.HostEntry{{IP: "10.0.0.1", Names: []string{"n0", "m0"}}} }, false},
		{"no hosts", func(m *store.Machine) { m.Hosts = nil }, false},
		{"swarm label", func(m *store.Machine) { m.Swarm.Labels = []string{"a=b"} }, false},
	} {
		m := base()
		tc.change(m)
		if got := sameRecord(base(), m); got != tc.same {
			t.Errorf("%s: sameRecord = %v, want %v", tc.name, got, tc.same)
		}
	}
}
