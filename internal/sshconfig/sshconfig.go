// Package sshconfig reads what OpenSSH's client configuration
// (~/.ssh/config, with its Include directives) says of a host alias:
// HostName, User, Port, IdentityFile and ProxyJump. It decides nothing
// else; callers let their own flags and cluster files win over it.
package sshconfig

import (
	"cmp"
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
	if c == nil || c.cfg == nil {
		return Host{Alias: alias}, nil
	}
	l := hostLookup{c: c, h: Host{Alias: alias}}
	l.user()
	l.hostName()
	l.port()
	l.proxyJump()
	l.identityFiles()
	return l.h, l.h.Refused()
}

// hostLookup is Lookup's work: the host read so far from c.
type hostLookup struct {
	c *Config
	h Host
}

func (l *hostLookup) get(key string) string {
	v, _ := l.c.cfg.Get(l.h.Alias, key)
	return strings.TrimSpace(v)
}

// bad records a refused value of key.
func (l *hostLookup) bad(key string, err error) {
	if l.h.refused == nil {
		l.h.refused = map[string]error{}
	}
	l.h.refused[key] = fmt.Errorf("%s: Host %s: %s: %w", l.c.path, l.h.Alias, key, err)
}

func (l *hostLookup) user() {
	u := l.get("User")
	if u == "" {
		return
	}
	if err := validate.UserName(u); err != nil {
		l.bad("User", err)
		return
	}
	l.h.User = u
}

// hostName reads HostName, its %h the alias.
func (l *hostLookup) hostName() {
	hn := l.get("HostName")
	if hn == "" {
		return
	}
	hn = strings.ReplaceAll(hn, "%h", l.h.Alias)
	if err := validate.Host(hn); err != nil {
		l.bad("HostName", err)
		return
	}
	l.h.HostName = hn
}

func (l *hostLookup) port() {
	p := l.get("Port")
	if p == "" {
		return
	}
	n, err := strconv.Atoi(p)
	if err == nil {
		err = validate.Port(n)
	}
	if err != nil {
		l.bad("Port", fmt.Errorf("%q is not a port", p))
		return
	}
	l.h.Port = n
}

// proxyJump reads ProxyJump; "none" is none.
func (l *hostLookup) proxyJump() {
	pj := l.get("ProxyJump")
	if pj == "" || strings.EqualFold(pj, "none") {
		return
	}
	if _, err := validate.ParseProxyJump(pj); err != nil {
		l.bad("ProxyJump", err)
		return
	}
	l.h.ProxyJump = pj
}

// identityFiles reads every IdentityFile but "none", expanded; it comes
// last, as %r and %h expand to the user and host name read before.
func (l *hostLookup) identityFiles() {
	files, _ := l.c.cfg.GetAll(l.h.Alias, "IdentityFile")
	for _, f := range files {
		f = strings.TrimSpace(f)
		if f == "" || strings.EqualFold(f, "none") {
			continue
		}
		l.h.IdentityFiles = append(l.h.IdentityFiles, expand(f, l.h.Alias, l.h))
	}
}

// expand does what OpenSSH does to an IdentityFile: a leading ~ and the
// tokens %d (home), %u (local user), %h (host), %r (remote user), %%.
func expand(p, alias string, h Host) string {
	home, _ := os.UserHomeDir()
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	host := h.HostName
	host = cmp.Or(host, alias)
	local := ""
	if u, err := user.Current(); err == nil {
		local = u.Username
	}
	return expandTokens(p, map[byte]string{'d': home, 'u': local, 'h': host, 'r': h.User, '%': "%"})
}

// expandTokens replaces each %X in p by tokens[X]; an unknown token, or a
// % that ends p, stays as it is.
func expandTokens(p string, tokens map[byte]string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 == len(p) {
			b.WriteByte(p[i])
			continue
		}
		i++
		if v, ok := tokens[p[i]]; ok {
			b.WriteString(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(p[i])
		}
	}
	return b.String()
}
