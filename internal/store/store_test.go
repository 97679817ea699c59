package store

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/shoal-dev/shoal/internal/remote"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	st, err := New(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return st
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestNewCreatesPrivateDirs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	st, err := New(root)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !filepath.IsAbs(st.Root) {
		t.Errorf("Root %q is not absolute", st.Root)
	}
	for _, d := range []string{st.Root, filepath.Join(st.Root, "machines"), st.CertsDir(), filepath.Join(st.Root, "clusters")} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if !fi.IsDir() {
			t.Errorf("%s is not a directory", d)
		}
		if p := fi.Mode().Perm(); p != 0o700 {
			t.Errorf("%s mode = %o, want 700", d, p)
		}
	}
	// A second New on the same root is fine.
	if _, err := New(root); err != nil {
		t.Fatalf("New again: %v", err)
	}
}

func TestNewRelativeRootIsMadeAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	st, err := New("rel")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if st.Root != filepath.Join(wd, "rel") {
		t.Errorf("Root = %q, want %q", st.Root, filepath.Join(wd, "rel"))
	}
}

func TestDefaultRoot(t *testing.T) {
	t.Setenv("SHOAL_STORAGE_PATH", "/some/where")
	if got := DefaultRoot(); got != "/some/where" {
		t.Errorf("DefaultRoot with $SHOAL_STORAGE_PATH = %q", got)
	}
	t.Setenv("SHOAL_STORAGE_PATH", "")
	// docker-machine's variable names docker-machine's store, not shoal's.
	t.Setenv("MACHINE_STORAGE_PATH", "/home/u/.docker/machine")
	t.Setenv("HOME", "/home/u")
	if got := DefaultRoot(); got != "/home/u/.machine" {
		t.Errorf("DefaultRoot = %q, want /home/u/.machine", got)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	st := newStore(t)
	in := &Machine{
		Setup: Setup{
			Hostname:   "host-1",
			DockerUser: "docker",
			Engine:     Engine{Install: "repo", Version: "24.0.9", InsecureRegistries: []string{"r:5000"}, TLS: true, TLSPort: 2376},
			Swarm:      &Swarm{Master: true, Labels: []string{"a=b"}, Registry: true, RegistryPort: 5000},
			Cluster:    "lab",
			Hosts:      []HostEntry{{IP: "10.0.0.3", Names: []string{"m2"}}},
		},
		Name:         "m1",
		Driver:       "docker",
		DriverConfig: json.RawMessage(`{"image":"x","network":"n"}`),
		Address:      "10.0.0.2",
		SSH:          remote.Endpoint{Host: "10.0.0.2", Port: 22, User: "root", KeyPath: "/k", HostKeyFingerprint: "SHA256:abc"},
		Created:      time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if err := st.Save(in); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if in.Version != ConfigVersion {
		t.Errorf("Save did not set Version: %d", in.Version)
	}
	cfg := filepath.Join(st.MachineDir("m1"), ConfigFile)
	if p := perm(t, cfg); p != 0o600 {
		t.Errorf("config.json mode = %o, want 600", p)
	}
	if p := perm(t, st.MachineDir("m1")); p != 0o700 {
		t.Errorf("machine dir mode = %o, want 700", p)
	}
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var probe map[string]any
	if err := json.Unmarshal(raw, &probe); err != nil {
		t.Fatalf("config.json is not JSON: %v", err)
	}
	if v, ok := probe["version"].(float64); !ok || int(v) != ConfigVersion {
		t.Errorf("config.json version = %v, want %d", probe["version"], ConfigVersion)
	}
	if !st.Exists("m1") {
		t.Error("Exists(m1) = false after Save")
	}
	out, err := st.Load("m1")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// RawMessage is re-indented by MarshalIndent: compare it as JSON.
	var a, b any
	_ = json.Unmarshal(in.DriverConfig, &a)
	_ = json.Unmarshal(out.DriverConfig, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("DriverConfig = %s, want %s", out.DriverConfig, in.DriverConfig)
	}
	in.DriverConfig, out.DriverConfig = nil, nil
	if !reflect.DeepEqual(in, out) {
		t.Errorf("Load = %+v\nwant %+v", out, in)
	}
}

func TestLoadMissingIsErrNotFound(t *testing.T) {
	st := newStore(t)
	_, err := st.Load("nope")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load(missing) = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "nope") {
		t.Errorf("error %q does not name the machine", err)
	}
	if st.Exists("nope") {
		t.Error("Exists(nope) = true")
	}
}

func TestLoadRefusesNewerVersion(t *testing.T) {
	st := newStore(t)
	dir := st.MachineDir("future")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"version":99,"name":"future","driver":"docker"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := st.Load("future")
	if err == nil {
		t.Fatal("Load of a version 99 config succeeded")
	}
	if !strings.Contains(err.Error(), "99") {
		t.Errorf("error %q does not say the version", err)
	}
}

func TestLoadInvalidJSON(t *testing.T) {
	st := newStore(t)
	dir := st.MachineDir("bad")
	_ = os.MkdirAll(dir, 0o700)
	_ = os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{not json`), 0o600)
	_, err := st.Load("bad")
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of invalid JSON = %v, want a parse error", err)
	}
}

func TestListSortedOnlyMachinesWithConfig(t *testing.T) {
	st := newStore(t)
	for _, n := range []string{"zeta", "alpha", "mid"} {
		if err := st.Save(&Machine{Name: n, Driver: "docker"}); err != nil {
			t.Fatal(err)
		}
	}
	// A folder without config.json (an interrupted create) and a stray file.
	_ = os.MkdirAll(st.MachineDir("empty"), 0o700)
	_ = os.WriteFile(filepath.Join(st.Root, "machines", "stray"), []byte("x"), 0o600)
	got, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alpha", "mid", "zeta"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestListEmpty(t *testing.T) {
	st := newStore(t)
	got, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("List of an empty store = %v", got)
	}
}

func TestRemove(t *testing.T) {
	st := newStore(t)
	if err := st.Save(&Machine{Name: "m", Driver: "docker"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Remove("m"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.MachineDir("m")); !os.IsNotExist(err) {
		t.Errorf("machine folder still there: %v", err)
	}
	// A name that would escape the store is refused.
	if err := st.Remove("../certs"); err == nil {
		t.Error("Remove(../certs) succeeded")
	}
	if _, err := os.Stat(st.CertsDir()); err != nil {
		t.Errorf("certs dir gone after Remove(../certs): %v", err)
	}
}

func TestValidateName(t *testing.T) {
	good := []string{"a", "m1", "node-1", "a.b", "A9", strings.Repeat("x", 63)}
	bad := []string{"", "-a", ".a", "a b", "a/b", "a_b", "../x", "ä", strings.Repeat("x", 64), "a:b"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateName(n); err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", n)
		}
	}
}

func TestLock(t *testing.T) {
	root := t.TempDir()
	a, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := a.Lock(context.Background(), "machine", "m1")
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(root, "locks")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("locks folder: %v %v", fi, err)
	}

	if u, err := b.TryLock("machine", "m1"); err == nil {
		u()
		t.Fatal("TryLock succeeded while the lock is held")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if u, err := b.Lock(ctx, "machine", "m1"); err == nil {
		u()
		t.Fatal("Lock succeeded while the lock is held")
	} else {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock error = %v, want it to wrap context.DeadlineExceeded", err)
		}
		if ctx.Err() == nil {
			t.Error("Lock returned before its context ended")
		}
	}

	// Another name is independent.
	u2, err := b.TryLock("machine", "m2")
	if err != nil {
		t.Fatalf("TryLock of another name: %v", err)
	}
	u2()
	// So is another kind.
	u3, err := b.TryLock("cluster", "m1")
	if err != nil {
		t.Fatalf("TryLock of another kind: %v", err)
	}
	u3()

	unlock()
	u, err := b.TryLock("machine", "m1")
	if err != nil {
		t.Fatalf("TryLock after unlock: %v", err)
	}
	u()
}

func TestLockWaitsForRelease(t *testing.T) {
	root := t.TempDir()
	a, _ := New(root)
	b, _ := New(root)
	unlock, err := a.Lock(context.Background(), "cluster", "lab")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u, err := b.Lock(ctx, "cluster", "lab")
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second Lock returned while held: %v", err)
	case <-time.After(250 * time.Millisecond):
	}
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("second Lock after release: %v", err)
	}
}

// TestClusterFiles: each file of a cluster's folder has one accessor, and
// the layout on disk is the one older shoal wrote.
func TestClusterFiles(t *testing.T) {
	st, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(st.Root, "clusters", "lab")
	c := st.Cluster("lab")
	for got, want := range map[string]string{
		c.Dir:             dir,
		c.StatePath():     filepath.Join(dir, "state.json"),
		c.UnlockKeyPath(): filepath.Join(dir, "unlock-key"),
		c.RollPath():      filepath.Join(dir, "roll.json"),
		c.KeyPath():       filepath.Join(dir, "id_ed25519"),
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Cluster(../x) built a path")
		}
	}()
	st.Cluster("../x")
}
