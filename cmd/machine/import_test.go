package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/drivers/all"
)

// TestDockerMachineVariableIsNotShoalsStore: docker-machine's
// $MACHINE_STORAGE_PATH does not make shoal use (or rm -f delete from)
// docker-machine's store, and that store given as shoal's is refused with
// the import hint.
func TestDockerMachineVariableIsNotShoalsStore(t *testing.T) {
	dm := t.TempDir()
	// A generic machine as docker-machine leaves it (dmimport's tests read
	// such stores in full).
	dev1 := filepath.Join(dm, "machines", "dev1")
	cfg, _ := json.Marshal(map[string]any{"ConfigVersion": 3, "DriverName": "generic", "Name": "dev1",
		"Driver":      map[string]any{"IPAddress": "10.0.0.5"},
		"HostOptions": map[string]any{"EngineOptions": map[string]any{"TlsVerify": true}}})
	os.MkdirAll(dev1, 0o700)
	for f, data := range map[string][]byte{"config.json": cfg, "ca.pem": []byte("x"), "cert.pem": []byte("x"), "key.pem": []byte("x")} {
		os.WriteFile(filepath.Join(dev1, f), data, 0o600)
	}
	t.Setenv("MACHINE_STORAGE_PATH", dm)
	t.Setenv("SHOAL_STORAGE_PATH", "")
	t.Setenv("HOME", t.TempDir())
	run := func(args ...string) (string, error) {
		root := newRoot(all.Registry())
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"--output", "plain"}, args...))
		err := root.Execute()
		return out.String(), err
	}
	before, _ := filepath.Glob(filepath.Join(dm, "*", "*", "*"))
	if out, err := run("ls", "-q"); err != nil || strings.Contains(out, "dev1") {
		t.Errorf("ls with docker-machine's variable set: %q, %v", out, err)
	}
	run("rm", "-f", "dev1")
	after, _ := filepath.Glob(filepath.Join(dm, "*", "*", "*"))
	if strings.Join(before, " ") != strings.Join(after, " ") {
		t.Errorf("docker-machine's store changed:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := os.Stat(filepath.Join(dm, "certs")); err == nil {
		t.Error("shoal made its folders in docker-machine's store")
	}
	_, err := run("--storage-path", dm, "ls")
	if err == nil || !strings.Contains(err.Error(), "machine import") {
		t.Errorf("ls in docker-machine's store: %v, want refused with the import hint", err)
	}
}
