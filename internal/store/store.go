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
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/remote"
	"github.com/shoal-dev/shoal/internal/validate"
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
	// LockWait bounds how long Lock waits for a lock another process holds
	// when the context has no earlier deadline (0: DefaultLockWait).
	LockWait time.Duration
	// shared holds the configs LoadShared parsed.
	shared sharedConfigs
}

// DefaultLockWait is how long a command waits for a machine or cluster that
// another shoal process is working on before it gives up.
const DefaultLockWait = 10 * time.Minute

// DefaultRoot is --storage-path's default: $SHOAL_STORAGE_PATH, else
// ~/.machine. docker-machine's $MACHINE_STORAGE_PATH is not read: it names
// docker-machine's store (machine import's source).
func DefaultRoot() string {
	if p := os.Getenv(StorageEnv); p != "" {
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
	if err := checkNotDockerMachine(abs); err != nil {
		return nil, err
	}
	for _, d := range []string{abs, filepath.Join(abs, "machines"), filepath.Join(abs, "certs"), filepath.Join(abs, "clusters")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	return &Store{Root: abs}, nil
}

// Open opens the store at root as it is and creates nothing, not even its
// folders: for commands that only read (cluster plan).
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := checkNotDockerMachine(abs); err != nil {
		return nil, err
	}
	return &Store{Root: abs}, nil
}

// ErrInvalidName is wrapped by every error about a machine or cluster name
// that cannot be one (the commands exit with status 2 for it).
var ErrInvalidName = errors.New("invalid name")

// ValidateName checks a machine or cluster name: it becomes a hostname and a
// folder, so it must never hold a path separator or be "." or "..".
func ValidateName(name string) error {
	if validate.StoredName(name) != nil {
		return fmt.Errorf("%w %q: use letters, digits, '-' and '.', starting with a letter or digit, at most 63 characters", ErrInvalidName, name)
	}
	return nil
}

// mustName guards the path builders: every entry point of the store checks
// the name first and returns an error, so an invalid name here is a bug in
// the caller, and no path outside the store is ever built from it.
func mustName(name string) string {
	if err := ValidateName(name); err != nil {
		panic("store: path built from an unchecked name: " + err.Error())
	}
	return name
}

// MachineDir is the folder of machine name, which must be valid
// (ValidateName): it panics rather than build a path outside the store.
func (s *Store) MachineDir(name string) string {
	return filepath.Join(s.Root, "machines", mustName(name))
}

// CertsDir holds the CA and the client certificate.
func (s *Store) CertsDir() string { return filepath.Join(s.Root, "certs") }

// ClusterDir is the folder of cluster name, which must be valid
// (ValidateName): it panics rather than build a path outside the store.
func (s *Store) ClusterDir(name string) string {
	return filepath.Join(s.Root, "clusters", mustName(name))
}

// The files of a cluster's folder.
const (
	ClusterStateFile = "state.json" // what the cluster is, as last made
	UnlockKeyFile    = "unlock-key" // the swarm's unlock key (a secret, 0600)
	RollFile         = "roll.json"  // the nodes a roll drained, until made so again
)

// Cluster is a cluster's folder in the store: the one place that says
// where each of its files is.
type Cluster struct{ Dir string }

// Cluster is the folder of cluster name, which must be valid (ValidateName):
// it panics rather than build a path outside the store.
func (s *Store) Cluster(name string) Cluster { return Cluster{Dir: s.ClusterDir(name)} }

// StatePath is the cluster's state.json.
func (c Cluster) StatePath() string { return filepath.Join(c.Dir, ClusterStateFile) }

// UnlockKeyPath is the file of the swarm's unlock key.
func (c Cluster) UnlockKeyPath() string { return filepath.Join(c.Dir, UnlockKeyFile) }

// RollPath is the journal of a roll's drained nodes.
func (c Cluster) RollPath() string { return filepath.Join(c.Dir, RollFile) }

// KeyPath is the cluster's SSH private key; its public key is KeyPath()+".pub".
func (c Cluster) KeyPath() string { return filepath.Join(c.Dir, KeyFile) }

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
	// Opts are daemon.json keys k=v (--engine-opt), StorageDriver its
	// storage-driver, Env dockerd's environment K=V, TLSSANs extra names
	// or addresses in the server certificate.
	Opts          []string `json:"opts,omitempty"`
	StorageDriver string   `json:"storageDriver,omitempty"`
	Env           []string `json:"env,omitempty"`
	TLSSANs       []string `json:"tlsSANs,omitempty"`
	// CertDir holds the client certificates (ca.pem, cert.pem, key.pem)
	// of an engine whose TLS shoal did not set up: a machine imported from
	// docker-machine keeps its set-up until 'machine regenerate-certs'.
	CertDir string `json:"certDir,omitempty"`
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
	// DataPathPort is the swarm's VXLAN port when not 4789 (a cluster's
	// data_path_port): the firewall lets it in.
	DataPathPort int `json:"dataPathPort,omitempty"`
	// ClusterID is the swarm's ID as last seen.
	ClusterID string `json:"clusterID,omitempty"`
	Force     bool   `json:"-"`
}

// Setup is what a machine is to be made into: what shoal was asked for, as
// opposed to what it saw of the host (Address, SSH). A command's options, the
// cluster's converger and config.json all carry this one value.
type Setup struct {
	Hostname   string `json:"hostname"`
	DockerUser string `json:"dockerUser,omitempty"`
	Engine     Engine `json:"engine"`
	Swarm      *Swarm `json:"swarm,omitempty"`
	Cluster    string `json:"cluster,omitempty"`
	// Hosts is the block of /etc/hosts shoal keeps on the host (the
	// cluster's nodes, a swarm master).
	Hosts []HostEntry `json:"hosts,omitempty"`
	// AuthorizedKeys are added to the docker user's authorized_keys (a
	// cluster's shared key).
	AuthorizedKeys []string `json:"authorizedKeys,omitempty"`
}

// Machine is config.json: the machine's setup and what was last seen of its
// host. The embedded Setup's keys sit at the top level of the file.
type Machine struct {
	Version      int             `json:"version"`
	Name         string          `json:"name"`
	Driver       string          `json:"driver"`
	DriverConfig json.RawMessage `json:"driverConfig,omitempty"`
	Setup
	Address string `json:"address,omitempty"`
	// SSH is how shoal reaches the machine, as last known.
	SSH     remote.Endpoint `json:"ssh"`
	Created time.Time       `json:"created"`
	// Daemon is the host's dockerd as the last provisioning left it.
	Daemon *Daemon `json:"daemon,omitempty"`
}

// Daemon names a running dockerd (the host's boot, the process's pid and
// start time) and the version it answered: while that process runs, the
// next facts probe need not ask it (provision.RunningDaemon).
type Daemon struct {
	Boot    string `json:"boot"`
	PID     int    `json:"pid"`
	Start   string `json:"start"`
	Version string `json:"version"`
}

// HostEntry is a line of the managed /etc/hosts block.
type HostEntry struct {
	IP    string   `json:"ip"`
	Names []string `json:"names"`
}

// ErrNotFound is returned for a machine that is not in the store.
var ErrNotFound = errors.New("no such machine")

// Exists tells whether machine name has a config; an invalid name never has.
func (s *Store) Exists(name string) bool {
	if ValidateName(name) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.MachineDir(name), ConfigFile))
	return err == nil
}

// Load reads machine name's config: a value of the caller's own, to change
// and Save.
func (s *Store) Load(name string) (*Machine, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	m, _, err := s.load(name)
	return m, err
}

// Save writes m's config.json atomically, creating its folder.
func (s *Store) Save(m *Machine) error {
	if err := ValidateName(m.Name); err != nil {
		return err
	}
	m.Version = ConfigVersion
	if err := os.MkdirAll(s.MachineDir(m.Name), 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(s.MachineDir(m.Name), ConfigFile), append(data, '\n'), 0o600)
}

// List returns the names of all machines, sorted.
func (s *Store) List() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.Root, "machines"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a store opened read-only that was never written
	}
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

var validLockKind = regexp.MustCompile(`^[a-z]+$`)

// Lock takes an exclusive lock named kind/name (e.g. "machine/m1"); it waits
// until ctx ends, at most LockWait. Locks live beside the machines so that
// removing a machine does not remove a lock someone holds. They are flock(2)
// locks on a file opened per call, so they exclude goroutines of one process
// as well as other processes, and die with the process that held them.
func (s *Store) Lock(ctx context.Context, kind, name string) (unlock func(), err error) {
	if !validLockKind.MatchString(kind) {
		return nil, fmt.Errorf("lock: invalid kind %q", kind)
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return s.lockFile(ctx, kind+"-"+name+".lock", fmt.Sprintf("%s %q", kind, name))
}

// LockCA takes the lock of the store's CA: creating it is one step for all
// goroutines and processes (see Lock).
func (s *Store) LockCA(ctx context.Context) (unlock func(), err error) {
	return s.lockFile(ctx, "certs-ca.lock", "the CA")
}

func (s *Store) lockFile(ctx context.Context, file, what string) (unlock func(), err error) {
	dir := filepath.Join(s.Root, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.lockWait())
	defer cancel()
	path := filepath.Join(dir, file)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		locked, err := tryFlock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", what, err)
		}
		if locked {
			markHolder(f)
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			by := lockHolder(path)
			f.Close()
			return nil, fmt.Errorf("%s is locked by %s; try again when it is done: %w", what, by, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lockWait is how long a lock is waited for: LockWait, or the default.
func (s *Store) lockWait() time.Duration {
	if s.LockWait <= 0 {
		return DefaultLockWait
	}
	return s.LockWait
}

// markHolder writes who holds the lock f, for the error of the next one
// who waits.
func markHolder(f *os.File) {
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(holder()), 0)
	}
}

// tryFlock takes f's lock if it is free: false, with no error, when
// another holds it.
func tryFlock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// lockHolder is who the lock file at path says holds it.
func lockHolder(path string) string {
	if b, err := os.ReadFile(path); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b))
	}
	return "another shoal process"
}

// holder describes this process for a lock file: its pid and program, not
// its arguments (they are no one else's business).
func holder() string {
	prog := "shoal"
	if len(os.Args) > 0 {
		prog = filepath.Base(os.Args[0])
	}
	return fmt.Sprintf("pid %d (%s)\n", os.Getpid(), prog)
}

// TryLock is Lock without waiting: it fails at once when the lock is held.
func (s *Store) TryLock(kind, name string) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return s.Lock(ctx, kind, name)
}
