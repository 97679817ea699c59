package sshconfig

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxIncludeDepth is OpenSSH's limit on nested Include (READCONF_MAX_DEPTH).
const maxIncludeDepth = 16

// neverHost starts a block that matches no alias: the lines of a Match
// block shoal cannot evaluate are kept out of every lookup.
const neverHost = "Host !*"

// preparer turns a configuration and its Includes into one text the parser
// reads whole. The parser stops at the first Match criterion it does not
// know (user, localuser, exec, ...), and one such line would break every
// lookup, flags or not; so Match lines become Host lines where shoal can
// tell what they match, and blocks it cannot evaluate are skipped with a
// warning. Includes are inlined here so that their Match lines are treated
// the same way.
type preparer struct {
	home     string // where relative Includes are looked up: home/.ssh
	warnings []string
}

// directive splits a configuration line into its keyword and arguments
// ("Key value", "Key=value"); comments and blank lines give "".
func directive(line string) (key string, args []string) {
	s := strings.TrimSpace(line)
	if s == "" || s[0] == '#' {
		return "", nil
	}
	i := strings.IndexAny(s, " \t=")
	if i < 0 {
		return strings.ToLower(s), nil
	}
	key = strings.ToLower(s[:i])
	rest := strings.TrimLeft(s[i:], " \t")
	rest = strings.TrimPrefix(rest, "=")
	for _, f := range strings.Fields(rest) {
		if strings.HasPrefix(f, "#") {
			break
		}
		args = append(args, f)
	}
	return key, args
}

// matchAsHost returns the Host line a Match line stands for, or ok false
// when its criteria cannot be evaluated here. "Match all" is "Host *";
// "Match host a,b" and "Match originalhost a,b" are "Host a b": like the
// parser did before, host is matched against the alias, not the HostName
// it is given (OpenSSH's host criterion sees the HostName).
func matchAsHost(args []string) (string, bool) {
	switch {
	case len(args) == 1 && strings.EqualFold(args[0], "all"):
		return "Host *", true
	case len(args) == 2 && (strings.EqualFold(args[0], "host") || strings.EqualFold(args[0], "originalhost")):
		pats := strings.FieldsFunc(args[1], func(r rune) bool { return r == ',' })
		if len(pats) == 0 {
			return "", false
		}
		return "Host " + strings.Join(pats, " "), true
	}
	return "", false
}

// prepare rewrites one file's text (read from path, included depth deep)
// that sits in the block header ("" for none: every alias). An Include in
// a block that does not match every alias, of a file with its own Host or
// Match lines, cannot be expressed in one text: it is skipped with a
// warning.
func (p *preparer) prepare(path string, data []byte, depth int, header string) []byte {
	var out bytes.Buffer
	for n, line := range strings.Split(string(data), "\n") {
		key, args := directive(line)
		switch key {
		case "match":
			h, ok := matchAsHost(args)
			if !ok {
				p.warnf("%s:%d: %q: skipped (shoal cannot evaluate this Match); what the block sets is not used", path, n+1, strings.TrimSpace(line))
				h = neverHost
			}
			header = h
			out.WriteString(h + "\n")
		case "host":
			header = strings.TrimSpace(line)
			out.WriteString(line + "\n")
		case "include":
			p.include(&out, path, n+1, args, depth, header)
			// Back to the block the Include sat in.
			out.WriteString(or(header, "Host *") + "\n")
		default:
			out.WriteString(line + "\n")
		}
	}
	return out.Bytes()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// everyAlias tells whether a block header matches every alias.
func everyAlias(header string) bool {
	_, args := directive(header)
	return header == "" || len(args) == 1 && args[0] == "*"
}

// include inlines the files an Include names, in glob order.
func (p *preparer) include(out *bytes.Buffer, path string, line int, args []string, depth int, header string) {
	if depth >= maxIncludeDepth {
		p.warnf("%s:%d: Include nested deeper than %d: skipped", path, line, maxIncludeDepth)
		return
	}
	for _, a := range args {
		files, err := filepath.Glob(p.includePattern(a))
		if err != nil {
			p.warnf("%s:%d: Include %s: %v: skipped", path, line, a, err)
			continue
		}
		for _, f := range files {
			p.includeFile(out, path, line, a, f, depth, header)
		}
	}
}

// includePattern is an Include argument as a path: ~/ is the home folder,
// a relative one is in ~/.ssh.
func (p *preparer) includePattern(a string) string {
	switch {
	case strings.HasPrefix(a, "~/"):
		return filepath.Join(p.home, a[2:])
	case !filepath.IsAbs(a):
		return filepath.Join(p.home, ".ssh", a)
	}
	return a
}

// includeFile inlines the file f that the Include argument a at path:line
// matched; one that cannot be read, or that starts blocks inside a block,
// is skipped with a warning.
func (p *preparer) includeFile(out *bytes.Buffer, path string, line int, a, f string, depth int, header string) {
	data, err := os.ReadFile(f)
	if err != nil {
		p.warnf("%s:%d: Include %s: %v: skipped", path, line, a, err)
		return
	}
	if !everyAlias(header) && hasBlocks(data) {
		p.warnf("%s:%d: Include %s inside a Host or Match block, of a file with its own Host or Match lines: skipped (shoal cannot combine the two)", path, line, f)
		return
	}
	out.Write(p.prepare(f, data, depth+1, header))
}

// hasBlocks tells whether a file starts blocks of its own.
func hasBlocks(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		if k, _ := directive(line); k == "host" || k == "match" {
			return true
		}
	}
	return false
}

func (p *preparer) warnf(format string, a ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, a...))
}
