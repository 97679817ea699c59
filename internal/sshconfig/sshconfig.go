// Package sshconfig reads what OpenSSH's client configuration
// (~/.ssh/config, with its Include directives) says of a host alias:
// HostName, User, Port, IdentityFile and ProxyJump. It decides nothing
// else; callers let their own flags and cluster files win over it.
package sshconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	sshconfig "github.com/kevinburke/ssh_config"
	"github.com/shoal-dev/shoal/internal/validate"
)

// Host is what the configuration sets for one alias; empty fields are not
// set there.
type Host struct {
	Alias         string
	HostName      string
	User          string
	Port          int
	IdentityFiles []string // ~ and %d, %u, %h, %r, %% expanded
	ProxyJump     string

	// refused are the values, by keyword, that may not reach a host; their
	// fields are left empty.
	refused map[string]error
}

// Refused says which values the configuration gives that may not reach a
// host, except those of the keywords given (what flags set instead, so
// that a value never used stops nothing); nil when none.
func (h Host) Refused(except ...string) error {
	var errs []error
	for _, key := range []string{"User", "HostName", "Port", "ProxyJump"} {
		if err := h.refused[key]; err != nil && !slices.Contains(except, key) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HopRefused is Refused for a jump hop: what its [user@]host[:port] spells
// out, and ProxyJump (a hop's own jumps are not followed), are not taken
// from the configuration.
func (h Host) HopRefused(hop validate.Hop) error {
	given := []string{"ProxyJump"}
	if hop.User != "" {
		given = append(given, "User")
	}
	if hop.Port != 0 {
		given = append(given, "Port")
	}
	return h.Refused(given...)
}

// Found reports whether the configuration set anything for the alias.
func (h Host) Found() bool {
	return h.HostName != "" || h.User != "" || h.Port != 0 || len(h.IdentityFiles) > 0 || h.ProxyJump != ""
}

// DefaultPath is the user's configuration, ~/.ssh/config.
func DefaultPath() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".ssh", "config")
}

// Config is one parsed configuration file.
type Config struct {
	path     string
	cfg      *sshconfig.Config
	warnings []string
}

// Load parses the file at path ("" means DefaultPath). A missing default
// file is an empty configuration; a missing named one is an error. What
// cannot be used of the default file (a Match block shoal cannot evaluate,
// a line the parser refuses) is a warning, not an error: flags and cluster
// files do not need it. A named file that does not parse is an error.
func Load(path string) (*Config, error) {
	named := path != ""
	if !named {
		path = DefaultPath()
	}
	if path == "" {
		return &Config{}, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !named {
		return &Config{path: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	home, _ := os.UserHomeDir()
	p := &preparer{home: home}
	c, err := sshconfig.DecodeBytes(p.prepare(path, data, 0, ""))
	if err != nil {
		if named {
			return nil, fmt.Errorf("ssh config %s: %w", path, err)
		}
		p.warnf("%s: %v: not used", path, err)
		c = nil
	}
	return &Config{path: path, cfg: c, warnings: p.warnings}, nil
}

// Warnings say what of the file was skipped, one line each.
func (c *Config) Warnings() []string { return c.warnings }

// Path is the file read.
func (c *Config) Path() string { return c.path }

// Lookup returns what the configuration says of alias, checked: a value
// that may not reach a host is left out and is an error naming the file
// (Host.Refused tells them apart).
func (c *Config) Lookup(alias string) (Host, error) {
	h := Host{Alias: alias}
	if c == nil || c.cfg == nil {
		return h, nil
	}
	get := func(key string) string {
		v, _ := c.cfg.Get(alias, key)
		return strings.TrimSpace(v)
	}
	bad := func(key string, err error) {
		if h.refused == nil {
			h.refused = map[string]error{}
		}
		h.refused[key] = fmt.Errorf("%s: Host %s: %s: %w", c.path, alias, key, err)
	}
	if u := get("User"); u != "" {
		if err := validate.UserName(u); err != nil {
			bad("User", err)
		} else {
			h.User = u
		}
	}
	if hn := get("HostName"); hn != "" {
		hn = strings.ReplaceAll(hn, "%h", alias)
		if err := validate.Host(hn); err != nil {
			bad("HostName", err)
		} else {
			h.HostName = hn
		}
	}
	if p := get("Port"); p != "" {
		n, err := strconv.Atoi(p)
		if err == nil {
			err = validate.Port(n)
		}
		if err != nil {
			bad("Port", fmt.Errorf("%q is not a port", p))
		} else {
			h.Port = n
		}
	}
	if pj := get("ProxyJump"); pj != "" && !strings.EqualFold(pj, "none") {
		if _, err := validate.ParseProxyJump(pj); err != nil {
			bad("ProxyJump", err)
		} else {
			h.ProxyJump = pj
		}
	}
	files, _ := c.cfg.GetAll(alias, "IdentityFile")
	for _, f := range files {
		f = strings.TrimSpace(f)
		if f == "" || strings.EqualFold(f, "none") {
			continue
		}
		h.IdentityFiles = append(h.IdentityFiles, expand(f, alias, h))
	}
	return h, h.Refused()
}

// expand does what OpenSSH does to an IdentityFile: a leading ~ and the
// tokens %d (home), %u (local user), %h (host), %r (remote user), %%.
func expand(p, alias string, h Host) string {
	home, _ := os.UserHomeDir()
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	host := h.HostName
	if host == "" {
		host = alias
	}
	local := ""
	if u, err := user.Current(); err == nil {
		local = u.Username
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 == len(p) {
			b.WriteByte(p[i])
			continue
		}
		i++
		switch p[i] {
		case 'd':
			b.WriteString(home)
		case 'u':
			b.WriteString(local)
		case 'h':
			b.WriteString(host)
		case 'r':
			b.WriteString(h.User)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(p[i])
		}
	}
	return b.String()
}
