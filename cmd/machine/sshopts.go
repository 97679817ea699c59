package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// sshOptions are the OpenSSH options `machine ssh NAME` takes before the
// remote command, as docker-machine (which runs ssh user@host ARGS...)
// and OpenSSH read them: the command starts at the first word that is not
// an option, or after "--".
type sshOptions struct {
	TTY            int // 0: as the terminal says; 1: -t; 2: -tt; -1: -T
	Agent          bool
	Identities     []string
	Port           int
	NullStdin      bool
	Subsystem      bool // -s: the command is an SSH subsystem (sftp, for sshfs)
	NoCommand      bool // -N: forwards only, until interrupted
	Local, Remote  []forwardSpec
	Dynamic        []string // -D [bind:]port: SOCKS5 listeners here
	ConnectTimeout time.Duration
	KeepAlive      time.Duration
}

// forwardSpec is -L/-R [bind:]port:host:hostport: Listen on the one side,
// Target dialled from the other.
type forwardSpec struct{ Listen, Target string }

// sshFlagsPlain are OpenSSH's flags without a value that shoal's client
// honours, or that change nothing with it (-C: Go's SSH has no
// compression; -q, -v: it prints no diagnostics of its own; -a, -x: no
// agent or X11 forwarding unless asked; -2: protocol 2 is the only one).
const sshFlagsPlain = "2AaCNnqsTtvx"

// sshFlagsValued are OpenSSH's flags that take a value, honoured here.
const sshFlagsValued = "DiLopR"

// sshFlagsOpenSSH are OpenSSH's other flags: refused by name, never sent
// to the remote shell.
const sshFlagsOpenSSH = "146BbcEeFfGgIJKkMlmOPQSVWwXYy"

const sshSupported = "-2 -A -a -C -D -i -L -N -n -o -p -q -R -s -T -t -v -x"

// parseSSHArgs splits what follows NAME into ssh options and the remote
// command's words.
func parseSSHArgs(args []string) (sshOptions, []string, error) {
	var o sshOptions
	words, err := o.parse(args)
	return o, words, err
}

// parse reads options into o up to the first word that is not one (or
// "--") and returns the words from there.
func (o *sshOptions) parse(args []string) ([]string, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args[i+1:], nil
		}
		if len(a) < 2 || a[0] != '-' {
			return args[i:], nil
		}
		if a[1] == '-' {
			return nil, fmt.Errorf("ssh option %s: unknown (to run a command that starts with it: machine ssh NAME -- %s)", a, a)
		}
		next, err := o.flagGroup(args, i)
		if err != nil {
			return nil, err
		}
		i = next
	}
	return nil, nil
}

// flagGroup reads the flags in args[i] ("-tt", "-p22", "-Ai key"), a
// valued flag's value being the rest of the word or else the next word.
// It returns the index of the last word it used.
func (o *sshOptions) flagGroup(args []string, i int) (int, error) {
	a := args[i]
	for j := 1; j < len(a); j++ {
		f := a[j]
		switch {
		case strings.IndexByte(sshFlagsPlain, f) >= 0:
			o.plain(f)
		case strings.IndexByte(sshFlagsValued, f) >= 0:
			return o.valuedFlag(args, i, a[j+1:], f)
		case strings.IndexByte(sshFlagsOpenSSH, f) >= 0:
			return i, fmt.Errorf("ssh option -%c is not supported by shoal's SSH client (it takes %s)", f, sshSupported)
		default:
			return i, fmt.Errorf("ssh option -%c: unknown (to run a command that starts with %s: machine ssh NAME -- %s)", f, a, a)
		}
	}
	return i, nil
}

// valuedFlag sets the valued flag f from v, the rest of args[i], or if
// that is empty from the next word.
func (o *sshOptions) valuedFlag(args []string, i int, v string, f byte) (int, error) {
	if v == "" {
		if i+1 >= len(args) {
			return i, fmt.Errorf("ssh option -%c needs a value", f)
		}
		i++
		v = args[i]
	}
	return i, o.valued(f, v)
}

func (o *sshOptions) plain(f byte) {
	switch f {
	case 'A':
		o.Agent = true
	case 'a':
		o.Agent = false
	case 'N':
		o.NoCommand = true
	case 'n':
		o.NullStdin = true
	case 's':
		o.Subsystem = true
	case 'T':
		o.TTY = -1
	case 't':
		if o.TTY < 1 {
			o.TTY = 1
		} else {
			o.TTY = 2
		}
	}
}

func (o *sshOptions) valued(f byte, v string) error {
	switch f {
	case 'i':
		o.Identities = append(o.Identities, v)
	case 'p':
		return o.setPort(v)
	case 'D':
		l, err := parseDynamic(v)
		if err != nil {
			return fmt.Errorf("ssh option -D %q: %w", v, err)
		}
		o.Dynamic = append(o.Dynamic, l)
	case 'L', 'R':
		return o.addForward(f, v)
	case 'o':
		return o.option(v)
	}
	return nil
}

func (o *sshOptions) setPort(v string) error {
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("ssh option -p %q: not a port", v)
	}
	o.Port = p
	return nil
}

// addForward reads -L or -R (f) [bind:]port:host:hostport.
func (o *sshOptions) addForward(f byte, v string) error {
	fw, err := parseForward(v)
	if err != nil {
		return fmt.Errorf("ssh option -%c %q: %w", f, v, err)
	}
	if f == 'L' {
		o.Local = append(o.Local, fw)
	} else {
		o.Remote = append(o.Remote, fw)
	}
	return nil
}

// option reads -o Key=Value (or "Key Value"), for the keys the client
// can honour; others are refused by name.
func (o *sshOptions) option(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		k, v, _ = strings.Cut(strings.TrimSpace(kv), " ")
	}
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	set, ok := sshConfigKeys()[strings.ToLower(k)]
	if !ok {
		return fmt.Errorf("ssh option -o %s is not supported by shoal's SSH client (it takes -o Compression, BatchMode, LogLevel, ForwardAgent, RequestTTY, Port, IdentityFile, ConnectTimeout, ServerAliveInterval, LocalForward, RemoteForward, DynamicForward)", k)
	}
	return set(o, k, v)
}

// sshConfigKeys are the -o keys (lower case) the client takes, each with
// the setter that reads its value; k is the key as the user spelled it.
// A function, not a variable: the setters lead back to option.
func sshConfigKeys() map[string]func(o *sshOptions, k, v string) error {
	return map[string]func(o *sshOptions, k, v string) error{
		"compression":           checkYesNo,
		"batchmode":             checkYesNo,
		"loglevel":              ignoreOption,
		"clearallforwardings":   checkYesNo, // sshfs's: no forwards come from a config here
		"forwardagent":          (*sshOptions).setForwardAgent,
		"requesttty":            (*sshOptions).setRequestTTY,
		"port":                  valuedAs('p'),
		"identityfile":          valuedAs('i'),
		"connecttimeout":        (*sshOptions).setSeconds,
		"serveraliveinterval":   (*sshOptions).setSeconds,
		"dynamicforward":        valuedAs('D'),
		"localforward":          forwardAs('L'),
		"remoteforward":         forwardAs('R'),
		"stricthostkeychecking": refusePinnedKey,
		"userknownhostsfile":    refusePinnedKey,
	}
}

func badOptionValue(k, v string) error {
	return fmt.Errorf("ssh option -o %s: value %q not understood", k, v)
}

// parseYesNo reads an OpenSSH yes/no value, in any case.
func parseYesNo(k, v string) (bool, error) {
	switch {
	case strings.EqualFold(v, "yes"):
		return true, nil
	case strings.EqualFold(v, "no"):
		return false, nil
	}
	return false, badOptionValue(k, v)
}

// checkYesNo accepts a yes/no option that changes nothing here.
func checkYesNo(_ *sshOptions, k, v string) error {
	_, err := parseYesNo(k, v)
	return err
}

func ignoreOption(*sshOptions, string, string) error { return nil }

func refusePinnedKey(_ *sshOptions, k, _ string) error {
	return fmt.Errorf("ssh option -o %s is not supported: shoal checks the host key it pinned for the machine, always", k)
}

func (o *sshOptions) setForwardAgent(k, v string) error {
	yes, err := parseYesNo(k, v)
	if err != nil {
		return err
	}
	o.Agent = yes
	return nil
}

func (o *sshOptions) setRequestTTY(k, v string) error {
	t, ok := map[string]int{"no": -1, "yes": 1, "force": 2, "auto": 0}[strings.ToLower(v)]
	if !ok {
		return badOptionValue(k, v)
	}
	o.TTY = t
	return nil
}

// setSeconds reads ConnectTimeout or ServerAliveInterval: whole seconds,
// at most a day.
func (o *sshOptions) setSeconds(k, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 86400 {
		return badOptionValue(k, v)
	}
	if strings.EqualFold(k, "connecttimeout") {
		o.ConnectTimeout = time.Duration(n) * time.Second
	} else {
		o.KeepAlive = time.Duration(n) * time.Second
	}
	return nil
}

// valuedAs reads an -o key as the short flag f with the same value.
func valuedAs(f byte) func(o *sshOptions, k, v string) error {
	return func(o *sshOptions, _, v string) error { return o.valued(f, v) }
}

// forwardAs reads "LocalForward port host:hostport", ssh's config form,
// as -L (or -R) port:host:hostport.
func forwardAs(f byte) func(o *sshOptions, k, v string) error {
	return func(o *sshOptions, _, v string) error {
		return o.valued(f, strings.Join(strings.Fields(v), ":"))
	}
}

// parseDynamic reads -D [bind:]port (an IPv6 bind in brackets); no bind is
// localhost, "*" or "" all addresses, as OpenSSH's.
func parseDynamic(s string) (string, error) {
	bind, port := "localhost", s
	if i := strings.LastIndex(s, ":"); i >= 0 {
		bind, port = strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]"), s[i+1:]
		if bind == "*" {
			bind = ""
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q is not a port", port)
	}
	return net.JoinHostPort(bind, port), nil
}

// parseForward reads [bind:]port:host:hostport; an IPv6 address is in
// brackets. Unix sockets and dynamic forwards are not supported.
func parseForward(s string) (forwardSpec, error) {
	parts, err := splitForward(s)
	if err != nil {
		return forwardSpec{}, err
	}
	bind := "localhost"
	switch len(parts) {
	case 3:
	case 4:
		bind, parts = parts[0], parts[1:]
		if bind == "" || bind == "*" {
			bind = ""
		}
	default:
		return forwardSpec{}, fmt.Errorf("want [bind_address:]port:host:hostport (unix sockets and dynamic forwards are not supported)")
	}
	for _, p := range []string{parts[0], parts[2]} {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
			return forwardSpec{}, fmt.Errorf("%q is not a port", p)
		}
	}
	if parts[1] == "" {
		return forwardSpec{}, fmt.Errorf("no host")
	}
	return forwardSpec{Listen: net.JoinHostPort(bind, parts[0]), Target: net.JoinHostPort(parts[1], parts[2])}, nil
}

// splitForward splits a forward spec at its colons, an address in
// brackets being one part.
func splitForward(s string) ([]string, error) {
	var parts []string
	for rest := s; rest != ""; {
		var p string
		if strings.HasPrefix(rest, "[") {
			var err error
			if p, rest, err = cutBracketed(rest); err != nil {
				return nil, err
			}
		} else {
			p, rest, _ = strings.Cut(rest, ":")
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// cutBracketed cuts "[addr]" (and the ':' after it) off the front of s.
func cutBracketed(s string) (addr, rest string, err error) {
	end := strings.Index(s, "]")
	if end < 0 {
		return "", "", fmt.Errorf("unclosed [")
	}
	addr, rest = s[1:end], s[end+1:]
	if rest != "" && !strings.HasPrefix(rest, ":") {
		return "", "", fmt.Errorf("want ':' after ]")
	}
	return addr, strings.TrimPrefix(rest, ":"), nil
}
