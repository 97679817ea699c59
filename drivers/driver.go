// Package drivers defines what a driver is: something that makes a Linux host
// exist and answer SSH. Each driver lives in its own sub-package; the set of
// drivers compiled into a binary is a Registry built by drivers/all.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/remote"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// State is what a driver can tell of its host.
type State string

const (
	Running  State = "Running"
	Stopped  State = "Stopped"
	Paused   State = "Paused"
	Starting State = "Starting"
	Stopping State = "Stopping"
	Error    State = "Error"
	// NotFound means the host the machine describes does not exist (any more).
	NotFound State = "NotFound"
	Unknown  State = "Unknown"
)

// Endpoint says how to reach a host over SSH: sshrun's endpoint, and the
// jump hosts in OpenSSH's terms, which the machine layer turns into dialers.
type Endpoint struct {
	remote.Endpoint
	// ProxyJump is OpenSSH's -J: [user@]host[:port][,...], first hop first.
	ProxyJump string `json:"proxyJump,omitempty"`
	// JumpHostKeys pins the jump hosts' keys (SHA256:..., comma separated,
	// in hop order) before the first contact.
	JumpHostKeys string `json:"jumpHostKeys,omitempty"`
	// SSHConfig is the ssh_config file jump hosts are looked up in ("" is
	// ~/.ssh/config).
	SSHConfig string `json:"sshConfig,omitempty"`
	// JumpKeys are more private keys offered to the jump hosts, as a path
	// list (filepath.SplitList).
	JumpKeys string `json:"jumpKeys,omitempty"`
}

// Driver makes one host exist and answer SSH. Every method is idempotent
// where it can be: Create on an existing host, Stop on a stopped one and
// Remove on a missing one succeed.
type Driver interface {
	Name() string
	// Create makes the host and returns when it answers SSH (or a context ends).
	Create(ctx context.Context) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Kill(ctx context.Context) error
	// Remove deletes what the driver created. Drivers that adopt a host
	// (ssh) never harm it.
	Remove(ctx context.Context) error
	State(ctx context.Context) (State, error)
	SSH(ctx context.Context) (Endpoint, error)
}

// Identity is what a driver is told of the machine it works for: its name,
// its folder in the store and its SSH keys.
type Identity struct {
	Name string
	// Dir is the machine's folder in the store (0700); drivers keep their
	// files there.
	Dir string
	// PublicKey is the machine's SSH public key (authorized_keys format),
	// for drivers that create the host and install it.
	PublicKey string
	// PrivateKeyPath is the file of the machine's private key.
	PrivateKeyPath string
	// Known: the store has the machine from an earlier command (a
	// re-run), not a machine made or adopted now.
	Known bool
}

// ErrNotSupported is returned by drivers for operations their kind of host
// does not have (e.g. Kill on an adopted host).
var ErrNotSupported = errors.New("not supported by this driver")

// Spec describes one compiled-in driver.
type Spec struct {
	Name    string
	Aliases []string
	Short   string
	// NewConfig returns a pointer to a Config with defaults set. The value
	// is marshalled into the machine's config.json as driverConfig.
	NewConfig func() any
	// BindFlags registers the driver's flags on fs, writing into cfg (a
	// value from NewConfig).
	BindFlags func(fs *pflag.FlagSet, cfg any)
	// Validate checks a config after flags were parsed; nil means no checks.
	Validate func(cfg any) error
	// New returns a driver for the machine with the given config.
	New func(m Identity, cfg any) (Driver, error)
	// Adopts says the driver adopts one host that exists without it (its
	// drivers implement Adopter): a machine of it is one host, whatever
	// count a cluster file asks for, and its settings name that host.
	Adopts bool
	// Resolve, when set, completes a config from outside sources (the
	// ssh driver: ~/.ssh/config) before Validate; explicit tells which
	// settings the user gave (HCL attribute names), which always win.
	Resolve func(cfg any, explicit func(name string) bool) error
}

// Credentials is implemented by drivers that were given login secrets for
// this run only (a cluster file's ssh { password, sudo_password }); they
// are never stored.
type Credentials interface {
	Credentials() (password, sudoPassword []byte)
}

// Registry is the set of compiled-in drivers, by name and alias.
type Registry struct {
	specs map[string]*Spec
	names []string
}

// NewRegistry returns a registry holding the given drivers.
func NewRegistry(specs ...*Spec) *Registry {
	r := &Registry{specs: map[string]*Spec{}}
	for _, s := range specs {
		r.specs[s.Name] = s
		r.names = append(r.names, s.Name)
		for _, a := range s.Aliases {
			r.specs[a] = s
		}
	}
	sort.Strings(r.names)
	return r
}

// Get returns the driver called name (or aliased so).
func (r *Registry) Get(name string) (*Spec, error) {
	if s, ok := r.specs[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("unknown driver %q (compiled in: %s)", name, strings.Join(r.names, ", "))
}

// Names lists the canonical driver names.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// All returns every driver spec once, sorted by name.
func (r *Registry) All() []*Spec {
	out := make([]*Spec, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, r.specs[n])
	}
	return out
}

// Addresser is implemented by drivers whose host is reached by other nodes
// at another address than the SSH endpoint (e.g. VirtualBox: SSH goes through
// a NAT port forward, the cluster uses the host-only address).
type Addresser interface {
	Address(ctx context.Context) (string, error)
}

// Address returns the address other nodes and the user reach d's host at.
func Address(ctx context.Context, d Driver) (string, error) {
	if a, ok := d.(Addresser); ok {
		return a.Address(ctx)
	}
	ep, err := d.SSH(ctx)
	if err != nil {
		return "", err
	}
	return ep.Host, nil
}

// Adopter is implemented by drivers that adopt a host that exists without
// them (ssh): removing such a machine forgets it and leaves the host as it is.
type Adopter interface {
	Adopts() bool
}

// Adopts tells whether d adopts its host rather than making it.
func Adopts(d Driver) bool {
	a, ok := d.(Adopter)
	return ok && a.Adopts()
}
