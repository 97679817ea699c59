// Package ssh is the driver that adopts an existing host over plain SSH. It
// creates nothing, so removing the machine never harms the host.
package ssh

import (
	"github.com/shoal-dev/shoal/internal/remote"

	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/driverutil"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/spf13/pflag"
)

// Config is the driver's part of config.json and of a cluster file.
type Config struct {
	Host    string `json:"host" hcl:"host,optional"`
	Port    int    `json:"port" hcl:"port,optional"`
	User    string `json:"user" hcl:"user,optional"`
	Key     string `json:"key,omitempty" hcl:"key,optional"`
	HostKey string `json:"hostKey,omitempty" hcl:"host_key,optional"`
	// Wait bounds how long Create waits for the SSH port to answer
	// (0: DefaultWait). A flag only.
	Wait time.Duration `json:"wait,omitempty"`

	// Access (access.go): jump hosts, ssh_config, and secrets that are
	// never stored.
	ProxyJump   string `json:"proxyJump,omitempty" hcl:"proxy_jump,optional"`
	JumpHostKey string `json:"jumpHostKey,omitempty" hcl:"jump_host_key,optional"`
	SSHConfig   string `json:"sshConfig,omitempty" hcl:"ssh_config,optional"`
	// Alias is the ssh_config Host alias the host was given as.
	Alias string `json:"alias,omitempty"`
	// JumpKeys are the jump hosts' IdentityFiles from ssh_config, as a
	// path list (filepath.SplitList).
	JumpKeys     string `json:"jumpKeys,omitempty"`
	Password     string `json:"-" hcl:"password,optional"`
	SudoPassword string `json:"-" hcl:"sudo_password,optional"`
}

// DefaultWait is how long create waits for an adopted host's SSH port.
const DefaultWait = 2 * time.Minute

// Spec registers the driver as "ssh", aliased "generic" as in docker-machine.
func Spec() *drivers.Spec {
	return &drivers.Spec{
		Name:      "ssh",
		Aliases:   []string{"generic"},
		Adopts:    true,
		Short:     "adopt an existing host over SSH (creates nothing; rm never harms the host)",
		NewConfig: func() any { return &Config{Port: 22, User: "root"} },
		BindFlags: func(fs *pflag.FlagSet, cfg any) { bindFlags(fs, cfg.(*Config)) },
		Resolve:   func(cfg any, explicit func(string) bool) error { return resolve(cfg.(*Config), explicit) },
		Validate:  func(cfg any) error { return validateConfig(cfg.(*Config)) },
		New: func(m drivers.Identity, cfg any) (drivers.Driver, error) {
			return &Driver{cfg: *cfg.(*Config), known: m.Known}, nil
		},
	}
}

func bindFlags(fs *pflag.FlagSet, c *Config) {
	fs.StringVar(&c.Host, "ssh-host", c.Host, "ssh driver: address of the host to adopt")
	fs.IntVar(&c.Port, "ssh-port", c.Port, "ssh driver: SSH port")
	fs.StringVar(&c.User, "ssh-user", c.User, "ssh driver: SSH user (root, or a user with sudo; see --sudo-password-file)")
	fs.StringVar(&c.Key, "ssh-key", c.Key, "ssh driver: private key file (default: the ssh-agent at $SSH_AUTH_SOCK)")
	fs.StringVar(&c.HostKey, "ssh-host-key", c.HostKey, "ssh driver: the host key's SHA256:... fingerprint, pinned before the first contact")
	fs.DurationVar(&c.Wait, "ssh-wait", c.Wait, "ssh driver: how long create waits for the SSH port to answer (default 2m0s)")
	fs.StringVar(&c.Host, "generic-ip-address", c.Host, "alias of --ssh-host (docker-machine)")
	fs.IntVar(&c.Port, "generic-ssh-port", c.Port, "alias of --ssh-port (docker-machine)")
	fs.StringVar(&c.User, "generic-ssh-user", c.User, "alias of --ssh-user (docker-machine)")
	fs.StringVar(&c.Key, "generic-ssh-key", c.Key, "alias of --ssh-key (docker-machine)")
	bindAccessFlags(fs, c)
}

// validateConfig says every bad value at once, before anything is made.
func validateConfig(c *Config) error {
	errs := addressErrors(c)
	if c.Wait < 0 {
		errs = append(errs, fmt.Errorf("--ssh-wait %s is negative", c.Wait))
	}
	errs = append(errs, keyErrors(c)...)
	errs = append(errs, validateAccess(c)...)
	return errors.Join(errs...)
}

// addressErrors check the host, port and user.
func addressErrors(c *Config) []error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, fmt.Errorf("the ssh driver needs --ssh-host (or --generic-ip-address)"))
	} else if err := validate.Host(c.Host); err != nil {
		errs = append(errs, fmt.Errorf("--ssh-host: %w", err))
	}
	if err := validate.Port(c.Port); err != nil {
		errs = append(errs, fmt.Errorf("--ssh-port: %w", err))
	}
	if err := validate.UserName(c.User); err != nil {
		errs = append(errs, fmt.Errorf("--ssh-user: %w", err))
	}
	return errs
}

// keyErrors check the host key's fingerprint and the key file.
func keyErrors(c *Config) []error {
	var errs []error
	if c.HostKey != "" {
		if err := validate.Fingerprint(c.HostKey); err != nil {
			errs = append(errs, fmt.Errorf("--ssh-host-key: %w", err))
		}
	}
	if c.Key != "" {
		if _, err := os.Stat(ExpandHome(c.Key)); err != nil {
			errs = append(errs, fmt.Errorf("--ssh-key: %w", err))
		}
	}
	return errs
}

// ExpandHome turns a leading ~/ into the user's home.
func ExpandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// Driver adopts a host.
type Driver struct {
	cfg Config
	// known: adopted by an earlier command.
	known bool
}

func (d *Driver) Name() string { return "ssh" }

// Adopts: the host exists without shoal; removing the machine forgets it.
func (d *Driver) Adopts() bool { return true }

func (d *Driver) endpoint() drivers.Endpoint {
	key := ""
	if d.cfg.Key != "" {
		if abs, err := filepath.Abs(ExpandHome(d.cfg.Key)); err == nil {
			key = abs
		}
	}
	return drivers.Endpoint{
		Endpoint: remote.Endpoint{
			Host:               d.cfg.Host,
			Port:               d.cfg.Port,
			User:               d.cfg.User,
			KeyPath:            key,
			UseAgent:           key == "",
			HostKeyFingerprint: d.cfg.HostKey,
		},
		ProxyJump: d.cfg.ProxyJump, JumpHostKeys: d.cfg.JumpHostKey, SSHConfig: d.cfg.SSHConfig, JumpKeys: d.cfg.JumpKeys}
}

// Create checks that the host's sshd greets, for at most Wait; the SSH
// handshake comes after. A host adopted before is not greeted: the
// connection that follows at once says as much, and a greeting costs the
// host a whole sshd process (a tenth of a re-run's work on it).
func (d *Driver) Create(ctx context.Context) error {
	ep := d.endpoint()
	if ep.ProxyJump != "" || d.known {
		return nil // the SSH connection waits (only the jump host can tell, behind one)
	}
	wait := d.cfg.Wait
	if wait <= 0 {
		wait = DefaultWait
	}
	err := driverutil.WaitSSH(ctx, ep.Address(), wait)
	var we *driverutil.WaitError
	if errors.As(err, &we) && we.TimedOut {
		return fmt.Errorf("%s does not answer after %s (%v): check --ssh-host and --ssh-port and that sshd runs there; --ssh-wait waits longer", ep.Address(), wait, we.Last)
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%s does not answer: %w", ep.Address(), ctx.Err())
	}
	return err
}

func (d *Driver) Start(context.Context) error {
	return fmt.Errorf("start: %w (the ssh driver adopts a host it does not power)", drivers.ErrNotSupported)
}
func (d *Driver) Stop(context.Context) error {
	return fmt.Errorf("stop: %w (the ssh driver adopts a host it does not power)", drivers.ErrNotSupported)
}
func (d *Driver) Kill(context.Context) error {
	return fmt.Errorf("kill: %w (the ssh driver adopts a host it does not power)", drivers.ErrNotSupported)
}

// Remove forgets the host and leaves it as it is.
func (d *Driver) Remove(context.Context) error { return nil }

// State is Running when the SSH port answers.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var dialer net.Dialer
	if d.cfg.ProxyJump != "" {
		return drivers.Running, nil // behind a jump host: SSH tells
	}
	c, err := dialer.DialContext(ctx, "tcp", d.endpoint().Address())
	if err != nil {
		return drivers.Error, nil
	}
	c.Close()
	return drivers.Running, nil
}

func (d *Driver) SSH(context.Context) (drivers.Endpoint, error) { return d.endpoint(), nil }
