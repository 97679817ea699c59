package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
)

// Bounds on what reading a backup takes in: the Raft state entry, each
// other entry, the whole archive unpacked, and the number of entries. A
// backup past them is refused, never cut.
const (
	maxSwarmEntry = 1 << 30
	maxSmallEntry = 4 << 20
	maxArchive    = maxSwarmEntry + 64<<20
	maxEntries    = 64
)

// macEntry is the archive's last entry: an HMAC-SHA256, with the store's
// backup key, over every entry before it (name, size, content).
const macEntry = "hmac-sha256"

// backupKeyFile is the store's backup key (32 random bytes, hex, 0600):
// archives made with it are taken without --trust.
const backupKeyFile = "backup.key"

// BackupKey reads the store's backup key; with create, one is made when
// there is none. A store without one gives nil.
func BackupKey(st *store.Store, create bool) ([]byte, error) {
	path := filepath.Join(st.Root, backupKeyFile)
	data, err := os.ReadFile(path)
	if err == nil {
		k, derr := hex.DecodeString(strings.TrimSpace(string(data)))
		if derr != nil || len(k) < 32 {
			return nil, fmt.Errorf("%s: not a backup key (64 hex digits); move it away to make a new one", path)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, fsutil.WriteFileAtomic(path, []byte(hex.EncodeToString(k)+"\n"), 0o600)
}

// archiveWriter writes a backup archive entry by entry, each streamed,
// with the MAC over them all as the last.
type archiveWriter struct {
	zw      *gzip.Writer
	tw      *tar.Writer
	mac     hash.Hash
	created time.Time
}

func newArchiveWriter(w io.Writer, key []byte, created time.Time) *archiveWriter {
	zw := gzip.NewWriter(w)
	return &archiveWriter{zw: zw, tw: tar.NewWriter(zw), mac: hmac.New(sha256.New, key), created: created}
}

// macHeader is what the MAC covers of an entry before its content.
func macHeader(name string, size int64) []byte {
	return []byte(fmt.Sprintf("%s\x00%d\n", name, size))
}

// put writes one entry of size bytes read from r.
func (a *archiveWriter) put(name string, size int64, r io.Reader) error {
	if err := a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: a.created, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	a.mac.Write(macHeader(name, size))
	n, err := io.Copy(io.MultiWriter(a.tw, a.mac), io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("%s: %d of %d bytes", name, n, size)
	}
	return err
}

func (a *archiveWriter) putBytes(name string, data []byte) error {
	return a.put(name, int64(len(data)), bytes.NewReader(data))
}

// seal writes the MAC entry and ends the archive.
func (a *archiveWriter) seal() error {
	sum := []byte(hex.EncodeToString(a.mac.Sum(nil)) + "\n")
	if err := a.tw.WriteHeader(&tar.Header{Name: macEntry, Mode: 0o600, Size: int64(len(sum)), ModTime: a.created, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := a.tw.Write(sum); err != nil {
		return err
	}
	if err := a.tw.Close(); err != nil {
		return err
	}
	return a.zw.Close()
}

// writeArchive writes b to w, its Raft state (swarmSize bytes) read from
// swarm, sealed with key.
func (b *Backup) writeArchive(w io.Writer, key []byte, swarm io.Reader, swarmSize int64) error {
	man, err := json.MarshalIndent(b.Manifest, "", "  ")
	if err != nil {
		return err
	}
	a := newArchiveWriter(w, key, b.Manifest.Created)
	if err := a.putBytes(manifestEntry, append(man, '\n')); err != nil {
		return err
	}
	if err := a.put(swarmEntry, swarmSize, swarm); err != nil {
		return err
	}
	if err := b.putOptional(a); err != nil {
		return err
	}
	return a.seal()
}

// putOptional writes the entries a backup may lack: the unlock key,
// shoal's files, the cluster file.
func (b *Backup) putOptional(a *archiveWriter) error {
	if b.Key != "" {
		if err := a.putBytes(keyEntry, []byte(b.Key+"\n")); err != nil {
			return err
		}
	}
	for _, f := range shoalFiles {
		if d, ok := b.Shoal[f]; ok {
			if err := a.putBytes(shoalPrefix+f, d); err != nil {
				return err
			}
		}
	}
	if b.File == nil {
		return nil
	}
	return a.putBytes(fileEntry, b.File)
}

// encode is writeArchive into memory, with the Raft state b.Swarm.
func (b *Backup) encode(key []byte) ([]byte, error) {
	var buf bytes.Buffer
	err := b.writeArchive(&buf, key, bytes.NewReader(b.Swarm), int64(len(b.Swarm)))
	return buf.Bytes(), err
}

// ErrUntrusted is a backup whose MAC this store cannot confirm: altered,
// made by another store, or by a shoal before backups had one.
var ErrUntrusted = errors.New("untrusted backup")

// ReadBackup reads and checks a backup archive: its MAC with key (the
// store's backup key; nil when it has none), unless trust, and the bounds
// on its entries.
func ReadBackup(path string, key []byte, trust bool) (*Backup, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, sum, got, err := decodeArchive(f, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if why := untrusted(got, sum, key); why != "" && !trust {
		return nil, fmt.Errorf("%s: %w: %s; restore it only if you know where it comes from, with --trust", path, ErrUntrusted, why)
	}
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// untrusted says why the MAC the archive carries (got) does not confirm
// it against sum, its MAC with this store's key; "" when it does.
func untrusted(got, sum, key []byte) string {
	switch {
	case got == nil:
		return "it has no " + macEntry + " entry (made by an older shoal, or altered)"
	case key == nil:
		return "this store has no backup key (" + backupKeyFile + "): the backup was made elsewhere"
	case !hmac.Equal(got, sum):
		return "its HMAC does not match this store's backup key: altered, or made by another store"
	}
	return ""
}

// check refuses what is not a backup this shoal restores.
func (b *Backup) check() error {
	if b.Manifest.Version != 1 || b.Manifest.SwarmID == "" || b.Manifest.Cluster == "" {
		return fmt.Errorf("manifest.json: version %d, swarm %q, cluster %q: not a backup this shoal reads", b.Manifest.Version, b.Manifest.SwarmID, b.Manifest.Cluster)
	}
	if err := store.ValidateName(b.Manifest.Cluster); err != nil {
		return fmt.Errorf("manifest.json: cluster: %w", err)
	}
	if b.Manifest.Locked && b.Key == "" {
		return errors.New("the swarm state is locked (autolock) but the backup has no unlock key")
	}
	return nil
}

// errTooLarge ends a read past maxArchive.
var errTooLarge = fmt.Errorf("unpacks to more than %d MiB: not a backup this shoal reads", maxArchive>>20)

// boundedReader fails, rather than ends, past its bound.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// entryLimit is the most an entry may hold.
func entryLimit(name string) int64 {
	if name == swarmEntry {
		return maxSwarmEntry
	}
	return maxSmallEntry
}

// known tells whether name is an entry a backup has.
func known(name string) bool {
	switch name {
	case manifestEntry, swarmEntry, keyEntry, fileEntry:
		return true
	}
	for _, f := range shoalFiles {
		if name == shoalPrefix+f {
			return true
		}
	}
	return false
}

// decodeArchive reads an archive within the bounds: the backup, the MAC
// its entries have with key (nil without one) and the MAC it carries (nil
// when none).
func decodeArchive(r io.Reader, key []byte) (b *Backup, sum, got []byte, err error) {
	zr, err := gzip.NewReader(&boundedReader{r: r, left: maxArchive})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("not a shoal backup (not gzip): %w", err)
	}
	tr := tar.NewReader(&boundedReader{r: zr, left: maxArchive})
	d := archiveDecoder{b: &Backup{Shoal: map[string][]byte{}}, mac: hmac.New(sha256.New, key), seen: map[string]bool{}}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, nil, err
		}
		if err := d.entry(tr, h, n); err != nil {
			return nil, nil, nil, err
		}
	}
	if !d.seen[manifestEntry] || !d.seen[swarmEntry] {
		return nil, nil, nil, fmt.Errorf("not a shoal backup (no %s or %s)", manifestEntry, swarmEntry)
	}
	if key != nil {
		sum = d.mac.Sum(nil)
	}
	return d.b, sum, d.got, nil
}

// archiveDecoder is what decodeArchive has read so far: the backup, the
// MAC of its entries, the names seen and the MAC the archive carries.
type archiveDecoder struct {
	b    *Backup
	mac  hash.Hash
	seen map[string]bool
	got  []byte
}

// entry reads the n-th entry, h, whose data r holds.
func (d *archiveDecoder) entry(r io.Reader, h *tar.Header, n int) error {
	if err := checkEntry(h, n, d.got != nil, d.seen); err != nil {
		return err
	}
	d.seen[h.Name] = true
	data, err := io.ReadAll(io.LimitReader(r, h.Size))
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	if h.Name == macEntry {
		return d.readMAC(data)
	}
	d.mac.Write(macHeader(h.Name, h.Size))
	d.mac.Write(data)
	return d.b.take(h.Name, data)
}

// checkEntry refuses the n-th entry h when a backup cannot have it: too
// many, after the MAC (afterMAC), not a file, twice, unknown or too big.
func checkEntry(h *tar.Header, n int, afterMAC bool, seen map[string]bool) error {
	switch {
	case n >= maxEntries:
		return fmt.Errorf("more than %d entries: not a shoal backup", maxEntries)
	case afterMAC:
		return fmt.Errorf("%s: an entry after %s", h.Name, macEntry)
	case h.Typeflag != tar.TypeReg:
		return fmt.Errorf("%s: not a regular file (type %q)", h.Name, h.Typeflag)
	case seen[h.Name]:
		return fmt.Errorf("%s: twice in the archive", h.Name)
	case h.Name != macEntry && !known(h.Name):
		return fmt.Errorf("%s: not an entry of a shoal backup", h.Name)
	case h.Size < 0 || h.Size > entryLimit(h.Name):
		return fmt.Errorf("%s: %d bytes, more than the %d MiB it may hold", h.Name, h.Size, entryLimit(h.Name)>>20)
	}
	return nil
}

// readMAC reads the MAC entry: an HMAC-SHA256 in hex.
func (d *archiveDecoder) readMAC(data []byte) error {
	got, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%s: not an HMAC-SHA256", macEntry)
	}
	d.got = got
	return nil
}

// take puts one entry's data in b.
func (b *Backup) take(name string, data []byte) error {
	switch {
	case name == manifestEntry:
		if err := json.Unmarshal(data, &b.Manifest); err != nil {
			return fmt.Errorf("manifest.json: %w", err)
		}
	case name == swarmEntry:
		b.Swarm = data
	case name == keyEntry:
		b.Key = strings.TrimSpace(string(data))
	case name == fileEntry:
		b.File = data
	case strings.HasPrefix(name, shoalPrefix):
		b.Shoal[strings.TrimPrefix(name, shoalPrefix)] = data
	}
	return nil
}
