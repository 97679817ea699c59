// Package machine runs the flow for one host: the driver makes it answer
// SSH, provision makes it a Docker node, bootstrap puts it in a swarm. The
// machine command and the cluster converge loop both stand on it.
package machine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/provision"
)

// Manager works on the machines of one store.
type Manager struct {
	Store    *store.Store
	Drivers  *drivers.Registry
	Progress ui.Progress
	// Redactor removes secrets (join tokens) from errors and transcripts.
	Redactor *sshrun.Redactor
	// ConnectTimeout bounds the wait for a host's SSH.
	ConnectTimeout time.Duration
	// ReadOnly makes the manager write nothing while it looks: no host key
	// pinned, no CA or certificate made (cluster plan).
	ReadOnly bool
	// Secrets are the run's passwords (access.go); Jumps its jump host
	// connections, shared by the machines behind them (Close ends them).
	Secrets Secrets
	Jumps   *sshrun.JumpPool
	// MachineSecrets are per machine (a cluster file's ssh blocks); set
	// before the run, read only during it.
	MachineSecrets map[string]Secrets
	// Keep, when set, keeps machines' SSH connections between runs
	// (sshrun's keeper).
	Keep *sshrun.Keep
	// AcceptNewHostKey names the machines whose host at a new address
	// (one its key was never pinned at) the user takes as the machine's
	// new host: its key replaces the old pins (sshrun.Config.AcceptNewHost).
	// NewHostStep, when set, is the command that does so for a machine, as
	// the refusal of such a host says it.
	AcceptNewHostKey map[string]bool
	NewHostStep      func(machine string) string
	// OpenEngine, when set, is a machine's engine in place of its Engine
	// API over SSH: simulated hosts answer with an in-memory swarm
	// (test/simhost, benchmarks at a scale no lab reaches).
	OpenEngine func(m *Machine) bootstrap.Engine

	caMu sync.Mutex
	// turns serialise, per swarm ID, the holders of a swarm's lock within
	// this process (swarmTurn).
	turnsMu sync.Mutex
	turns   map[string]chan struct{}
}

// NewManager returns a manager with quiet progress.
func NewManager(st *store.Store, reg *drivers.Registry) *Manager {
	return &Manager{Store: st, Drivers: reg, Progress: ui.NewProgress(io.Discard, ui.ModeQuiet), Redactor: &sshrun.Redactor{}, ConnectTimeout: 3 * time.Minute, Jumps: sshrun.NewJumpPool()}
}

// Machine is a stored machine with its driver.
type Machine struct {
	*store.Machine
	Driver drivers.Driver
	Dir    string
	// JustCreated is set by EnsureHost when it made the host in this run.
	JustCreated bool
	// openEngine is the Manager's OpenEngine.
	openEngine func(m *Machine) bootstrap.Engine
}

// Node opens the machine's engine through r (its SSH connection): the one
// way shoal reaches a machine's engine.
func (m *Machine) Node(r bootstrap.Runner) (*bootstrap.Node, error) {
	if m.openEngine != nil {
		return &bootstrap.Node{Name: m.Name, Hostname: m.Hostname, Addr: m.Address, R: r, API: m.openEngine(m)}, nil
	}
	return bootstrap.Open(m.Name, m.Hostname, m.Address, r)
}

// Load reads machine name and its driver.
func (m *Manager) Load(name string) (*Machine, error) {
	cfg, err := m.Store.Load(name)
	if errors.Is(err, store.ErrNotFound) {
		// docker-machine's wording: scripts grep for it.
		return nil, fmt.Errorf("Docker machine %q does not exist (%w). Use \"machine ls\" to list machines. Use \"machine create\" to add a new one", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	spec, err := m.Drivers.Get(cfg.Driver)
	if err != nil {
		return nil, fmt.Errorf("machine %q: %w", name, err)
	}
	dcfg := spec.NewConfig()
	if len(cfg.DriverConfig) > 0 {
		if err := json.Unmarshal(cfg.DriverConfig, dcfg); err != nil {
			return nil, fmt.Errorf("machine %q: driverConfig: %w", name, err)
		}
	}
	dir := m.Store.MachineDir(name)
	d, err := spec.New(m.driverMachine(name), dcfg)
	if err != nil {
		return nil, err
	}
	return &Machine{Machine: cfg, Driver: d, Dir: dir, openEngine: m.OpenEngine}, nil
}

func (m *Manager) driverMachine(name string) drivers.Identity {
	dir := m.Store.MachineDir(name)
	pub, _ := os.ReadFile(filepath.Join(dir, store.PublicKeyFile))
	return drivers.Identity{Name: name, Dir: dir, PublicKey: strings.TrimSpace(string(pub)), PrivateKeyPath: filepath.Join(dir, store.KeyFile)}
}

// ensureKey makes the machine's SSH key pair once.
func (m *Manager) ensureKey(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, store.KeyFile)); err == nil {
		return nil
	}
	priv, pub, err := sshrun.GenerateKey()
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, store.PublicKeyFile), []byte(pub+"\n"), 0o644); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, store.KeyFile), priv, 0o600)
}

// CreateOptions is what `machine create` was asked.
type CreateOptions struct {
	Name         string
	Driver       string
	DriverConfig any
	// Setup is what the host is made into, kept in config.json as given
	// (an empty Hostname is the machine's name).
	store.Setup
	// KeepHosts keeps a stored machine's /etc/hosts block when Setup has
	// none: its caller sets it later (cluster up, once every address is
	// known), and a run that changes nothing then rewrites no config.
	KeepHosts bool
}

// Create makes (or adopts) the host, provisions it and, when asked, puts it
// in a swarm. On an existing machine it converges it to opts.
func (m *Manager) Create(ctx context.Context, opts CreateOptions) (*Machine, error) {
	mach, unlock, err := m.EnsureHostLocked(ctx, opts)
	if err != nil {
		return mach, err
	}
	defer unlock()
	err = m.provision(ctx, mach)
	var unreachable *unreachableError
	if mach.JustCreated && errors.As(err, &unreachable) {
		// Never usable: nothing of it is kept.
		return nil, m.discard(ctx, mach.Name, mach.Driver, err)
	}
	return mach, err
}

// unreachableError is a failure to reach a host over SSH at all.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// discardTimeout bounds the removal of a host whose create failed.
const discardTimeout = 3 * time.Minute

// discard removes a new machine whose create failed before it was usable:
// what the driver made (an adopted host is only forgotten), then its folder.
// It runs even when ctx was cancelled (Ctrl-C), for a bounded time. When the
// driver cannot remove its host, the machine stays for 'machine rm -f'.
func (m *Manager) discard(ctx context.Context, name string, d drivers.Driver, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discardTimeout)
	defer cancel()
	if err := d.Remove(ctx); err != nil {
		// A driver that cannot even tell the state (VirtualBox or libvirt
		// missing) made nothing.
		if st, serr := d.State(ctx); serr == nil && st != drivers.NotFound {
			m.Progress.Event(name, "remove", ui.Failed, err.Error())
			return fmt.Errorf("%w\nThe host made for %s could not be removed (%v): remove it with 'machine rm -f %s'", cause, name, err, name)
		}
	}
	if err := m.Store.Remove(name); err != nil {
		return fmt.Errorf("%w (and %s could not be forgotten: %v)", cause, name, err)
	}
	m.Progress.Event(name, "remove", ui.Changed, "the failed create left nothing")
	return cause
}

// EnsureHost saves the machine and has its driver make (or start) the host
// until it answers SSH; it records the host's address. It does not
// provision.
func (m *Manager) EnsureHost(ctx context.Context, opts CreateOptions) (*Machine, error) {
	mach, unlock, err := m.EnsureHostLocked(ctx, opts)
	if unlock != nil {
		unlock()
	}
	return mach, err
}

// EnsureHostLocked is EnsureHost that keeps the machine's lock when it
// succeeds, so that no other command works on the machine before the caller
// is done with it (and calls unlock).
func (m *Manager) EnsureHostLocked(ctx context.Context, opts CreateOptions) (mach *Machine, unlock func(), err error) {
	if err := store.ValidateName(opts.Name); err != nil {
		return nil, nil, err
	}
	// Nothing is saved or made from a value that may not reach a host.
	if err := opts.Validate(); err != nil {
		return nil, nil, err
	}
	spec, err := m.Drivers.Get(opts.Driver)
	if err != nil {
		return nil, nil, err
	}
	if spec.Validate != nil {
		if err := spec.Validate(opts.DriverConfig); err != nil {
			return nil, nil, err
		}
	}
	unlock, err = m.Store.Lock(ctx, "machine", opts.Name)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			unlock()
			unlock = nil
		}
	}()
	mach, err = m.ensureHost(ctx, spec, opts)
	return mach, unlock, err
}

func (m *Manager) ensureHost(ctx context.Context, spec *drivers.Spec, opts CreateOptions) (*Machine, error) {
	old, err := m.sameDriverMachine(opts.Name, spec.Name)
	if err != nil {
		return nil, err
	}
	existed := old != nil
	dir := m.Store.MachineDir(opts.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := m.ensureKey(dir); err != nil {
		return nil, err
	}
	cfg, err := newMachineRecord(spec, opts, old)
	if err != nil {
		return nil, err
	}
	id := m.driverMachine(opts.Name)
	id.Known = existed
	d, err := spec.New(id, opts.DriverConfig)
	if err != nil {
		return nil, err
	}
	mach := &Machine{Machine: cfg, Driver: d, Dir: dir, openEngine: m.OpenEngine}
	// A new machine is saved before the driver runs so that a half-made
	// host can be removed with 'machine rm'. An existing one is saved once
	// the driver said its address (saving it before too wrote config.json
	// twice when nothing changed: the record lacks what only the host
	// tells until then).
	if !existed {
		if err := m.Store.Save(cfg); err != nil {
			return nil, err
		}
	}
	return m.createHost(ctx, spec, mach, old)
}

// sameDriverMachine loads the machine name if it exists (nil if not),
// refusing one made by another driver.
func (m *Manager) sameDriverMachine(name, driver string) (*store.Machine, error) {
	if !m.Store.Exists(name) {
		return nil, nil
	}
	old, err := m.Store.Load(name)
	if err != nil {
		return nil, err
	}
	if old.Driver != driver {
		return nil, fmt.Errorf("machine %q exists with driver %s; remove it first ('machine rm %s')", name, old.Driver, name)
	}
	return old, nil
}

// newMachineRecord is the machine's record before its driver runs; what
// only the host can tell stays as last seen (old, if any).
func newMachineRecord(spec *drivers.Spec, opts CreateOptions, old *store.Machine) (*store.Machine, error) {
	raw, err := json.Marshal(opts.DriverConfig)
	if err != nil {
		return nil, err
	}
	cfg := &store.Machine{Name: opts.Name, Driver: spec.Name, DriverConfig: raw, Setup: opts.Setup, Created: time.Now().UTC()}
	cfg.Hostname = cmp.Or(cfg.Hostname, opts.Name)
	if old != nil {
		cfg.Created, cfg.Address, cfg.SSH, cfg.Daemon = old.Created, old.Address, old.SSH, old.Daemon
		if opts.KeepHosts && cfg.Hosts == nil {
			cfg.Hosts = old.Hosts
		}
	}
	return cfg, nil
}

// createHost runs the driver's Create and records the host's address; a
// machine made just now (old is nil: none was stored) that fails is
// discarded.
func (m *Manager) createHost(ctx context.Context, spec *drivers.Spec, mach *Machine, old *store.Machine) (*Machine, error) {
	name, d, existed := mach.Name, mach.Driver, old != nil
	m.Progress.Event(name, "create", ui.Started, spec.Name)
	if err := d.Create(ctx); err != nil {
		m.Progress.Event(name, "create", ui.Failed, err.Error())
		err = fmt.Errorf("%s: create (%s driver): %w", name, spec.Name, err)
		if !existed {
			return nil, m.discard(ctx, name, d, err)
		}
		return nil, err
	}
	if _, err := m.readAddress(ctx, mach); err != nil {
		if !existed {
			return nil, m.discard(ctx, name, d, err)
		}
		return mach, err
	}
	if old == nil || !sameRecord(old, mach.Machine) {
		if err := m.Store.Save(mach.Machine); err != nil {
			return mach, err
		}
	}
	mach.JustCreated = !existed
	m.Progress.Event(name, "create", status(!existed), mach.Address)
	return mach, nil
}

// sameRecord tells whether a and b make the same config.json, without
// writing out their host lists (at 1,000 nodes 80 KB each; its other
// fields are small).
func sameRecord(a, b *store.Machine) bool {
	if !slices.EqualFunc(a.Hosts, b.Hosts, func(x, y store.HostEntry) bool { return x.IP == y.IP && slices.Equal(x.Names, y.Names) }) {
		return false
	}
	ca, cb := *a, *b
	ca.Hosts, cb.Hosts = nil, nil
	ca.Version, cb.Version = store.ConfigVersion, store.ConfigVersion
	ja, erra := json.Marshal(&ca)
	jb, errb := json.Marshal(&cb)
	return erra == nil && errb == nil && bytes.Equal(ja, jb)
}

// refreshAddress records the host's address and SSH endpoint as the driver
// sees them now.
func (m *Manager) refreshAddress(ctx context.Context, mach *Machine) error {
	changed, err := m.readAddress(ctx, mach)
	if err != nil || !changed {
		return err
	}
	return m.Store.Save(mach.Machine)
}

// readAddress sets the host's address and SSH endpoint as the driver sees
// them now, and says whether they changed.
func (m *Manager) readAddress(ctx context.Context, mach *Machine) (changed bool, err error) {
	addr, err := drivers.Address(ctx, mach.Driver)
	if err != nil {
		return false, fmt.Errorf("%s: address: %w", mach.Name, err)
	}
	// A host given by name (the ssh driver's host = "localhost") is
	// recorded by address: /etc/hosts, certificates and the swarm want one.
	if addr, err = resolveAddress(ctx, net.DefaultResolver.LookupIPAddr, addr); err != nil {
		return false, fmt.Errorf("%s: address: %w", mach.Name, err)
	}
	ep, err := mach.Driver.SSH(ctx)
	if err != nil {
		return false, fmt.Errorf("%s: %w", mach.Name, err)
	}
	was := *mach.Machine
	mach.Address = addr
	// The fingerprint on record is the key pinned at the last verified
	// connection; only ProvisionWith, after one, may change it.
	fp := mach.SSH.HostKeyFingerprint
	fp = cmp.Or(fp, ep.HostKeyFingerprint)
	mach.SSH = ep.Endpoint
	mach.SSH.HostKeyFingerprint = fp
	mach.DockerUser = cmp.Or(mach.DockerUser, ep.User)
	return mach.Address != was.Address || mach.SSH != was.SSH || mach.DockerUser != was.DockerUser, nil
}

// Connect opens the one SSH connection to the machine.
func (m *Manager) Connect(ctx context.Context, mach *Machine, transcript io.Writer) (*sshrun.Client, error) {
	return m.ConnectWith(ctx, mach, transcript, nil)
}

// ConnectWith is Connect with the configuration changed by tweak (the
// ssh options of 'machine ssh': -i, -p, ConnectTimeout) before dialling.
func (m *Manager) ConnectWith(ctx context.Context, mach *Machine, transcript io.Writer, tweak func(*sshrun.Config)) (*sshrun.Client, error) {
	ep, err := mach.Driver.SSH(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mach.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.ConnectTimeout)
	defer cancel()
	cfg, err := m.sshConfig(mach, ep, transcript, tweak)
	if err != nil {
		return nil, err
	}
	fresh := m.newJumpKeys(ep)
	c, err := sshrun.Dial(ctx, cfg)
	if err != nil {
		var hke *sshrun.HostKeyError
		if errors.As(err, &hke) && hke.NewHost && m.NewHostStep != nil {
			hke.Remedy = m.NewHostStep(mach.Name)
		}
		return nil, fmt.Errorf("%s: ssh: %w", mach.Name, err)
	}
	m.reportJumpKeys(mach, fresh)
	if c.PasswordUsed() {
		if err := m.authorizeMachineKey(ctx, mach, c); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// sshConfig is the machine's SSH configuration: its endpoint, pinned host
// keys, the run's secrets and jump hosts, changed by tweak.
func (m *Manager) sshConfig(mach *Machine, ep drivers.Endpoint, transcript io.Writer, tweak func(*sshrun.Config)) (sshrun.Config, error) {
	cfg := sshrun.Config{
		Endpoint:       ep.Endpoint,
		KnownHostsPath: filepath.Join(mach.Dir, store.KnownHostsFile),
		NoPin:          m.ReadOnly,
		Transcript:     provision.NewTranscript(transcript), // the files the probe reads stay out
		Redactor:       m.Redactor,
		Keep:           m.Keep,
	}
	if err := m.access(mach, ep, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: ssh: %w", mach.Name, err)
	}
	if m.AcceptNewHostKey[mach.Name] {
		// The keeper dials with the pins as they are: this one connection
		// is made here, and later ones find the new pin.
		cfg.AcceptNewHost, cfg.Keep = true, nil
	}
	if tweak != nil {
		cfg.Keep = nil // a connection of its own, as asked
		tweak(&cfg)
	}
	return cfg, nil
}
