// Package validate is the one place that decides whether a value may reach
// a host or the store: machine names, hostnames, user names, versions,
// URLs, registries, labels, ports, fingerprints and paths, and the typed
// enums of the cluster file and the machine flags. Every function is pure;
// callers check what they read (a cluster file, a command line) before
// anything is made, and say which field or flag was wrong.
package validate

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Role is a node's swarm role.
type Role string

const (
	Manager Role = "manager"
	Worker  Role = "worker"
)

// ParseRole reads a role: manager or worker.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Manager, Worker:
		return r, nil
	}
	return "", fmt.Errorf("role must be %q or %q, not %q", Manager, Worker, s)
}

// Availability is a swarm node's availability.
type Availability string

const (
	Active Availability = "active"
	Pause  Availability = "pause"
	Drain  Availability = "drain"
)

// ParseAvailability reads an availability: active, pause or drain. The
// empty string is "not set" (the node keeps what it has).
func ParseAvailability(s string) (Availability, error) {
	switch a := Availability(s); a {
	case "", Active, Pause, Drain:
		return a, nil
	}
	return "", fmt.Errorf("availability must be active, pause or drain, not %q", s)
}

// InstallMode is how Docker Engine gets on a host.
type InstallMode string

const (
	InstallAuto   InstallMode = "auto"   // keep what is there, else repo
	InstallRepo   InstallMode = "repo"   // docker-ce from Docker's repository
	InstallDistro InstallMode = "distro" // the distribution's package
	InstallSkip   InstallMode = "skip"   // never install
)

// ParseInstallMode reads an install mode; empty means auto.
func ParseInstallMode(s string) (InstallMode, error) {
	switch m := InstallMode(s); m {
	case "":
		return InstallAuto, nil
	case InstallAuto, InstallRepo, InstallDistro, InstallSkip:
		return m, nil
	}
	return "", fmt.Errorf("install must be auto, repo, distro or skip, not %q", s)
}

// nameRE is a machine or cluster name: it becomes a folder of the store and
// the default hostname.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$`)

// Name checks a machine or cluster name.
func Name(s string) error {
	if !nameRE.MatchString(s) || strings.Contains(s, "..") {
		return fmt.Errorf("invalid name %q: use letters, digits, '-' and '.', starting with a letter or digit, at most 63 characters", s)
	}
	return nil
}

// StoredName checks the name of a machine or cluster already in the store:
// Name's characters, but a ".." inside (a..b) is read, as older shoal and
// 'machine import' from docker-machine made such folders. It is never "."
// or "..", so no path leaves the store. New machines and clusters take Name.
func StoredName(s string) error {
	if !nameRE.MatchString(s) || s == "." || s == ".." {
		return fmt.Errorf("invalid name %q: use letters, digits, '-' and '.', starting with a letter or digit, at most 63 characters", s)
	}
	return nil
}

var labelRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// DNSName checks a name in DNS (RFC 1123): dot-separated labels of letters,
// digits and inner '-', each at most 63 characters, at most 253 in all.
func DNSName(s string) error {
	if s == "" {
		return fmt.Errorf("empty host name")
	}
	if len(s) > 253 {
		return fmt.Errorf("host name %.20q... is %d characters long, at most 253", s, len(s))
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 {
			return fmt.Errorf("%q is not a valid host name: the part %.20q... is %d characters long, at most 63", s, l, len(l))
		}
		if !labelRE.MatchString(l) {
			return fmt.Errorf("%q is not a valid host name: use letters, digits and '-' between dots (RFC 1123)", s)
		}
	}
	return nil
}

// MaxHostname is the longest hostname set on a host: Linux keeps at most 64
// bytes, and one label of DNS at most 63.
const MaxHostname = 63

// Hostname checks the hostname given to a host: a DNS name of at most 63
// characters.
func Hostname(s string) error {
	if err := DNSName(s); err != nil {
		return err
	}
	if len(s) > MaxHostname {
		return fmt.Errorf("hostname %q is %d characters long: a host's name is at most %d", s, len(s), MaxHostname)
	}
	return nil
}

// Host checks the address of a host to reach: an IP address or a DNS name;
// nothing a shell or an SSH option would read.
func Host(s string) error {
	if net.ParseIP(s) != nil {
		return nil
	}
	if err := DNSName(s); err != nil {
		return fmt.Errorf("%q is neither an IP address nor a host name", s)
	}
	return nil
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*[$]?$`)

// UserName checks a login name as shadow's useradd takes it (4.14's
// is_valid_user_name): letters, digits, '_', '.' and '-', not starting
// with '-', not all digits (chown and sudo would read a number as a uid),
// not "." or "..", an optional final '$' (machine accounts), at most 32
// characters. So john.doe and John_Doe, as LDAP and FreeIPA hosts have
// them, pass. Every place shoal puts a user name quotes it (shell.Quote);
// '.' is mapped away in sudoers.d file names (sudo skips such files).
//
// Names with '@' or '\' (SSSD's john@corp.example.com, winbind's
// CORP\john) are refused: sudoers reads '\' as an escape and '@' in
// Defaults lines, chown's user:group and OpenSSH's user@host and -J
// parse them their own ways. Those hosts accept the short name as well
// (SSSD's use_fully_qualified_names = False, winbind's use default domain).
func UserName(s string) error {
	digits := strings.Trim(s, "0123456789") == ""
	switch {
	case strings.ContainsAny(s, "@\\"):
		return fmt.Errorf("%q is not a valid user name: no '@' or '\\' (a directory account's domain); give the short name the host also accepts (SSSD: use_fully_qualified_names = False)", s)
	case len(s) > 32 || !userRE.MatchString(s) || digits || s == "." || s == "..":
		return fmt.Errorf("%q is not a valid user name: letters, digits, '_', '.' and '-', not starting with '-', not all digits, at most 32 characters", s)
	}
	return nil
}

// DockerUser checks the user put in the docker group: a user name without
// the trailing '$' of machine accounts.
func DockerUser(s string) error {
	if err := UserName(s); err != nil {
		return err
	}
	if strings.HasSuffix(s, "$") {
		return fmt.Errorf("%q is not a valid docker user: no '$' at the end", s)
	}
	return nil
}

var versionRE = regexp.MustCompile(`^[0-9]{1,4}(\.[0-9]{1,4}){0,2}$`)

// EngineVersion checks a Docker Engine version (24, 24.0 or 24.0.9); empty
// means the newest. It goes into package names.
func EngineVersion(s string) error {
	if s != "" && !versionRE.MatchString(s) {
		return fmt.Errorf("%q is not a version (like 24.0.9 or 24.0)", s)
	}
	return nil
}

// pathRE is what a URL path may hold: no quotes, spaces, '+', '$' or other
// characters a shell or sed expression would read.
var pathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~%/-]*)?$`)

// URL checks an absolute http or https URL with a plain host, an optional
// port and a plain path: no user, query or fragment.
func URL(s string) error {
	if why := urlProblem(s); why != "" {
		return fmt.Errorf("%q is not a plain http(s) URL (like https://mirror.example.com/path): %s", s, why)
	}
	return nil
}

// urlProblem says what URL refuses in s, "" for nothing.
func urlProblem(s string) string {
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return "spaces, control or non-ASCII characters"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "it does not parse"
	}
	return parsedURLProblem(u, s)
}

// parsedURLProblem is urlProblem of s once parsed (u).
func parsedURLProblem(u *url.URL, s string) string {
	if u.Scheme != "http" && u.Scheme != "https" {
		return "the scheme must be http or https"
	}
	if u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#@") {
		return "no user, query or fragment"
	}
	if err := hostPort(u.Host); err != nil {
		return err.Error()
	}
	if !pathRE.MatchString(u.EscapedPath()) || !pathRE.MatchString(u.Path) {
		return "the path may hold letters, digits and . _ ~ % / - only"
	}
	return ""
}

// hostPort checks host or host:port, the host an IP address (IPv6 in
// brackets) or a DNS name.
func hostPort(s string) error {
	host, port, err := splitHostPort(s)
	if err != nil {
		return err
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || Port(n) != nil || port[0] == '0' || port[0] == '+' {
			return fmt.Errorf("%q is not a port", port)
		}
	}
	if net.ParseIP(host) == nil && DNSName(host) != nil {
		return fmt.Errorf("%q is neither an IP address nor a host name", host)
	}
	return nil
}

// splitHostPort splits host:port, [IPv6]:port, [IPv6] or host; the port
// is "" when there is none.
func splitHostPort(s string) (host, port string, err error) {
	if s == "" {
		return "", "", fmt.Errorf("no host")
	}
	if h, p, err := net.SplitHostPort(s); err == nil {
		if p == "" {
			return "", "", fmt.Errorf("an empty port")
		}
		return h, p, nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
		if net.ParseIP(host) == nil || !strings.Contains(host, ":") {
			return "", "", fmt.Errorf("%q is not an IPv6 address", host)
		}
		return host, "", nil
	}
	if strings.Contains(s, ":") {
		return "", "", fmt.Errorf("%q: want host or host:port", s)
	}
	return s, "", nil
}

// InsecureRegistry checks an entry of daemon.json's insecure-registries:
// host[:port] or a CIDR block.
func InsecureRegistry(s string) error {
	if strings.Contains(s, "/") {
		if _, _, err := net.ParseCIDR(s); err != nil {
			return fmt.Errorf("%q is not host[:port] or a CIDR block (like 10.0.0.0/8)", s)
		}
		return nil
	}
	if err := hostPort(s); err != nil {
		return fmt.Errorf("%q is not host[:port] or a CIDR block: %v", s, err)
	}
	return nil
}

// Port checks a TCP port.
func Port(n int) error {
	if n < 1 || n > 65535 {
		return fmt.Errorf("%d is not a port (1 to 65535)", n)
	}
	return nil
}

var labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$`)

// LabelKey checks a label key: letters, digits and . _ / - inside, as
// Docker's reverse-DNS keys (com.example.zone), at most 128 characters.
func LabelKey(k string) error {
	if !labelKeyRE.MatchString(k) {
		return fmt.Errorf("label key %q: use letters, digits and . _ / - (like com.example.zone), starting and ending with a letter or digit, at most 128 characters", k)
	}
	return nil
}

// labelValueForbidden are the characters a label value may not hold: what
// a shell would read, kept out even where values are quoted.
const labelValueForbidden = "`$;&|<>\\\"'"

// LabelValue checks a label value: valid UTF-8, printable (no control
// characters or newlines), no shell metacharacters, at most 1024 bytes.
func LabelValue(v string) error {
	switch {
	case !utf8.ValidString(v):
		return fmt.Errorf("label value %q is not valid UTF-8", v)
	case len(v) > 1024:
		return fmt.Errorf("label value %.20q... is %d bytes long, at most 1024", v, len(v))
	case strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0:
		return fmt.Errorf("label value %q holds a control or non-printable character", v)
	case strings.ContainsAny(v, labelValueForbidden):
		return fmt.Errorf("label value %q holds one of %s", v, labelValueForbidden)
	}
	return nil
}

// Label checks a key=value label and returns its parts.
func Label(kv string) (key, value string, err error) {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		if !utf8.ValidString(kv) {
			return "", "", fmt.Errorf("label %q is not valid UTF-8", kv)
		}
		return "", "", fmt.Errorf("label %q: want key=value", kv)
	}
	if err := LabelKey(k); err != nil {
		return "", "", err
	}
	if err := LabelValue(v); err != nil {
		return "", "", err
	}
	return k, v, nil
}

var fingerprintRE = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)

// Fingerprint checks an SSH host key fingerprint as `ssh-keygen -lf` prints
// it: SHA256: and 43 characters of unpadded base64.
func Fingerprint(s string) error {
	if !fingerprintRE.MatchString(s) {
		return fmt.Errorf("%q is not a SHA256:... host key fingerprint (as 'ssh-keygen -lf KEY' prints it)", s)
	}
	return nil
}

var remotePathRE = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+/?$`)

// RemotePath checks a path on a host: absolute, of plain names (letters,
// digits, . _ -), no '.' or '..' parts.
func RemotePath(s string) error {
	if !remotePathRE.MatchString(s) || len(s) > 4096 {
		return fmt.Errorf("%q is not a plain absolute path (letters, digits and . _ - between slashes)", s)
	}
	for _, p := range strings.Split(s, "/") {
		if p == "." || p == ".." {
			return fmt.Errorf("%q: no '.' or '..' in a path on the host", s)
		}
	}
	return nil
}

var imageRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)

// ImageRef checks a Docker image reference (registry:5000/name:tag or
// name@sha256:...), loosely: the characters and shape Docker takes.
func ImageRef(s string) error {
	if len(s) > 512 || !imageRE.MatchString(s) {
		return fmt.Errorf("%q is not an image reference (like registry:2 or host:5000/team/app:1.0)", s)
	}
	return nil
}

var checksumRE = regexp.MustCompile(`^sha256:[0-9a-fA-F]{64}$`)

// Checksum checks an image checksum: sha256: and 64 hex digits.
func Checksum(s string) error {
	if !checksumRE.MatchString(s) {
		return fmt.Errorf("%q is not a checksum: want sha256: and 64 hex digits", s)
	}
	return nil
}

var objectNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// ObjectName checks the name of a Docker or libvirt object (a container, a
// network, a pool): letters, digits and _ . -, starting with a letter or
// digit.
func ObjectName(s string) error {
	if !objectNameRE.MatchString(s) {
		return fmt.Errorf("%q is not a valid name: letters, digits and _ . -, starting with a letter or digit, at most 128 characters", s)
	}
	return nil
}

// RepoURL checks a docker-ce repository URL: a plain http(s) URL whose
// host is a name or an IPv4 address (it goes into a sed expression, where
// brackets would be read).
func RepoURL(s string) error {
	if err := URL(s); err != nil {
		return err
	}
	if strings.ContainsAny(s, "[]") {
		return fmt.Errorf("%q: a repository URL names its host, not an IPv6 address in brackets", s)
	}
	return nil
}

var ifaceRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)

// InterfaceName checks a network interface's name as Linux allows it in
// practice: 1 to 15 letters, digits and _ . -.
func InterfaceName(s string) error {
	if !ifaceRE.MatchString(s) {
		return fmt.Errorf("%q is not an interface name (1 to 15 letters, digits and _ . -)", s)
	}
	return nil
}

var portDigitsRE = regexp.MustCompile(`^[0-9]{1,5}$`)

// AdvertiseAddr checks a swarm advertise address: an IP address or name,
// or a network interface, each with an optional port.
func AdvertiseAddr(s string) error {
	if Host(s) == nil || hostPort(s) == nil {
		return nil
	}
	name, p, hasPort := strings.Cut(s, ":")
	if InterfaceName(name) == nil && (!hasPort || portDigitsRE.MatchString(p)) {
		if hasPort {
			if n, _ := strconv.Atoi(p); Port(n) != nil {
				return fmt.Errorf("%q: %q is not a port", s, p)
			}
		}
		return nil
	}
	return fmt.Errorf("%q is not an address, a name or an interface (with an optional :port)", s)
}

// stackNameRE is what a stack's name may be: with a service's own name after
// an underscore it must stay a valid swarm service name (letters, digits,
// and - or _ between them, at most 63 characters in all).
var stackNameRE = regexp.MustCompile(`^[a-zA-Z0-9](?:[-_]*[a-zA-Z0-9]+){0,31}$`)

// StackName checks the name of a stack (docker stack's namespace).
func StackName(s string) error {
	if len(s) > 32 || !stackNameRE.MatchString(s) {
		return fmt.Errorf("stack name %q: use letters, digits, - and _ (at most 32, starting and ending with a letter or digit)", s)
	}
	return nil
}
