package machine

import (
	"cmp"
	"context"
	"fmt"
	"github.com/shoal-dev/shoal/internal/remote"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/sshconfig"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/validate"
	"golang.org/x/crypto/ssh"
)

// Secrets are the passwords given for this run (flags, environment, a
// prompt). They are never stored and only ever reach sshrun, which keeps
// them out of arguments, transcripts and errors.
type Secrets struct {
	// Password logs in once where the keys do not; the machine's key is
	// then installed for the user, and later runs need no password.
	Password []byte
	// SudoPassword is given to sudo on its standard input.
	SudoPassword []byte
}

// secretsFor returns the driver's own secrets (a cluster file's ssh block),
// else the run's.
func (m *Manager) secretsFor(mach *Machine) Secrets {
	s := m.Secrets
	if ms, ok := m.MachineSecrets[mach.Name]; ok {
		s = ms
	}
	if c, ok := mach.Driver.(drivers.Credentials); ok {
		p, sp := c.Credentials()
		if p != nil {
			s.Password = p
		}
		if sp != nil {
			s.SudoPassword = sp
		}
	}
	if m.Redactor != nil {
		m.Redactor.Add(string(s.Password))
		m.Redactor.Add(string(s.SudoPassword))
	}
	return s
}

// Close ends what the manager keeps open for the run: the connections to
// jump hosts.
func (m *Manager) Close() error {
	if m.Jumps == nil {
		return nil
	}
	return m.Jumps.Close()
}

// JumpHostsDir holds one folder per jump host with its pinned host key.
const JumpHostsDir = "jumphosts"

// jumpDialer returns the dialer through the endpoint's jump hosts, each
// pinned in the store like a machine; nil when there are none.
func (m *Manager) jumpDialer(ep drivers.Endpoint) (func(ctx context.Context, addr string) (net.Conn, error), error) {
	hops, err := jumpConfigs(ep, m.Store.Root, m.Redactor)
	if err != nil || len(hops) == 0 {
		return nil, err
	}
	if m.Jumps == nil {
		return nil, fmt.Errorf("jump hosts %s: this manager has no jump host pool (use NewManager)", ep.ProxyJump)
	}
	return m.Jumps.Dialer(hops), nil
}

// jumpConfigs turns the endpoint's ProxyJump into one sshrun.Config per
// hop: a hop that is an ssh_config alias gets its HostName, User, Port and
// IdentityFile from there (what the hop spells out wins); the user
// defaults to the local one, as with OpenSSH's -J. Keys offered: the
// agent, the hop's IdentityFile, ~/.ssh/id_{ed25519,ecdsa,rsa}, and the
// machine's own key.
func jumpConfigs(ep drivers.Endpoint, root string, red *sshrun.Redactor) ([]sshrun.Config, error) {
	hops, err := validate.ParseProxyJump(ep.ProxyJump)
	if err != nil || len(hops) == 0 {
		return nil, err
	}
	var fps []string
	if ep.JumpHostKeys != "" {
		fps = strings.Split(ep.JumpHostKeys, ",")
	}
	sc, err := sshconfig.Load(expandHome(ep.SSHConfig))
	if err != nil {
		return nil, err
	}
	local := "root"
	if u, err := user.Current(); err == nil {
		local = u.Username
	}
	home, _ := os.UserHomeDir()
	out := make([]sshrun.Config, 0, len(hops))
	for i, h := range hops {
		// What the hop spells out wins; a refused ssh_config value there
		// stops nothing.
		conf, _ := sc.Lookup(h.Host)
		if err := conf.HopRefused(h); err != nil {
			return nil, err
		}
		c := hopConfig(h, conf, local, red)
		c.ExtraKeyPaths = hopKeys(ep, conf, home)
		if i < len(fps) {
			c.HostKeyFingerprint = strings.TrimSpace(fps[i])
		}
		if c.KnownHostsPath, err = jumpKnownHosts(root, c.Host, c.Port); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// hopConfig is the hop's address and user: what the hop spells out, else
// its ssh_config's, else (the user) the local one.
func hopConfig(h validate.Hop, conf sshconfig.Host, local string, red *sshrun.Redactor) sshrun.Config {
	c := sshrun.Config{Endpoint: remote.Endpoint{Host: h.Host, Port: h.Port, User: h.User, UseAgent: os.Getenv("SSH_AUTH_SOCK") != ""}, Redactor: red}
	if conf.HostName != "" {
		c.Host = conf.HostName
	}
	c.Port = cmp.Or(c.Port, conf.Port)
	c.User = cmp.Or(c.User, conf.User)
	c.User = cmp.Or(c.User, local)
	return c
}

// hopKeys are the keys offered to a hop, in order: its IdentityFile, the
// --ssh-jump-keys, ~/.ssh's usual ones, the machine's own.
func hopKeys(ep drivers.Endpoint, conf sshconfig.Host, home string) []string {
	keys := append([]string(nil), conf.IdentityFiles...)
	keys = append(keys, filepath.SplitList(ep.JumpKeys)...)
	for _, k := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		keys = append(keys, filepath.Join(home, ".ssh", k))
	}
	if ep.KeyPath != "" {
		keys = append(keys, ep.KeyPath)
	}
	return keys
}

// jumpKnownHosts is the known_hosts file of the jump host at host:port
// (0 is 22), its folder made.
func jumpKnownHosts(root, host string, port int) (string, error) {
	port = cmp.Or(port, 22)
	dir := filepath.Join(root, JumpHostsDir, strings.ReplaceAll(host, ":", "_")+"_"+fmt.Sprint(port))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return filepath.Join(dir, store.KnownHostsFile), nil
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// authorizeMachineKey installs the machine's public key for the login user
// after a password login, so that every later connection uses the key.
func (m *Manager) authorizeMachineKey(ctx context.Context, mach *Machine, c *sshrun.Client) error {
	pub, err := os.ReadFile(filepath.Join(mach.Dir, store.PublicKeyFile))
	if err != nil {
		return fmt.Errorf("%s: the machine's public key: %w", mach.Name, err)
	}
	if err := c.AuthorizeKey(ctx, string(pub)); err != nil {
		return fmt.Errorf("%s: %w", mach.Name, err)
	}
	return nil
}

// access adds to cfg the run's secrets, the machine's own key (offered
// last: it logs in once a password login installed it) and the dialer
// through the jump hosts.
func (m *Manager) access(mach *Machine, ep drivers.Endpoint, cfg *sshrun.Config) error {
	s := m.secretsFor(mach)
	cfg.Password, cfg.SudoPassword = s.Password, s.SudoPassword
	if own := filepath.Join(mach.Dir, store.KeyFile); own != ep.KeyPath {
		cfg.ExtraKeyPaths = append(cfg.ExtraKeyPaths, own)
	}
	dial, err := m.jumpDialer(ep)
	if err != nil {
		return err
	}
	cfg.Dial = dial
	return nil
}

// newJumpKeys lists the known_hosts files of the endpoint's jump hosts that
// do not exist yet: after the connection, they hold keys pinned on first
// contact, which reportJumpKeys shows.
func (m *Manager) newJumpKeys(ep drivers.Endpoint) []string {
	hops, err := jumpConfigs(ep, m.Store.Root, nil)
	if err != nil {
		return nil
	}
	var out []string
	for _, h := range hops {
		if _, err := os.Stat(h.KnownHostsPath); err != nil {
			out = append(out, h.KnownHostsPath)
		}
	}
	return out
}

// reportJumpKeys shows the fingerprints of jump host keys pinned now, so
// that they can be checked against the jump host's console.
func (m *Manager) reportJumpKeys(mach *Machine, paths []string) {
	if m.Progress == nil {
		return
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for rest := b; len(rest) > 0; {
			_, hosts, key, _, next, err := ssh.ParseKnownHosts(rest)
			if err != nil {
				break
			}
			m.Progress.Event(mach.Name, "jump-host", ui.Info,
				fmt.Sprintf("pinned the host key of %s on first contact: %s", strings.Join(hosts, ","), sshrun.Fingerprint(key)))
			rest = next
		}
	}
}
