package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/store"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func testBackup() *Backup {
	return &Backup{Manifest: bootstrap.Manifest{Version: 1, Cluster: "lab", SwarmID: "abc", Created: time.Unix(1700000000, 0).UTC()},
		Swarm: []byte("raft"), Key: "SWMKEY-1-x", Shoal: map[string][]byte{"state.json": []byte("{}")}}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "b.tgz")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type rawEntry struct {
	name string
	typ  byte
	data string
}

// rawArchive packs entries as given, MAC or not.
func rawArchive(t *testing.T, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o600, Size: int64(len(e.data)), Typeflag: e.typ}
		if e.typ != tar.TypeReg {
			h.Size, h.Linkname = 0, "/etc/passwd"
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.data)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestBackupAuthentication: an archive is taken without --trust only when
// its HMAC matches the store's key; altered, foreign or unsigned ones are
// refused, and --trust takes them.
func TestBackupAuthentication(t *testing.T) {
	mine, theirs := testKey(1), testKey(2)
	good, err := testBackup().encode(mine)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBackup(writeTemp(t, good), mine, false); err != nil {
		t.Fatalf("own backup refused: %v", err)
	}
	tampered := testBackup()
	tampered.Swarm = []byte("evil")
	// The same entries with another content, and the MAC of the original.
	forged, _ := tampered.encode(mine)
	gb, _, gsum, _ := decodeArchive(bytes.NewReader(good), mine)
	if gb == nil || gsum == nil {
		t.Fatal("no MAC read back")
	}
	forged = replaceMAC(t, forged, gsum)
	foreign, _ := testBackup().encode(theirs)
	unsigned := rawArchive(t, rawEntry{manifestEntry, tar.TypeReg, `{"version":1,"cluster":"lab","swarmID":"abc"}`}, rawEntry{swarmEntry, tar.TypeReg, "raft"})
	for name, c := range map[string]struct {
		data []byte
		key  []byte
		why  string
	}{
		"altered":         {forged, mine, "does not match"},
		"another store's": {foreign, mine, "does not match"},
		"no MAC":          {unsigned, mine, "no hmac-sha256"},
		"no key here":     {good, nil, "no backup key"},
		"no key, no MAC":  {unsigned, nil, "no hmac-sha256"},
	} {
		t.Run(name, func(t *testing.T) {
			p := writeTemp(t, c.data)
			_, err := ReadBackup(p, c.key, false)
			if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), c.why) || !strings.Contains(err.Error(), "--trust") {
				t.Fatalf("want refused (%s), got %v", c.why, err)
			}
			if _, err := ReadBackup(p, c.key, true); err != nil {
				t.Fatalf("with --trust: %v", err)
			}
		})
	}
}

// replaceMAC rewrites the archive's MAC entry with sum.
func replaceMAC(t *testing.T, data, sum []byte) []byte {
	t.Helper()
	zr, _ := gzip.NewReader(bytes.NewReader(data))
	tr := tar.NewReader(zr)
	var out []rawEntry
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		d, _ := io.ReadAll(tr)
		if h.Name == macEntry {
			d = []byte(hex.EncodeToString(sum) + "\n")
		}
		out = append(out, rawEntry{h.Name, tar.TypeReg, string(d)})
	}
	return rawArchive(t, out...)
}

// TestBackupBounds: what reading a backup takes in is bounded and only
// what a backup has: an entry past its bound, an unknown entry, a link, an
// entry twice or after the MAC are refused, not cut or skipped.
func TestBackupBounds(t *testing.T) {
	man := rawEntry{manifestEntry, tar.TypeReg, `{"version":1,"cluster":"lab","swarmID":"abc"}`}
	sw := rawEntry{swarmEntry, tar.TypeReg, "raft"}
	for name, c := range map[string]struct {
		entries []rawEntry
		why     string
	}{
		"big small entry": {[]rawEntry{man, sw, {fileEntry, tar.TypeReg, strings.Repeat("x", maxSmallEntry+1)}}, "more than the 4 MiB"},
		"unknown entry":   {[]rawEntry{man, sw, {"../../etc/passwd", tar.TypeReg, "x"}}, "not an entry of a shoal backup"},
		"symlink":         {[]rawEntry{man, sw, {keyEntry, tar.TypeSymlink, ""}}, "not a regular file"},
		"twice":           {[]rawEntry{man, sw, sw}, "twice"},
		"after the MAC":   {[]rawEntry{man, sw, {macEntry, tar.TypeReg, strings.Repeat("00", 32)}, {fileEntry, tar.TypeReg, "x"}}, "after"},
		"bad cluster":     {[]rawEntry{{manifestEntry, tar.TypeReg, `{"version":1,"cluster":"../x","swarmID":"abc"}`}, sw}, "cluster"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadBackup(writeTemp(t, rawArchive(t, c.entries...)), nil, true)
			if err == nil || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("want an error with %q, got %v", c.why, err)
			}
		})
	}
}

// TestBackupStreamsLargeState: a Raft state past the 16 MiB a command's
// output may hold goes into the archive streamed, and reads back whole.
func TestBackupStreamsLargeState(t *testing.T) {
	big := make([]byte, 20<<20)
	rand.Read(big)
	b := testBackup()
	b.Swarm = nil
	var buf bytes.Buffer
	if err := b.writeArchive(&buf, testKey(1), bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBackup(writeTemp(t, buf.Bytes()), testKey(1), false)
	if err != nil || !bytes.Equal(got.Swarm, big) {
		t.Fatalf("%d bytes back, %v", len(got.Swarm), err)
	}
	// A reader that ends early is an error, not a short entry.
	if err := b.writeArchive(io.Discard, testKey(1), bytes.NewReader(big[:10]), int64(len(big))); err == nil {
		t.Error("a short Raft state was written")
	}
}

func TestCheckBackupRoom(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name  string
		room  bootstrap.SwarmRoom
		local int64
		why   string
	}{
		{"fits", bootstrap.SwarmRoom{Used: 100 * mib, Free: 10 << 30}, 10 << 30, ""},
		{"local unknown", bootstrap.SwarmRoom{Used: 100 * mib, Free: 10 << 30}, -1, ""},
		{"host full", bootstrap.SwarmRoom{Used: 100 * mib, Free: 120 * mib}, 10 << 30, "free in /var/tmp"},
		{"here full", bootstrap.SwarmRoom{Used: 100 * mib, Free: 10 << 30}, 50 * mib, "where the archive goes"},
		{"too large", bootstrap.SwarmRoom{Used: bootstrap.MaxSwarmUnpacked + 1, Free: 100 << 30}, 100 << 30, "more than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkBackupRoom("m1", c.room, c.local)
			if c.why == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.why) || !strings.Contains(err.Error(), "nothing was stopped") {
				t.Fatalf("want %q, got %v", c.why, err)
			}
		})
	}
}

func TestBackupKey(t *testing.T) {
	st, err := store.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := BackupKey(st, false); k != nil || err != nil {
		t.Fatalf("a store without a key: %x %v", k, err)
	}
	k1, err := BackupKey(st, true)
	if err != nil || len(k1) != 32 {
		t.Fatalf("%x %v", k1, err)
	}
	fi, err := os.Stat(filepath.Join(st.Root, backupKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", fi, err)
	}
	if k2, _ := BackupKey(st, true); !bytes.Equal(k1, k2) {
		t.Error("the key changed")
	}
	os.WriteFile(filepath.Join(st.Root, backupKeyFile), []byte("nonsense"), 0o600)
	if _, err := BackupKey(st, true); err == nil {
		t.Error("a key file that is not one was taken (or replaced)")
	}
}

func FuzzDecodeArchive(f *testing.F) {
	good, _ := testBackup().encode(testKey(1))
	f.Add(good)
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, _, _, err := decodeArchive(bytes.NewReader(data), testKey(1))
		if err == nil && (b == nil || len(b.Swarm) > maxSwarmEntry) {
			t.Fatal("accepted past the bounds")
		}
	})
}
