// Package drivertest holds what tests of drivers and of the layers above them
// share: Fake, an in-memory driver, and Conformance, the behaviour every
// driver must show.
package drivertest

import (
	"cmp"
	"github.com/shoal-dev/shoal/internal/remote"

	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/spf13/pflag"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/validate"
)

// FakeName is the name the fake driver registers under.
const FakeName = "fake"

// FakeConfig is the fake driver's configuration: where its "host" answers.
type FakeConfig struct {
	Host    string `json:"host" hcl:"host,optional"`
	Port    int    `json:"port" hcl:"port,optional"`
	User    string `json:"user" hcl:"user,optional"`
	Address string `json:"address,omitempty" hcl:"address,optional"`
}

// World is the fake drivers' hypervisor: the hosts they made, by machine
// name. Drivers made from one World see each other's hosts, as drivers made
// by successive CLI runs see the same VirtualBox.
type World struct {
	mu     sync.Mutex
	hosts  map[string]*fakeHost
	calls  []Call
	faults map[string][]error // "machine/Method" -> errors to return, in order
}

type fakeHost struct {
	state drivers.State
}

// Call is one driver method call the World saw.
type Call struct {
	Machine string
	Method  string
}

func (c Call) String() string { return c.Machine + "." + c.Method }

// NewWorld returns an empty World.
func NewWorld() *World {
	return &World{hosts: map[string]*fakeHost{}, faults: map[string][]error{}}
}

// Spec returns a driver spec ("fake") whose drivers live in w.
func (w *World) Spec() *drivers.Spec {
	return &drivers.Spec{
		Name:  FakeName,
		Short: "an in-memory driver for tests: nothing is created",
		NewConfig: func() any {
			return &FakeConfig{Host: "127.0.0.1", Port: 22, User: "fake"}
		},
		BindFlags: func(fs *pflag.FlagSet, cfg any) {
			c := cfg.(*FakeConfig)
			fs.StringVar(&c.Host, "fake-host", c.Host, "address the fake host answers SSH at")
			fs.IntVar(&c.Port, "fake-port", c.Port, "SSH port of the fake host")
			fs.StringVar(&c.User, "fake-user", c.User, "SSH user of the fake host")
			fs.StringVar(&c.Address, "fake-address", c.Address, "address other nodes reach the fake host at (default: --fake-host)")
		},
		Validate: func(cfg any) error {
			c := cfg.(*FakeConfig)
			if validate.Port(c.Port) != nil {
				return fmt.Errorf("--fake-port %d: not a TCP port", c.Port)
			}
			return nil
		},
		New: func(m drivers.Identity, cfg any) (drivers.Driver, error) {
			c, ok := cfg.(*FakeConfig)
			if !ok {
				return nil, fmt.Errorf("fake driver: config is %T, not *FakeConfig", cfg)
			}
			return w.Driver(m, *c), nil
		},
	}
}

// Driver returns a fake driver for machine m in w.
func (w *World) Driver(m drivers.Identity, cfg FakeConfig) *Fake {
	cfg.Host = cmp.Or(cfg.Host, "127.0.0.1")
	cfg.Port = cmp.Or(cfg.Port, 22)
	cfg.User = cmp.Or(cfg.User, "fake")
	return &Fake{w: w, m: m, cfg: cfg}
}

// NewFake returns a fake driver for m in a World of its own.
func NewFake(m drivers.Identity) *Fake {
	return NewWorld().Driver(m, FakeConfig{})
}

// FailNext makes the next call of method (e.g. "Create") for machine fail
// with err; several calls queue several failures.
func (w *World) FailNext(machine, method string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := machine + "/" + method
	w.faults[k] = append(w.faults[k], err)
}

// Calls returns the calls seen so far, in order.
func (w *World) Calls() []Call {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Call(nil), w.calls...)
}

// Hosts returns the names of the hosts that exist, sorted.
func (w *World) Hosts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	names := make([]string, 0, len(w.hosts))
	for n := range w.hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SetState forces a host's state, as if it changed behind the driver's back
// (a VM that crashed, a host switched off by hand). NotFound removes it.
func (w *World) SetState(machine string, s drivers.State) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s == drivers.NotFound {
		delete(w.hosts, machine)
		return
	}
	h := w.hosts[machine]
	if h == nil {
		h = &fakeHost{}
		w.hosts[machine] = h
	}
	h.state = s
}

// Fake is an in-memory driver: it keeps its host's state in its World and
// never touches the system. Useful to test the layers above drivers.
type Fake struct {
	w   *World
	m   drivers.Identity
	cfg FakeConfig
}

var (
	_ drivers.Driver    = (*Fake)(nil)
	_ drivers.Addresser = (*Fake)(nil)
)

// ErrNoHost is what the fake returns when asked about a host it never made.
var ErrNoHost = errors.New("fake: host does not exist")

// begin records the call and returns an error queued for it, or the
// context's error: every method is cancellable like a real driver's.
func (f *Fake) begin(ctx context.Context, method string) error {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.calls = append(f.w.calls, Call{Machine: f.m.Name, Method: method})
	if err := ctx.Err(); err != nil {
		return err
	}
	k := f.m.Name + "/" + method
	if q := f.w.faults[k]; len(q) > 0 {
		f.w.faults[k] = q[1:]
		return q[0]
	}
	return nil
}

// Machine returns the machine the fake works for.
func (f *Fake) Machine() drivers.Identity { return f.m }

// Name implements drivers.Driver.
func (f *Fake) Name() string { return FakeName }

// Create makes the host and leaves it running; on an existing host it only
// starts it.
func (f *Fake) Create(ctx context.Context) error {
	if err := f.begin(ctx, "Create"); err != nil {
		return err
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	h := f.w.hosts[f.m.Name]
	if h == nil {
		h = &fakeHost{}
		f.w.hosts[f.m.Name] = h
	}
	h.state = drivers.Running
	return nil
}

// Start starts the host.
func (f *Fake) Start(ctx context.Context) error {
	return f.transition(ctx, "Start", drivers.Running)
}

// Stop stops the host; a stopped host stays stopped.
func (f *Fake) Stop(ctx context.Context) error {
	return f.transition(ctx, "Stop", drivers.Stopped)
}

// Kill stops the host at once.
func (f *Fake) Kill(ctx context.Context) error {
	return f.transition(ctx, "Kill", drivers.Stopped)
}

func (f *Fake) transition(ctx context.Context, method string, to drivers.State) error {
	if err := f.begin(ctx, method); err != nil {
		return err
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	h := f.w.hosts[f.m.Name]
	if h == nil {
		return fmt.Errorf("%s %s: %w", method, f.m.Name, ErrNoHost)
	}
	h.state = to
	return nil
}

// Remove deletes the host; a missing host is not an error.
func (f *Fake) Remove(ctx context.Context) error {
	if err := f.begin(ctx, "Remove"); err != nil {
		return err
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	delete(f.w.hosts, f.m.Name)
	return nil
}

// State reports the host's state: NotFound for a host never made or removed.
func (f *Fake) State(ctx context.Context) (drivers.State, error) {
	if err := f.begin(ctx, "State"); err != nil {
		return drivers.Unknown, err
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	h := f.w.hosts[f.m.Name]
	if h == nil {
		return drivers.NotFound, nil
	}
	return h.state, nil
}

// SSH returns the configured endpoint, with the machine's key.
func (f *Fake) SSH(ctx context.Context) (drivers.Endpoint, error) {
	if err := f.begin(ctx, "SSH"); err != nil {
		return drivers.Endpoint{}, err
	}
	return drivers.Endpoint{
		Endpoint: remote.Endpoint{
			Host:    f.cfg.Host,
			Port:    f.cfg.Port,
			User:    f.cfg.User,
			KeyPath: f.m.PrivateKeyPath,
		},
	}, nil
}

// Address returns --fake-address, else the SSH host.
func (f *Fake) Address(ctx context.Context) (string, error) {
	if err := f.begin(ctx, "Address"); err != nil {
		return "", err
	}
	if f.cfg.Address != "" {
		return f.cfg.Address, nil
	}
	return f.cfg.Host, nil
}
