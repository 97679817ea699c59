package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// A cluster's config.json files are read many times a run: the swarm
// master's by every host's provisioning (RootMaster), every machine's for
// the cluster it is in (machinesOf). Each names every node of the cluster
// (its /etc/hosts block: about 80 KB at 1,000 nodes), so parsing one per
// host made a no-op's CPU per host grow with the cluster's size.

// maxShared bounds the configs LoadShared keeps: a run asks it for a
// swarm's master and registry node, not for every machine.
const maxShared = 8

// sharedConfigs are the configs LoadShared parsed, each with the identity
// of the file it came from.
type sharedConfigs struct {
	mu sync.Mutex
	m  map[string]sharedConfig
}

type sharedConfig struct {
	id  fileID
	cfg *Machine
}

// fileID tells one version of a file from another: Save replaces
// config.json by a rename, so a file with the inode, size and times seen
// holds the bytes seen.
type fileID struct {
	ino          uint64
	size         int64
	mtime, ctime int64
}

func idOf(fi fs.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino, id.ctime = st.Ino, st.Ctim.Nano()
	}
	return id
}

func (c *sharedConfigs) get(name string, id fileID) *Machine {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[name]; ok && e.id == id {
		return e.cfg
	}
	return nil
}

func (c *sharedConfigs) put(name string, id fileID, cfg *Machine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[name]; !ok && len(c.m) >= maxShared {
		c.m = nil
	}
	if c.m == nil {
		c.m = map[string]sharedConfig{}
	}
	c.m[name] = sharedConfig{id: id, cfg: cfg}
}

// LoadShared is Load for a reader that never changes what it gets: while
// the machine's config.json stays as it was, every call returns the same
// value, parsed once (a swarm's master, which every node's provisioning
// reads). Change a machine only from Load.
func (s *Store) LoadShared(name string) (*Machine, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Join(s.MachineDir(name), ConfigFile)); err == nil {
		if cfg := s.shared.get(name, idOf(fi)); cfg != nil {
			return cfg, nil
		}
	}
	cfg, id, err := s.load(name)
	if err != nil {
		return nil, err
	}
	s.shared.put(name, id, cfg)
	return cfg, nil
}

// load reads and parses machine name's config.json, with the identity of
// the file it read.
func (s *Store) load(name string) (*Machine, fileID, error) {
	f, err := os.Open(filepath.Join(s.MachineDir(name), ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fileID{}, fmt.Errorf("machine %q: %w (see 'machine ls')", name, ErrNotFound)
	}
	if err != nil {
		return nil, fileID{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileID{}, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fileID{}, err
	}
	var m Machine
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fileID{}, fmt.Errorf("machine %q: %s is not valid: %w", name, ConfigFile, err)
	}
	if m.Version > ConfigVersion {
		return nil, fileID{}, fmt.Errorf("machine %q: config version %d is newer than this shoal understands (%d)", name, m.Version, ConfigVersion)
	}
	return &m, idOf(fi), nil
}

// ClusterOf is the cluster machine name is in ("" for none), read from
// the head of its config.json: the keys Save writes before its host list
// (Load reads the whole file).
func (s *Store) ClusterOf(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	f, err := os.Open(filepath.Join(s.MachineDir(name), ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("machine %q: %w (see 'machine ls')", name, ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	cluster, err := clusterOf(json.NewDecoder(f))
	if err != nil {
		return "", fmt.Errorf("machine %q: %s is not valid: %w", name, ConfigFile, err)
	}
	return cluster, nil
}

// clusterOf reads a config's top-level keys until it has its "version"
// and "cluster" (or reaches the end): a config newer than this code is an
// error, as in Load. Of a key written twice (never by Save) it takes the
// first, where Load takes the last.
func clusterOf(dec *json.Decoder) (string, error) {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", fmt.Errorf("not a JSON object")
	}
	var cluster string
	var haveVersion, haveCluster bool
	for dec.More() && !(haveVersion && haveCluster) {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, _ := t.(string)
		switch {
		case strings.EqualFold(key, "version"): // as Unmarshal matches keys
			var v int
			if err := dec.Decode(&v); err != nil {
				return "", err
			}
			if v > ConfigVersion {
				return "", fmt.Errorf("config version %d is newer than this shoal understands (%d)", v, ConfigVersion)
			}
			haveVersion = true
		case strings.EqualFold(key, "cluster"):
			if err := dec.Decode(&cluster); err != nil {
				return "", err
			}
			haveCluster = true
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
		}
	}
	return cluster, nil
}
