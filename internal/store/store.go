// Package store keeps shoal's state on disk: one folder per machine with its
// config.json and keys, the CA under certs/, the clusters' state. Every write
// is a temp file plus rename; folders are 0700 and secrets 0600.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"syscall"
	"time"
)

// File names inside a machine's folder.
const (
	ConfigFile     = "config.json"
	KeyFile        = "id_ed25519"
	PublicKeyFile  = "id_ed25519.pub"
	KnownHostsFile = "known_hosts"
	ProvisionLog   = "provision.log"
	CAFile         = "ca.pem"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server-key.pem"
)

// ConfigVersion is the version of config.json this code writes.
const ConfigVersion = 1

// Store is the root folder of shoal's state.
type Store struct {
	Root string
}

// DefaultRoot is --storage-path's default: $MACHINE_STORAGE_PATH, else ~/.machine.
func DefaultRoot() string {
	if p := os.Getenv("MACHINE_STORAGE_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".machine"
	}
	return filepath.Join(home, ".machine")
}

// New opens (and creates) a store at root.
func New(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{abs, filepath.Join(abs, "machines"), filepath.Join(abs, "certs"), filepath.Join(abs, "clusters")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	return &Store{Root: abs}, nil
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$`)

// ValidateName checks a machine or cluster name: it becomes a hostname and a folder.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid name %q: use letters, digits, '-' and '.', starting with a letter or digit, at most 63 characters", name)
	}
	return nil
}

// MachineDir is the folder of machine name.
func (s *Store) MachineDir(name string) string { return filepath.Join(s.Root, "machines", name) }

// CertsDir holds the CA and the client certificate.
func (s *Store) CertsDir() string { return filepath.Join(s.Root, "certs") }

// ClusterDir is the folder of cluster name.
func (s *Store) ClusterDir(name string) string { return filepath.Join(s.Root, "clusters", name) }

// Engine is what the machine's Docker Engine should be.
type Engine struct {
	Install            string   `json:"install,omitempty"`
	Version            string   `json:"version,omitempty"`
	RepoURL            string   `json:"repoURL,omitempty"`
	OSMirror           string   `json:"osMirror,omitempty"`
	ReplaceConflicting bool     `json:"replaceConflicting,omitempty"`
	InsecureRegistries []string `json:"insecureRegistries,omitempty"`
	RegistryMirrors    []string `json:"registryMirrors,omitempty"`
	Labels             []string `json:"labels,omitempty"`
	TLS                bool     `json:"tls"`
	TLSPort            int      `json:"tlsPort,omitempty"`
}

// Swarm is the machine's place in a swarm.
type Swarm struct {
	Master        bool     `json:"master,omitempty"`
	Join          string   `json:"join,omitempty"`
	Manager       bool     `json:"manager,omitempty"`
	AdvertiseAddr string   `json:"advertiseAddr,omitempty"`
	Labels        []string `json:"labels,omitempty"`
	Availability  string   `json:"availability,omitempty"`
	Registry      bool     `json:"registry,omitempty"`
	RegistryPort  int      `json:"registryPort,omitempty"`
	RegistryImage string   `json:"registryImage,omitempty"`
	RegistryPath  string   `json:"registryPath,omitempty"`
	// RegistryNode is the machine the registry runs on ("" = the master).
	RegistryNode  string   `json:"registryNode,omitempty"`
	ImageArchives []string `json:"imageArchives,omitempty"`
	Force         bool     `json:"-"`
}

// SSH is how shoal reaches the machine, as last known.
type SSH struct {
	Host               string `json:"host"`
	Port               int    `json:"port"`
	User               string `json:"user"`
	KeyPath            string `json:"keyPath,omitempty"`
	UseAgent           bool   `json:"useAgent,omitempty"`
	HostKeyFingerprint string `json:"hostKeyFingerprint,omitempty"`
}

// Machine is config.json.
type Machine struct {
	Version      int             `json:"version"`
	Name         string          `json:"name"`
	Driver       string          `json:"driver"`
	DriverConfig json.RawMessage `json:"driverConfig,omitempty"`
	Hostname     string          `json:"hostname"`
	DockerUser   string          `json:"dockerUser,omitempty"`
	Address      string          `json:"address,omitempty"`
	SSH          SSH             `json:"ssh"`
	Engine       Engine          `json:"engine"`
	Swarm        *Swarm          `json:"swarm,omitempty"`
	Cluster      string          `json:"cluster,omitempty"`
	// Hosts is the block of /etc/hosts shoal keeps on the host (the
	// cluster's nodes, a swarm master).
	Hosts []HostEntry `json:"hosts,omitempty"`
	// AuthorizedKeys are added to the docker user's authorized_keys (a
	// cluster's shared key).
	AuthorizedKeys []string  `json:"authorizedKeys,omitempty"`
	Created        time.Time `json:"created"`
}

// HostEntry is a line of the managed /etc/hosts block.
type HostEntry struct {
	IP    string   `json:"ip"`
	Names []string `json:"names"`
}

// ErrNotFound is returned for a machine that is not in the store.
var ErrNotFound = errors.New("no such machine")

// Exists tells whether machine name has a config.
func (s *Store) Exists(name string) bool {
	_, err := os.Stat(filepath.Join(s.MachineDir(name), ConfigFile))
	return err == nil
}

// Load reads machine name's config.
func (s *Store) Load(name string) (*Machine, error) {
	data, err := os.ReadFile(filepath.Join(s.MachineDir(name), ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("machine %q: %w (see 'machine ls')", name, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var m Machine
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("machine %q: %s is not valid: %w", name, ConfigFile, err)
	}
	if m.Version > ConfigVersion {
		return nil, fmt.Errorf("machine %q: config version %d is newer than this shoal understands (%d)", name, m.Version, ConfigVersion)
	}
	return &m, nil
}

// Save writes m's config.json atomically, creating its folder.
func (s *Store) Save(m *Machine) error {
	m.Version = ConfigVersion
	if err := os.MkdirAll(s.MachineDir(m.Name), 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(s.MachineDir(m.Name), ConfigFile), append(data, '\n'), 0o600)
}

// List returns the names of all machines, sorted.
func (s *Store) List() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.Root, "machines"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && s.Exists(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// Remove deletes the machine's folder.
func (s *Store) Remove(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	return os.RemoveAll(s.MachineDir(name))
}

// WriteFileAtomic writes data to a temp file next to path and renames it
// over path, so a reader never sees half a file.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	// Unchanged content is not written again: a no-op run stays cheap (no
	// fsync) and a file's mtime says when it last really changed.
	if st, err := os.Stat(path); err == nil && st.Mode().Perm() == mode.Perm() && st.Size() == int64(len(data)) {
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, data) {
			return nil
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Lock takes an exclusive lock named kind/name (e.g. "machine/m1"); it waits
// until ctx ends. Locks live beside the machines so that removing a machine
// does not remove a lock someone holds.
func (s *Store) Lock(ctx context.Context, kind, name string) (unlock func(), err error) {
	dir := filepath.Join(s.Root, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, kind+"-"+name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s %s: %w", kind, name, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%s %q is locked by another shoal process: %w", kind, name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TryLock is Lock without waiting: it fails at once when the lock is held.
func (s *Store) TryLock(kind, name string) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return s.Lock(ctx, kind, name)
}
