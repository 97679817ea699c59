package driverutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestState(t *testing.T) {
	type st struct {
		Version int    `json:"version"`
		Name    string `json:"name"`
	}
	p := filepath.Join(t.TempDir(), "s.json")
	var got st
	if found, err := LoadState(p, 1, &got); found || err != nil {
		t.Fatalf("missing file: found %v, %v", found, err)
	}
	if err := SaveState(p, st{Version: 1, Name: "vm1"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	if found, err := LoadState(p, 1, &got); !found || err != nil || got.Name != "vm1" {
		t.Fatalf("found %v, %+v, %v", found, got, err)
	}
	if err := SaveState(p, st{Version: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(p, 1, &got); err == nil || !strings.Contains(err.Error(), "version 2 is newer") || !strings.Contains(err.Error(), p) {
		t.Fatalf("newer version: %v", err)
	}
	if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(p, 1, &got); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("bad JSON: %v", err)
	}
}
