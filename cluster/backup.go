package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
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
var shoalFiles = []string{"state.json", store.KeyFile, store.KeyFile + ".pub"}

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
	Bytes   int    `json:"bytes"`
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
	unlock, err := st.TryLock("cluster", name)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: another 'cluster up' or 'cluster down' is running (%v)", name, err)
	}
	defer unlock()
	var hosts []*host
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	var anchor *host
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
	if anchor == nil {
		return nil, fmt.Errorf("cluster %s: no manager of its swarm answers", name)
	}
	members, err := bootstrap.Members(ctx, anchor.node)
	if err != nil {
		return nil, err
	}
	choice, err := bootstrap.PickBackupSource(members)
	if err != nil {
		return nil, err
	}
	var src *host
	for _, h := range hosts {
		if h.node != nil && h.state.NodeID == choice.ID {
			src = h
		}
	}
	if src == nil {
		return nil, fmt.Errorf("cluster %s: the manager %s chosen for the copy is not one of the cluster's machines that answer", name, choice.Hostname)
	}
	man, err := bootstrap.Describe(ctx, anchor.node)
	if err != nil {
		return nil, err
	}
	man.Cluster, man.Created, man.Source = name, time.Now().UTC(), src.spec.Name
	key := ""
	if b, err := os.ReadFile(filepath.Join(st.ClusterDir(name), "unlock-key")); err == nil {
		key = strings.TrimSpace(string(b))
		c.Machines.Redactor.Add(key)
	}
	var relock func() error
	if man.Autolock {
		// A restored manager whose state is locked must be unlocked before
		// it can start a new cluster, and Docker's unlock waits for the old
		// managers' quorum, which is gone then: the copy is taken with
		// autolock off for its seconds, and turned on again after it with a
		// new key (kept in the store as always).
		if _, _, err := bootstrap.EnsureAutolock(ctx, anchor.node, false); err != nil {
			return nil, err
		}
		c.Machines.Progress.Event(src.spec.Name, "backup", ui.Info, "autolock off for the copy; on again after it, with a new unlock key")
		relock = func() error {
			relock = nil
			_, k, err := bootstrap.EnsureAutolock(context.WithoutCancel(ctx), anchor.node, true)
			if err == nil && k != "" {
				c.Machines.Redactor.Add(k)
				key = k
				err = store.WriteFileAtomic(filepath.Join(st.ClusterDir(name), "unlock-key"), []byte(k+"\n"), 0o600)
			}
			if err != nil {
				return fmt.Errorf("cluster %s: turning autolock on again after the copy: %w (run 'cluster up' to set it)", name, err)
			}
			return nil
		}
		defer func() {
			if relock != nil {
				if err := relock(); err != nil && rerr == nil {
					rerr = err
				}
			}
		}()
		if err := bootstrap.WaitKeyPlain(ctx, src.node, time.Minute); err != nil {
			return nil, err
		}
	}
	if choice.Pause {
		c.Machines.Progress.Event(src.spec.Name, "backup", ui.Info, "the swarm has fewer than 3 managers: it takes no changes while this manager's dockerd is stopped for the copy (seconds)")
	} else {
		c.Machines.Progress.Event(src.spec.Name, "backup", ui.Info, "copying from a manager that does not lead: the others keep the quorum")
	}
	c.Machines.Progress.Event(src.spec.Name, "backup", ui.Started, "")
	data, err := bootstrap.CopySwarmState(ctx, src.node, src.client.ReadFile, key, c.Machines.Redactor.Redact)
	if err != nil {
		c.Machines.Progress.Event(src.spec.Name, "backup", ui.Failed, "")
		return nil, err
	}
	if err := bootstrap.WaitReady(ctx, src.node, choice.ID, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("%s: after the copy: %w", src.spec.Name, err)
	}
	c.Machines.Progress.Event(src.spec.Name, "backup", ui.Changed, fmt.Sprintf("%d bytes of Raft state", len(data)))
	if relock != nil {
		if err := relock(); err != nil {
			return nil, err
		}
	}
	b := &Backup{Manifest: man, Swarm: data, Key: key, Shoal: map[string][]byte{}}
	for _, f := range shoalFiles {
		if d, err := os.ReadFile(filepath.Join(st.ClusterDir(name), f)); err == nil {
			b.Shoal[f] = d
		}
	}
	if state.File != "" {
		b.File, _ = os.ReadFile(state.File)
	}
	arch, err := b.encode()
	if err != nil {
		return nil, err
	}
	if err := store.WriteFileAtomic(out, arch, 0o600); err != nil {
		return nil, err
	}
	return &BackupResult{Cluster: name, File: out, SwarmID: man.SwarmID, Source: src.spec.Name, Paused: choice.Pause, Nodes: len(man.Nodes), Bytes: len(arch)}, nil
}

func (b *Backup) encode() ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	man, err := json.MarshalIndent(b.Manifest, "", "  ")
	if err != nil {
		return nil, err
	}
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: b.Manifest.Created, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	entries := []struct {
		name string
		data []byte
	}{{manifestEntry, append(man, '\n')}, {swarmEntry, b.Swarm}}
	if b.Key != "" {
		entries = append(entries, struct {
			name string
			data []byte
		}{keyEntry, []byte(b.Key + "\n")})
	}
	for _, f := range shoalFiles {
		if d, ok := b.Shoal[f]; ok {
			entries = append(entries, struct {
				name string
				data []byte
			}{shoalPrefix + f, d})
		}
	}
	if b.File != nil {
		entries = append(entries, struct {
			name string
			data []byte
		}{fileEntry, b.File})
	}
	for _, e := range entries {
		if err := put(e.name, e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxEntry bounds what one entry of a backup may hold when read.
const maxEntry = 1 << 30

// ReadBackup reads and checks a backup archive.
func ReadBackup(path string) (*Backup, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: not a shoal backup (not gzip): %w", path, err)
	}
	tr := tar.NewReader(zr)
	b := &Backup{Shoal: map[string][]byte{}}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxEntry))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, h.Name, err)
		}
		seen[h.Name] = true
		switch {
		case h.Name == manifestEntry:
			if err := json.Unmarshal(data, &b.Manifest); err != nil {
				return nil, fmt.Errorf("%s: manifest.json: %w", path, err)
			}
		case h.Name == swarmEntry:
			b.Swarm = data
		case h.Name == keyEntry:
			b.Key = strings.TrimSpace(string(data))
		case h.Name == fileEntry:
			b.File = data
		case strings.HasPrefix(h.Name, shoalPrefix):
			n := strings.TrimPrefix(h.Name, shoalPrefix)
			for _, f := range shoalFiles {
				if n == f {
					b.Shoal[n] = data
				}
			}
		}
	}
	if !seen[manifestEntry] || !seen[swarmEntry] {
		return nil, fmt.Errorf("%s: not a shoal backup (no %s or %s)", path, manifestEntry, swarmEntry)
	}
	if b.Manifest.Version != 1 || b.Manifest.SwarmID == "" || b.Manifest.Cluster == "" {
		return nil, fmt.Errorf("%s: manifest.json: version %d, swarm %q, cluster %q: not a backup this shoal reads", path, b.Manifest.Version, b.Manifest.SwarmID, b.Manifest.Cluster)
	}
	if b.Manifest.Locked && b.Key == "" {
		return nil, fmt.Errorf("%s: the swarm state is locked (autolock) but the backup has no unlock key", path)
	}
	return b, nil
}

// writeShoalFiles puts the backup's cluster folder files into the store,
// keeping any that are there already (the cluster's key pair).
func writeShoalFiles(st *store.Store, name string, b *Backup) error {
	if err := writeKeyPair(st, name, b); err != nil {
		return err
	}
	if b.Key != "" {
		return store.WriteFileAtomic(filepath.Join(st.ClusterDir(name), "unlock-key"), []byte(b.Key+"\n"), 0o600)
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
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		mode := fs.FileMode(0o600)
		if strings.HasSuffix(f, ".pub") {
			mode = 0o644
		}
		if err := store.WriteFileAtomic(filepath.Join(dir, f), d, mode); err != nil {
			return err
		}
	}
	return nil
}
