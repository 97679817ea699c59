package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
)

func TestBackupArchiveRoundTrip(t *testing.T) {
	b := &Backup{
		Manifest: bootstrap.Manifest{Version: 1, Cluster: "lab", SwarmID: "abc123", Created: time.Now().UTC().Truncate(time.Second), Autolock: true, Locked: true,
			Nodes: []bootstrap.ManifestNode{{ID: "n1", Hostname: "m1", Role: "manager", Labels: map[string]string{"zone": "a"}}}},
		Swarm: []byte("raft"),
		Key:   "SWMKEY-1-secret",
		Shoal: map[string][]byte{"state.json": []byte(`{"version":1}`), store.KeyFile: []byte("PRIVATE")},
		File:  []byte(`cluster "lab" {}`),
	}
	key := testKey(1)
	data, err := b.encode(key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.tgz")
	if err := fsutil.WriteFileAtomic(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBackup(path, key, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Manifest.SwarmID != "abc123" || string(got.Swarm) != "raft" || got.Key != b.Key || string(got.Shoal[store.KeyFile]) != "PRIVATE" || string(got.File) != string(b.File) {
		t.Errorf("round trip lost something: %+v", got)
	}
	if !got.Manifest.Created.Equal(b.Manifest.Created) || got.Manifest.Nodes[0].Labels["zone"] != "a" {
		t.Errorf("manifest: %+v", got.Manifest)
	}

	// What is not a backup is refused with a reason.
	for name, content := range map[string]string{"plain.txt": "hello", "empty.tgz": ""} {
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(content), 0o600)
		if _, err := ReadBackup(p, key, true); err == nil || !strings.Contains(err.Error(), "not a shoal backup") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A locked swarm's backup without its key cannot be restored.
	b.Key = ""
	data, _ = b.encode(key)
	os.WriteFile(path, data, 0o600)
	if _, err := ReadBackup(path, key, false); err == nil || !strings.Contains(err.Error(), "no unlock key") {
		t.Errorf("autolock without key: %v", err)
	}
}

func TestWriteShoalFilesKeepsTheStoresKey(t *testing.T) {
	st, err := store.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := st.ClusterDir("lab")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, store.KeyFile), []byte("MINE"), 0o600)
	b := &Backup{Key: "SWMKEY-1-x", Shoal: map[string][]byte{store.KeyFile: []byte("BACKUP"), store.KeyFile + ".pub": []byte("pub")}}
	if err := writeShoalFiles(st, "lab", b); err != nil {
		t.Fatal(err)
	}
	if d, _ := os.ReadFile(filepath.Join(dir, store.KeyFile)); string(d) != "MINE" {
		t.Errorf("the store's key was overwritten: %q", d)
	}
	if d, _ := os.ReadFile(filepath.Join(dir, store.KeyFile+".pub")); string(d) != "pub" {
		t.Errorf("missing public key not written: %q", d)
	}
	fi, err := os.Stat(filepath.Join(dir, "unlock-key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("unlock-key: %v %v", fi, err)
	}
}
