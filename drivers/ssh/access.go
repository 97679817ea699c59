package ssh

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/internal/sshconfig"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/spf13/pflag"
)

func bindAccessFlags(fs *pflag.FlagSet, c *Config) {
	fs.StringVar(&c.ProxyJump, "ssh-proxy-jump", c.ProxyJump, "ssh driver: reach the host through jump hosts, OpenSSH's -J: [user@]host[:port][,...]")
	fs.StringVar(&c.JumpHostKey, "ssh-jump-host-key", c.JumpHostKey, "ssh driver: the jump hosts' SHA256:... host key fingerprints (comma separated, in hop order), pinned before the first contact")
	fs.StringVar(&c.SSHConfig, "ssh-config", c.SSHConfig, "ssh driver: the ssh_config file a Host alias is looked up in (default ~/.ssh/config)")
}

// validateAccess checks the jump hosts, their pinned keys and the
// ssh_config file.
func validateAccess(c *Config) []error {
	var errs []error
	hops, err := validate.ParseProxyJump(c.ProxyJump)
	if err != nil {
		errs = append(errs, fmt.Errorf("--ssh-proxy-jump: %w", err))
	}
	if c.JumpHostKey != "" {
		errs = append(errs, jumpKeyErrors(c.JumpHostKey, len(hops), err == nil)...)
	}
	if c.SSHConfig != "" {
		if _, err := sshconfig.Load(ExpandHome(c.SSHConfig)); err != nil {
			errs = append(errs, fmt.Errorf("--ssh-config: %w", err))
		}
	}
	if strings.ContainsAny(c.Password, "\x00") || strings.ContainsAny(c.SudoPassword, "\x00\n") {
		errs = append(errs, fmt.Errorf("a password may not hold a NUL byte, nor sudo's a newline"))
	}
	return errs
}

// jumpKeyErrors check --ssh-jump-host-key's fingerprints, and (when the
// jump hosts parsed: hopsOK) that there are no more than hops.
func jumpKeyErrors(keys string, hops int, hopsOK bool) []error {
	var errs []error
	fps := strings.Split(keys, ",")
	for _, fp := range fps {
		if err := validate.Fingerprint(strings.TrimSpace(fp)); err != nil {
			errs = append(errs, fmt.Errorf("--ssh-jump-host-key: %w", err))
		}
	}
	if hopsOK && len(fps) > hops {
		errs = append(errs, fmt.Errorf("--ssh-jump-host-key: %d fingerprints for %d jump hosts", len(fps), hops))
	}
	return errs
}

// resolve completes the config from ssh_config when the host is one of its
// aliases: HostName, User, Port, IdentityFile and ProxyJump, each only
// where the user gave nothing. It runs once: the resolved host is stored.
func resolve(c *Config, explicit func(string) bool) error {
	if c.Host == "" {
		return nil
	}
	sc, err := sshconfig.Load(ExpandHome(c.SSHConfig))
	if err != nil {
		return err
	}
	// Said once, here: what of ssh_config is skipped (a Match shoal cannot
	// evaluate) does not stop a host given by flags.
	for _, w := range sc.Warnings() {
		fmt.Fprintf(os.Stderr, "warning: ssh config: %s\n", w)
	}
	if c.Alias == "" {
		if err := resolveHost(c, sc, explicit); err != nil {
			return err
		}
	}
	return resolveJumps(c, sc)
}

// resolveJumps writes each jump host as [user@]host:port with what
// ssh_config says of it, and keeps its IdentityFiles, so that later
// commands reach the host without reading ssh_config again.
func resolveJumps(c *Config, sc *sshconfig.Config) error {
	hops, err := validate.ParseProxyJump(c.ProxyJump)
	if err != nil || len(hops) == 0 {
		return nil // Validate says what is wrong
	}
	var parts []string
	for _, h := range hops {
		conf, _ := sc.Lookup(h.Host)
		if err := conf.HopRefused(h); err != nil {
			return err
		}
		h = resolveHop(h, conf)
		c.JumpKeys = addJumpKeys(c.JumpKeys, conf.IdentityFiles)
		parts = append(parts, h.String()+portSuffix(h))
	}
	c.ProxyJump = strings.Join(parts, ",")
	return nil
}

// resolveHop fills in the hop's host, port (22 at least) and user from
// its ssh_config, where the hop does not spell them out.
func resolveHop(h validate.Hop, conf sshconfig.Host) validate.Hop {
	if conf.HostName != "" {
		h.Host = conf.HostName
	}
	h.Port = cmp.Or(h.Port, conf.Port)
	h.Port = cmp.Or(h.Port, 22)
	h.User = cmp.Or(h.User, conf.User)
	return h
}

// addJumpKeys adds to the list of jump keys the files that exist and are
// not in it yet.
func addJumpKeys(list string, files []string) string {
	keys := filepath.SplitList(list)
	for _, f := range files {
		if fileExists(f) && !slices.Contains(keys, f) {
			keys = append(keys, f)
		}
	}
	return strings.Join(keys, string(filepath.ListSeparator))
}

// portSuffix spells out port 22, which Hop.String leaves out.
func portSuffix(h validate.Hop) string {
	if h.Port == 22 {
		return ":22"
	}
	return ""
}

func resolveHost(c *Config, sc *sshconfig.Config, explicit func(string) bool) error {
	h, _ := sc.Lookup(c.Host)
	// A value refused in ssh_config stops nothing a flag sets instead.
	if err := h.Refused(givenKeys(explicit)...); err != nil {
		return err
	}
	if h.Found() {
		c.takeHost(h, explicit)
	}
	return nil
}

// givenKeys are the ssh_config keys whose flag was given.
func givenKeys(explicit func(string) bool) []string {
	var given []string
	for flag, key := range map[string]string{"user": "User", "port": "Port", "proxy_jump": "ProxyJump"} {
		if explicit(flag) {
			given = append(given, key)
		}
	}
	return given
}

// takeHost takes what ssh_config says of the host where no flag says
// otherwise: the HostName (the alias kept), user, port, jump hosts and
// the first IdentityFile that exists.
func (c *Config) takeHost(h sshconfig.Host, explicit func(string) bool) {
	if h.HostName != "" {
		c.Alias, c.Host = c.Host, h.HostName
	}
	if h.User != "" && !explicit("user") {
		c.User = h.User
	}
	if h.Port != 0 && !explicit("port") {
		c.Port = h.Port
	}
	if h.ProxyJump != "" && !explicit("proxy_jump") {
		c.ProxyJump = h.ProxyJump
	}
	if c.Key == "" && !explicit("key") {
		c.Key = firstExisting(h.IdentityFiles)
	}
}

// firstExisting is the first of files that exists, "" for none.
func firstExisting(files []string) string {
	for _, f := range files {
		if fileExists(f) {
			return f
		}
	}
	return ""
}

// Clone copies the config with its secrets (a JSON round trip drops them).
func (c *Config) Clone() any {
	cp := *c
	return &cp
}

// Credentials are the passwords of this run (never stored).
func (d *Driver) Credentials() (password, sudoPassword []byte) { return d.cfg.Credentials() }

// Credentials are the passwords a cluster file gave (never stored).
func (c *Config) Credentials() (password, sudoPassword []byte) {
	var p, s []byte
	if c.Password != "" {
		p = []byte(c.Password)
	}
	if c.SudoPassword != "" {
		s = []byte(c.SudoPassword)
	}
	return p, s
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
