package fsutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "f.txt")
	if err := WriteFileAtomic(path, []byte("one"), 0o600); err != nil {
		t.Fatalf("WriteFileAtomic: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "one" {
		t.Errorf("content = %q", got)
	}
	if p := perm(t, path); p != 0o600 {
		t.Errorf("mode = %o, want 600", p)
	}
	if err := WriteFileAtomic(path, []byte("two, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "two, longer" {
		t.Errorf("content after rewrite = %q", got)
	}
	if p := perm(t, path); p != 0o644 {
		t.Errorf("mode after rewrite = %o, want 644", p)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want only f.txt (no temp files left)", names)
	}
}

func TestWriteFileAtomicModeOnlyChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFileAtomic(path, []byte("same"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("same"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p := perm(t, path); p != 0o600 {
		t.Errorf("mode = %o after a mode-only change, want 600", p)
	}
}

func TestWriteFileAtomicUnchangedKeepsMtime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFileAtomic(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	if err := WriteFileAtomic(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if !after.ModTime().Equal(old) {
		t.Errorf("mtime changed on an unchanged write: %v -> %v", before.ModTime(), after.ModTime())
	}
	if !os.SameFile(before, after) {
		t.Error("file was replaced on an unchanged write")
	}
	// Different content of the same size is written.
	if err := WriteFileAtomic(path, []byte("DATA"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "DATA" {
		t.Errorf("same-size change not written: %q", got)
	}
	if fi, _ := os.Stat(path); fi.ModTime().Equal(old) {
		t.Error("mtime kept after a real change")
	}
}

func TestWriteFileAtomicIntoMissingFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x", "y", "z")
	if err := WriteFileAtomic(path, []byte("z"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p := perm(t, filepath.Dir(path)); p != 0o700 {
		t.Errorf("made folder mode = %o, want 700", p)
	}
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
