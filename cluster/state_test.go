package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/store"
	"golang.org/x/crypto/ssh"
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStateRoundTrip(t *testing.T) {
	st := newStore(t)
	before := time.Now().UTC().Add(-time.Second)
	in := &State{Name: "lab", File: "/x/lab.hcl", Machines: []string{"m-1", "w-1"}, Leader: "m-1", Registry: "m-1:5000"}
	if err := saveState(st, in); err != nil {
		t.Fatalf("saveState: %v", err)
	}
	if in.Version != StateVersion || in.Updated.Before(before) {
		t.Errorf("saveState did not set Version/Updated: %+v", in)
	}
	path := filepath.Join(st.ClusterDir("lab"), "state.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state.json mode %o, want 600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `"version": 1`) {
		t.Errorf("state.json has no version: %s", raw)
	}
	out, err := LoadState(st, "lab")
	if err != nil {
		t.Fatalf("LoadState: %v", err)
	}
	if !out.Updated.Equal(in.Updated) {
		t.Errorf("Updated = %v, want %v", out.Updated, in.Updated)
	}
	out.Updated = in.Updated
	if !reflect.DeepEqual(out, in) {
		t.Errorf("LoadState = %+v, want %+v", out, in)
	}
}

func TestLoadStateMissingAndBroken(t *testing.T) {
	st := newStore(t)
	_, err := LoadState(st, "nope")
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("LoadState(missing) = %v, want an error naming the cluster", err)
	}
	dir := st.ClusterDir("bad")
	_ = os.MkdirAll(dir, 0o700)
	_ = os.WriteFile(filepath.Join(dir, "state.json"), []byte("{"), 0o600)
	if _, err := LoadState(st, "bad"); err == nil || !strings.Contains(err.Error(), "state.json") {
		t.Errorf("LoadState(broken) = %v", err)
	}
}

func TestList(t *testing.T) {
	st := newStore(t)
	if got, err := List(st); err != nil || len(got) != 0 {
		t.Fatalf("List of an empty store = %v, %v", got, err)
	}
	for _, n := range []string{"zz", "aa", "mm"} {
		if err := saveState(st, &State{Name: n, Leader: n + "-1"}); err != nil {
			t.Fatal(err)
		}
	}
	// A cluster folder without state (only its key) and a broken one are left out.
	_ = os.MkdirAll(st.ClusterDir("keyonly"), 0o700)
	_ = os.MkdirAll(st.ClusterDir("broken"), 0o700)
	_ = os.WriteFile(filepath.Join(st.ClusterDir("broken"), "state.json"), []byte("nope"), 0o600)
	got, err := List(st)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	if !reflect.DeepEqual(names, []string{"aa", "mm", "zz"}) {
		t.Errorf("List = %v, want [aa mm zz]", names)
	}
	if got[0].Leader != "aa-1" {
		t.Errorf("List[0] = %+v", got[0])
	}
}

func TestMachinesOf(t *testing.T) {
	st := newStore(t)
	for n, c := range map[string]string{"a-1": "a", "a-2": "a", "b-1": "b", "solo": ""} {
		if err := st.Save(&store.Machine{Setup: store.Setup{Cluster: c}, Name: n, Driver: "docker"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := machinesOf(st, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"a-1", "a-2"}) {
		t.Errorf("machinesOf(a) = %v", got)
	}
}

func TestClusterKey(t *testing.T) {
	st := newStore(t)
	priv, pub, err := clusterKey(st, "lab")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatalf("private key: %v", err)
	}
	pk, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		t.Fatalf("public key %q: %v", pub, err)
	}
	if !reflect.DeepEqual(pk.Marshal(), signer.PublicKey().Marshal()) {
		t.Error("public key does not match the private key")
	}
	if comment != "shoal-cluster-lab" {
		t.Errorf("comment = %q", comment)
	}
	fi, err := os.Stat(filepath.Join(st.ClusterDir("lab"), store.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v, want 0600", fi, err)
	}
	priv2, pub2, err := clusterKey(st, "lab")
	if err != nil {
		t.Fatal(err)
	}
	if string(priv2) != string(priv) || pub2 != pub {
		t.Error("a second clusterKey made another key")
	}
	priv3, _, _ := clusterKey(st, "other")
	if string(priv3) == string(priv) {
		t.Error("two clusters share a key")
	}
}

func TestParallel(t *testing.T) {
	hosts := make([]*host, 10)
	for i := range hosts {
		hosts[i] = &host{spec: Node{Name: string(rune('a' + i))}}
	}
	var running, most, calls atomic.Int32
	boom := errors.New("boom")
	err := parallel(context.Background(), 3, hosts, func(ctx context.Context, h *host) error {
		calls.Add(1)
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		if h.spec.Name == "c" || h.spec.Name == "f" {
			return errors.New(h.spec.Name + ": " + boom.Error())
		}
		return nil
	})
	if calls.Load() != 10 {
		t.Errorf("f ran %d times, want 10 (every host, even after an error)", calls.Load())
	}
	if most.Load() > 3 {
		t.Errorf("%d ran at once, want at most 3", most.Load())
	}
	if err == nil || !strings.Contains(err.Error(), "c: boom") || !strings.Contains(err.Error(), "f: boom") {
		t.Errorf("parallel error = %v, want both errors joined", err)
	}

	if err := parallel(context.Background(), 0, hosts[:2], func(context.Context, *host) error { return nil }); err != nil {
		t.Errorf("parallel with n = 0: %v", err)
	}
}

// A host's error that only says it waited for a failed host never hides
// a real one, and stands alone only when there is nothing else.
func TestJoinErrs(t *testing.T) {
	real := errors.New("n2: step daemon.json: bad")
	if err := joinErrs([]error{errWaiting, real, nil}); err == nil || errors.Is(err, errWaiting) || !errors.Is(err, real) {
		t.Errorf("joinErrs = %v", err)
	}
	if err := joinErrs([]error{nil, errWaiting}); !errors.Is(err, errWaiting) {
		t.Errorf("only waiting: %v", err)
	}
	if err := joinErrs([]error{nil, nil}); err != nil {
		t.Errorf("none: %v", err)
	}
}
