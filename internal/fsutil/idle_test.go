package fsutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestIdleFile: writes append in order, the file is closed while no write
// comes and opened again by the next one; after Close writes fail.
func TestIdleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "provision.log")
	if err := os.WriteFile(path, []byte("# head\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := NewIdleFile(path, 20*time.Millisecond)
	if w.open() {
		t.Error("open before any write")
	}
	if _, err := w.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if !w.open() {
		t.Error("closed right after a write")
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.open() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if w.open() {
		t.Fatal("still open after the idle time")
	}
	if _, err := w.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.open() {
		t.Error("open after Close")
	}
	if _, err := w.Write([]byte("three\n")); err == nil {
		t.Error("a write after Close did not fail")
	}
	if got, _ := os.ReadFile(path); string(got) != "# head\none\ntwo\n" {
		t.Errorf("file = %q", got)
	}
}
