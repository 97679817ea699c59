package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
)

// A backup archive (tar.gz, written 0600) holds:
//
//	manifest.json   the swarm's ID, nodes, engine versions, the time
//	swarm.tgz       /var/lib/docker/swarm of one manager (the Raft state)
//	unlock-key      the swarm's unlock key, when autolock is on (a secret)
//	shoal/FILE      the cluster's own folder: state.json, the cluster's SSH key pair
//	cluster.hcl     the cluster file as it was, when it could be read
const (
	manifestEntry = "manifest.json"
	swarmEntry    = "swarm.tgz"
	keyEntry      = "unlock-key"
	shoalPrefix   = "shoal/"
	fileEntry     = "cluster.hcl"
)

// shoalFiles are the files of the cluster's folder a backup keeps.
var shoalFiles = []string{store.ClusterStateFile, store.KeyFile, store.KeyFile + ".pub"}

// Backup is a read backup archive.
type Backup struct {
	Manifest bootstrap.Manifest
	Swarm    []byte
	Key      string
	Shoal    map[string][]byte
	File     []byte
}

// BackupResult says what `cluster backup` did (no secret in it).
type BackupResult struct {
	Cluster string `json:"cluster"`
	File    string `json:"file"`
	SwarmID string `json:"swarmID"`
	Source  string `json:"source"`
	Paused  bool   `json:"paused"`
	Nodes   int    `json:"nodes"`
	Bytes   int64  `json:"bytes"`
}

// Backup copies the swarm's Raft state from one manager (a non-leader when
// there are three or more, so that the quorum holds while its dockerd is
// stopped), with the unlock key and shoal's own state of the cluster, into
// one archive written 0600.
func (c *Converger) Backup(ctx context.Context, name, out string) (res *BackupResult, rerr error) {
	st := c.Machines.Store
	state, err := LoadState(st, name)
	if err != nil {
		return nil, err
	}
	unlock, err := lockCluster(st, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	hosts, anchor, src, choice, err := c.backupSource(ctx, name, state)
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	if err != nil {
		return nil, err
	}
	man, err := describeSwarm(ctx, anchor, src, name)
	if err != nil {
		return nil, err
	}
	// What can fail without stopping anything fails here.
	bkey, f, err := c.backupPreflight(ctx, src, out)
	if err != nil {
		return nil, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name()) // no-op after the rename
	}()
	lock := &backupAutolock{c: c, ctx: ctx, name: name, node: anchor.node, key: c.storedUnlockKey(name)}
	if man.Autolock {
		defer func() {
			if err := lock.on(); err != nil && rerr == nil {
				rerr = err
			}
		}()
		if err := lock.off(ctx, src); err != nil {
			return nil, err
		}
	}
	pack, err := c.packSwarm(ctx, src, choice, lock.key)
	if err != nil {
		return nil, err
	}
	defer pack.Remove(ctx, src.node)
	if err := bootstrap.WaitReady(ctx, src.node, choice.ID, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("%s: after the copy: %w", src.spec.Name, err)
	}
	c.Machines.Progress.Event(src.spec.Name, "backup", ui.Changed, fmt.Sprintf("%d bytes of Raft state", pack.Size))
	if err := lock.on(); err != nil {
		return nil, err
	}
	size, err := c.writeBackup(ctx, src, pack, c.backupOf(name, state, man, lock.key), bkey, f, out)
	if err != nil {
		return nil, err
	}
	return &BackupResult{Cluster: name, File: out, SwarmID: man.SwarmID, Source: src.spec.Name, Paused: choice.Pause, Nodes: len(man.Nodes), Bytes: size}, nil
}

// describeSwarm is the backup's manifest: the swarm as anchor describes
// it, of cluster name, copied from src now.
func describeSwarm(ctx context.Context, anchor, src *host, name string) (bootstrap.Manifest, error) {
	man, err := bootstrap.Describe(ctx, anchor.node)
	if err != nil {
		return man, err
	}
	man.Cluster, man.Created, man.Source = name, time.Now().UTC(), src.spec.Name
	return man, nil
}

// storedUnlockKey is the cluster's unlock key in the store ("" without
// one), known to the redactor from here on.
func (c *Converger) storedUnlockKey(name string) string {
	b, err := os.ReadFile(c.Machines.Store.Cluster(name).UnlockKeyPath())
	if err != nil {
		return ""
	}
	key := strings.TrimSpace(string(b))
	c.Machines.Redactor.Add(key)
	return key
}

// backupAutolock turns a locked swarm's autolock off for the copy and on
// again after it. A restored manager whose state is locked must be
// unlocked before it can start a new cluster, and Docker's unlock waits
// for the old managers' quorum, which is gone then: the copy is taken with
// autolock off for its seconds, and turned on again after it with a new
// key (kept in the store as always).
type backupAutolock struct {
	c     *Converger
	ctx   context.Context // the run's: on goes on after it is canceled
	name  string
	node  *bootstrap.Node
	key   string // the unlock key: the new one once on
	armed bool   // autolock was turned off and is not on again yet
}

// off turns autolock off and waits until the source's key is plain.
func (l *backupAutolock) off(ctx context.Context, src *host) error {
	if _, _, err := bootstrap.EnsureAutolock(ctx, l.node, false); err != nil {
		return err
	}
	l.armed = true
	l.c.Machines.Progress.Event(src.spec.Name, "backup", ui.Info, "autolock off for the copy; on again after it, with a new unlock key")
	return bootstrap.WaitKeyPlain(ctx, src.node, time.Minute)
}

// on turns autolock on again, once, after off, and stores the new key.
func (l *backupAutolock) on() error {
	if !l.armed {
		return nil
	}
	l.armed = false
	_, k, err := bootstrap.EnsureAutolock(context.WithoutCancel(l.ctx), l.node, true)
	if err == nil && k != "" {
		l.c.Machines.Redactor.Add(k)
		l.key = k
		err = fsutil.WriteFileAtomic(l.c.Machines.Store.Cluster(l.name).UnlockKeyPath(), []byte(k+"\n"), 0o600)
	}
	if err != nil {
		return fmt.Errorf("cluster %s: turning autolock on again after the copy: %w (run 'cluster up' to set it)", l.name, err)
	}
	return nil
}

// packSwarm copies the source's Raft state into a pack on the source.
func (c *Converger) packSwarm(ctx context.Context, src *host, choice bootstrap.BackupChoice, key string) (*bootstrap.SwarmPack, error) {
	if choice.Pause {
		c.Machines.Progress.Event(src.spec.Name, "backup", ui.Info, "the swarm has fewer than 3 managers: it takes no changes while this manager's dockerd is stopped for the copy (seconds)")
	} else {
		c.Machines.Progress.Event(src.spec.Name, "backup", ui.Info, "copying from a manager that does not lead: the others keep the quorum")
	}
	c.Machines.Progress.Event(src.spec.Name, "backup", ui.Started, "")
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	pack, err := bootstrap.PackSwarmState(ctx, src.node, src.client.User(), id, key, c.Machines.Redactor.Redact)
	if err != nil {
		c.Machines.Progress.Event(src.spec.Name, "backup", ui.Failed, "")
		return nil, err
	}
	return pack, nil
}

// backupOf is the backup's content beside the Raft state: the manifest,
// the unlock key, shoal's own files and the cluster file.
func (c *Converger) backupOf(name string, state *State, man bootstrap.Manifest, key string) *Backup {
	st := c.Machines.Store
	b := &Backup{Manifest: man, Key: key, Shoal: map[string][]byte{}}
	for _, f := range shoalFiles {
		if d, err := os.ReadFile(filepath.Join(st.ClusterDir(name), f)); err == nil {
			b.Shoal[f] = d
		}
	}
	if state.File != "" {
		b.File, _ = os.ReadFile(state.File)
	}
	return b
}

// backupSource opens the cluster's machines that answer and picks the
// manager the copy comes from (see PickBackupSource); anchor is a manager
// that answers. The hosts are the caller's to close, also on an error.
func (c *Converger) backupSource(ctx context.Context, name string, state *State) (hosts []*host, anchor, src *host, choice bootstrap.BackupChoice, err error) {
	hosts, anchor = c.openBackupHosts(ctx, state)
	if anchor == nil {
		return hosts, nil, nil, choice, fmt.Errorf("cluster %s: no manager of its swarm answers", name)
	}
	members, err := bootstrap.Members(ctx, anchor.node)
	if err != nil {
		return hosts, nil, nil, choice, err
	}
	if choice, err = bootstrap.PickBackupSource(members); err != nil {
		return hosts, nil, nil, choice, err
	}
	if src = hostOfNode(hosts, choice.ID); src == nil {
		return hosts, nil, nil, choice, fmt.Errorf("cluster %s: the manager %s chosen for the copy is not one of the cluster's machines that answer", name, choice.Hostname)
	}
	return hosts, anchor, src, choice, nil
}

// openBackupHosts opens the cluster's machines and reads the swarm state
// of those that answer; anchor is the first active manager, nil for none.
func (c *Converger) openBackupHosts(ctx context.Context, state *State) (hosts []*host, anchor *host) {
	for _, n := range state.Machines {
		h, err := c.openSwarmNode(ctx, n)
		if h != nil {
			hosts = append(hosts, h)
		}
		if err != nil {
			continue
		}
		if h.state, err = h.node.State(ctx); err == nil && h.state.Active() && h.state.Manager && anchor == nil {
			anchor = h
		}
	}
	return hosts, anchor
}

// hostOfNode is the last of hosts that runs the swarm node id, nil for
// none.
func hostOfNode(hosts []*host, id string) *host {
	var found *host
	for _, h := range hosts {
		if h.node != nil && h.state.NodeID == id {
			found = h
		}
	}
	return found
}

// backupPreflight does what can fail before anything is stopped: the
// store's backup key, the room for the pack on the host and for the
// archive here, and the archive's temp file next to out.
func (c *Converger) backupPreflight(ctx context.Context, src *host, out string) ([]byte, *os.File, error) {
	bkey, err := BackupKey(c.Machines.Store, true)
	if err != nil {
		return nil, nil, err
	}
	room, err := bootstrap.MeasureSwarm(ctx, src.node)
	if err != nil {
		return nil, nil, err
	}
	if err := checkBackupRoom(src.spec.Name, room, freeSpace(filepath.Dir(out))); err != nil {
		return nil, nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return nil, nil, fmt.Errorf("the archive: %w", err)
	}
	return bkey, f, nil
}

// writeBackup streams the archive into f, the Raft state read from the
// host's pack over SFTP, and renames f to out once it is whole.
func (c *Converger) writeBackup(ctx context.Context, src *host, pack *bootstrap.SwarmPack, b *Backup, bkey []byte, f *os.File, out string) (int64, error) {
	if pack.Size > maxSwarmEntry {
		return 0, fmt.Errorf("%s: the packed Raft state is %d MiB, more than the %d MiB a backup holds", src.spec.Name, pack.Size>>20, maxSwarmEntry>>20)
	}
	in, err := openPack(src, pack)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	stop := context.AfterFunc(ctx, func() { in.Close() }) // a long copy ends with ctx
	defer stop()
	if err := f.Chmod(0o600); err != nil {
		return 0, err
	}
	if err := b.writeArchive(f, bkey, in, pack.Size); err != nil {
		return 0, fmt.Errorf("%s: writing the archive from the pack: %w", src.spec.Name, err)
	}
	return finishArchive(f, out)
}

// openPack opens the host's pack over SFTP.
func openPack(src *host, pack *bootstrap.SwarmPack) (io.ReadCloser, error) {
	sc, err := src.client.SFTP()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the pack: %w", src.spec.Name, err)
	}
	in, err := sc.Open(pack.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the pack %s: %w", src.spec.Name, pack.Path, err)
	}
	return in, nil
}

// finishArchive syncs and closes the archive f and renames it to out once
// whole; it returns its size.
func finishArchive(f *os.File, out string) (int64, error) {
	if err := f.Sync(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return fi.Size(), os.Rename(f.Name(), out)
}

// backupMargin is room kept beyond the Raft state's size: gzip can grow
// what does not compress, and the disk should not be filled to the brim.
const backupMargin = 64 << 20

// checkBackupRoom refuses, before anything stops, a copy that would not
// fit: a Raft state larger than a restore unpacks, or not room enough for
// its pack on the host (room.Free) or for the archive here (localFree, -1
// when unknown).
func checkBackupRoom(host string, room bootstrap.SwarmRoom, localFree int64) error {
	need := room.Used + backupMargin
	switch {
	case room.Used > bootstrap.MaxSwarmUnpacked:
		return fmt.Errorf("%s: %s holds %d MiB, more than the %d MiB a restore unpacks: not copied (nothing was stopped)", host, bootstrap.SwarmDir, room.Used>>20, bootstrap.MaxSwarmUnpacked>>20)
	case room.Free < need:
		return fmt.Errorf("%s: %d MiB free in /var/tmp, the pack of %s may take %d MiB: free some space (nothing was stopped)", host, room.Free>>20, bootstrap.SwarmDir, need>>20)
	case localFree >= 0 && localFree < min(need, maxSwarmEntry+backupMargin):
		return fmt.Errorf("%d MiB free where the archive goes, it may take %d MiB: free some space or write it elsewhere (nothing was stopped)", localFree>>20, need>>20)
	}
	return nil
}

// randomID names the copy's job and folder on the host.
func randomID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// writeShoalFiles puts the backup's cluster folder files into the store,
// keeping any that are there already (the cluster's key pair).
func writeShoalFiles(st *store.Store, name string, b *Backup) error {
	if err := writeKeyPair(st, name, b); err != nil {
		return err
	}
	if b.Key != "" {
		return fsutil.WriteFileAtomic(st.Cluster(name).UnlockKeyPath(), []byte(b.Key+"\n"), 0o600)
	}
	return nil
}

// writeKeyPair puts the backup's cluster SSH key pair into the store when
// the store has none (the old machines trust it).
func writeKeyPair(st *store.Store, name string, b *Backup) error {
	dir := st.ClusterDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range []string{store.KeyFile, store.KeyFile + ".pub"} {
		d, ok := b.Shoal[f]
		if !ok {
			continue
		}
		if err := writeIfMissing(filepath.Join(dir, f), d); err != nil {
			return err
		}
	}
	return nil
}

// writeIfMissing writes a key file (a public one 0644, else 0600) where
// there is none.
func writeIfMissing(path string, data []byte) error {
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	mode := fs.FileMode(0o600)
	if strings.HasSuffix(path, ".pub") {
		mode = 0o644
	}
	return fsutil.WriteFileAtomic(path, data, mode)
}
