package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/validate"
)

// badNames are names that would build a path outside the store, or no
// usable path at all.
var badNames = []string{"", ".", "..", "../../victim", "../victim", "a/b", "/abs", "/tmp/x", "..\\x", "a\x00b", "-x", "x/..", "machines/../../victim"}

// snapshot lists every path under root with its size, to tell that nothing
// was made, removed or changed.
func snapshot(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %s %d", p, fi.Mode(), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestEveryEntryPointRefusesBadNames runs every exported function of the
// store that takes a name with names that would escape it: each refuses with
// ErrInvalidName, and nothing in or beside the store changes.
func TestEveryEntryPointRefusesBadNames(t *testing.T) {
	top := t.TempDir()
	victim := filepath.Join(top, "victim")
	if err := os.MkdirAll(filepath.Join(victim, "machines"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, ConfigFile), []byte(`{"name":"victim"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := New(filepath.Join(top, "a", "store"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(&Machine{Name: "ok", Driver: "docker"}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, top)

	entry := map[string]func(name string) error{
		"ValidateName": ValidateName,
		"Load": func(n string) error {
			_, err := st.Load(n)
			return err
		},
		"Save":   func(n string) error { return st.Save(&Machine{Name: n, Driver: "docker"}) },
		"Remove": st.Remove,
		"Lock": func(n string) error {
			u, err := st.Lock(context.Background(), "machine", n)
			if err == nil {
				u()
			}
			return err
		},
		"TryLock": func(n string) error {
			u, err := st.TryLock("cluster", n)
			if err == nil {
				u()
			}
			return err
		},
		"Exists": func(n string) error {
			if st.Exists(n) {
				return nil
			}
			return ErrInvalidName
		},
		"MachineDir": func(n string) error { return panics(func() { st.MachineDir(n) }) },
		"ClusterDir": func(n string) error { return panics(func() { st.ClusterDir(n) }) },
	}
	for fn, f := range entry {
		for _, n := range badNames {
			err := f(n)
			if !errors.Is(err, ErrInvalidName) {
				t.Errorf("%s(%q) = %v, want an ErrInvalidName error", fn, n, err)
			}
		}
	}
	if after := snapshot(t, top); !reflect.DeepEqual(before, after) {
		t.Errorf("the files changed:\nbefore %v\nafter  %v", before, after)
	}
	// The message says what a name may be.
	if err := st.Remove("../../victim"); err == nil || !strings.Contains(err.Error(), "letters, digits") {
		t.Errorf("Remove(../../victim) = %v, want a message saying what a name may hold", err)
	}
	// A lock kind is a word, not a path either.
	if _, err := st.Lock(context.Background(), "../x", "ok"); err == nil {
		t.Error("Lock with kind ../x succeeded")
	}
}

func panics(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = ErrInvalidName
		}
	}()
	f()
	return errors.New("no panic")
}

// TestListSkipsFoldersWithBadNames: a folder made by hand with a name shoal
// would refuse is not listed (nothing could be done with it).
func TestListSkipsFoldersWithBadNames(t *testing.T) {
	st := newStore(t)
	if err := st.Save(&Machine{Name: "good", Driver: "docker"}); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(st.Root, "machines", "bad name")
	if err := os.MkdirAll(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, ConfigFile), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := st.List()
	if err != nil || !reflect.DeepEqual(got, []string{"good"}) {
		t.Errorf("List = %v, %v; want [good]", got, err)
	}
}

// TestOpenCreatesNothing: a store opened read-only makes no folder, and
// reads on it answer "nothing here".
func TestOpenCreatesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "fresh")
	st, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if names, err := st.List(); err != nil || len(names) != 0 {
		t.Errorf("List on a fresh store = %v, %v", names, err)
	}
	if st.Exists("m1") {
		t.Error("Exists(m1) on a fresh store")
	}
	if _, err := st.Load("m1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load on a fresh store = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("Open made %s: %v", root, err)
	}
}

// TestLockErrorNamesTheHolder: a wait that ends says who holds the lock.
func TestLockErrorNamesTheHolder(t *testing.T) {
	st := newStore(t)
	st.LockWait = 200 * 1e6 // 200ms
	unlock, err := st.Lock(context.Background(), "machine", "n1")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = st.Lock(context.Background(), "machine", "n1")
	if err == nil {
		t.Fatal("second Lock succeeded while the first is held")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "pid ") || !strings.Contains(err.Error(), `machine "n1"`) {
		t.Errorf("error = %v, want the machine, the holder's pid and a deadline", err)
	}
}

// TestNamesAreValidatesStoredNames: the store reads exactly the names
// validate.StoredName takes (one rule, one place), a..b among them, which
// older shoal and docker-machine's import made: such a machine stays
// reachable, though a new one may not be named so (validate.Name).
func TestNamesAreValidatesStoredNames(t *testing.T) {
	for _, n := range append([]string{"a..b", "m1", "web-1.lab", strings.Repeat("a", 63), strings.Repeat("a", 64), "a_b"}, badNames...) {
		if got, want := ValidateName(n) == nil, validate.StoredName(n) == nil; got != want {
			t.Errorf("ValidateName(%q) ok=%v, validate.StoredName ok=%v", n, got, want)
		}
	}
	st, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(&Machine{Name: "a..b", Driver: "docker"}); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Load("a..b"); err != nil || m.Name != "a..b" {
		t.Fatalf("Load(a..b) = %v, %v", m, err)
	}
}
