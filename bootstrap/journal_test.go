package bootstrap

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFileJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c", "roll.json")
	j, err := LoadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Drained("w1", "active"); err != nil {
		t.Fatal(err)
	}
	// A resumed roll finds w1 drained already: the first record stays.
	if err := j.Drained("w1", "drain"); err != nil {
		t.Fatal(err)
	}
	again, err := LoadJournal(path)
	if err != nil || again.Was["w1"] != "active" {
		t.Fatalf("reloaded %v %v", again.Was, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("journal file %v %v", fi, err)
	}
	if err := again.Restored("w1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("an empty journal leaves no file: %v", err)
	}
}
