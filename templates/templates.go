// Package templates holds the files shoal writes onto hosts, as
// text/template files embedded in the binary: dockerd's TLS and environment
// drop-ins, the cloud-init NoCloud documents, and the sshd setting that
// offers only the host key shoal pinned; and the /etc/hosts cluster block,
// written out in Go (HostsBlock: it is rendered once per node per run, and
// names every node). Each has
// a render function taking its own small data type, so that the package is
// a leaf any stage may import. node/ holds the docker driver's node image
// (a Dockerfile built by docker, not rendered here).
//
// text/template escapes nothing: every value goes through a function that
// fits the document it lands in (yamlString for cloud-init, unitLine and
// systemdEnv for a systemd unit, hostsField for /etc/hosts), and those refuse or escape what
// would change the document's structure.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"
)

//go:embed dockerd cloudinit sshd modules
var files embed.FS

// parsed is every template, parsed once; it is never changed after init
// (Execute is safe for concurrent use).
var parsed = template.Must(template.New("").Option("missingkey=error").Funcs(template.FuncMap{
	"yamlString": YAMLString,
	"unitLine":   unitLine,
	"systemdEnv": systemdEnv,
	"file":       embeddedFile,
}).ParseFS(files, "dockerd/*.tmpl", "cloudinit/*.tmpl"))

func render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := parsed.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	return b.Bytes(), nil
}

func embeddedFile(name string) (string, error) {
	b, err := files.ReadFile(name)
	return string(b), err
}

// ModulesLoadIPVS is the /etc/modules-load.d file that loads ip_vs at
// boot (Swarm's service VIPs need it).
func ModulesLoadIPVS() []byte {
	b, err := files.ReadFile("modules/shoal-ipvs.conf")
	if err != nil {
		panic(err) // embedded above: cannot be missing
	}
	return b
}

// SSHDHostKeyConf is the sshd_config.d file that makes sshd offer only
// /etc/ssh/ssh_host_ed25519_key, the host key shoal put there and pinned:
// an SSH client that prefers another key type would otherwise be shown a
// key that is not the pinned one.
func SSHDHostKeyConf() []byte {
	b, err := files.ReadFile("sshd/hostkey.conf")
	if err != nil {
		panic(err) // embedded above: cannot be missing
	}
	return b
}

// DockerdTLS is the data of dockerd's TLS drop-in.
type DockerdTLS struct {
	// ExecStart is the unit's own command line, on one line.
	ExecStart string
	Port      int
	// TLSDir holds ca.pem, server.pem and server-key.pem.
	TLSDir string
}

// DockerdTLSDropIn renders the systemd drop-in that adds a TLS socket to
// dockerd's command line.
func DockerdTLSDropIn(d DockerdTLS) (string, error) {
	b, err := render("tls-dropin.conf.tmpl", d)
	return string(b), err
}

// DockerdEnvDropIn renders the systemd drop-in that gives dockerd the
// variables env (NAME=VALUE each).
func DockerdEnvDropIn(env []string) (string, error) {
	b, err := render("env-dropin.conf.tmpl", env)
	return string(b), err
}

// HostsEntry is one line of the cluster block of /etc/hosts.
type HostsEntry struct {
	IP    string
	Names []string
}

// The marker lines of the cluster block, as HostsBlock writes them.
const (
	HostsBegin = "# BEGIN shoal: cluster nodes (managed, do not edit)"
	HostsEnd   = "# END shoal"
)

// HostsBlock renders the cluster block of /etc/hosts, marker lines
// included, each line ending in "\n": an address and its names per line,
// each field through hostsField. Written out here, not by a template:
// every node's block names every node, a million lines in a run at 1,000
// nodes, and text/template (reflection on every field) took 20 times as
// long as the lines themselves, a quarter of a no-op's CPU at 300.
func HostsBlock(entries []HostsEntry) (string, error) {
	var b strings.Builder
	b.Grow(len(HostsBegin) + len(HostsEnd) + 2 + 40*len(entries))
	b.WriteString(HostsBegin + "\n")
	for _, e := range entries {
		ip, err := hostsField(e.IP)
		if err != nil {
			return "", err
		}
		b.WriteString(ip)
		b.WriteByte('\t')
		for i, n := range e.Names {
			name, err := hostsField(n)
			if err != nil {
				return "", err
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(name)
		}
		b.WriteByte('\n')
	}
	b.WriteString(HostsEnd + "\n")
	return b.String(), nil
}

// MetaData is the data of the NoCloud meta-data file.
type MetaData struct {
	InstanceID string
	Hostname   string
}

// UserData is the data of the NoCloud user-data file.
type UserData struct {
	Hostname string
	// User is created with passwordless sudo, bash, its password locked.
	User           string
	AuthorizedKeys []string
	// SSHGenKeyTypes are the host key types cloud-init generates.
	SSHGenKeyTypes []string
	// HostKeyPrivatePEM and HostKeyPublic, when set, become the guest's
	// ed25519 host key, the only one sshd offers.
	HostKeyPrivatePEM string
	HostKeyPublic     string
}

// Ethernet is one entry of network-config's "ethernets", matched by MAC
// when MAC is set, else by interface name (a glob).
type Ethernet struct {
	ID        string
	MAC       string
	Name      string
	DHCP4     bool
	Addresses []string
	// Gateway is the next hop of the default route; empty: none.
	Gateway string
}

// CloudInitMetaData renders the meta-data file.
func CloudInitMetaData(d MetaData) ([]byte, error) { return render("meta-data.tmpl", d) }

// CloudInitUserData renders the user-data file (#cloud-config).
func CloudInitUserData(d UserData) ([]byte, error) { return render("user-data.tmpl", d) }

// CloudInitNetworkConfig renders the network-config file (version 2); the
// entries appear in the order given.
func CloudInitNetworkConfig(ethernets []Ethernet) ([]byte, error) {
	return render("network-config.tmpl", ethernets)
}

// YAMLString quotes s as a double-quoted scalar that JSON and YAML (1.1 and
// 1.2) both read back as s: the escapes are the ones the two share, and
// every character YAML does not allow unescaped in a document (C0 and C1
// controls, DEL, U+FFFE, U+FFFF) is escaped. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does. For any other string the result is what
// encoding/json writes (HTML escaping off).
func YAMLString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		writeYAMLRune(&b, r, size)
	}
	b.WriteByte('"')
	return b.String()
}

// yamlShortEscapes are the characters with a short escape that JSON and
// YAML share, and yamlShortLetters the letter after the backslash for each.
const (
	yamlShortEscapes = "\"\\\n\r\t\b\f"
	yamlShortLetters = `"\nrtbf`
)

// writeYAMLRune writes r (size bytes of the input) as YAMLString does.
func writeYAMLRune(b *strings.Builder, r rune, size int) {
	if r == utf8.RuneError && size == 1 {
		b.WriteString(`\ufffd`)
		return
	}
	if i := strings.IndexRune(yamlShortEscapes, r); i >= 0 {
		b.WriteByte('\\')
		b.WriteByte(yamlShortLetters[i])
		return
	}
	if yamlMustEscape(r) {
		fmt.Fprintf(b, `\u%04x`, r)
		return
	}
	b.WriteRune(r)
}

// yamlMustEscape tells the characters written as \uXXXX: U+2028 and
// U+2029 as encoding/json escapes them; the others because YAML refuses
// them raw.
func yamlMustEscape(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 || r == 0xfffe || r == 0xffff
}

// lineBreaks end a line of a systemd unit (NUL ends the file for systemd).
const lineBreaks = "\n\r\x00"

// unitLine passes a value into a systemd unit line, refusing line breaks:
// a newline would end the line and start another directive.
func unitLine(s string) (string, error) {
	if strings.ContainsAny(s, lineBreaks) {
		return "", fmt.Errorf("a systemd unit line cannot hold a line break or NUL: %q", s)
	}
	return s, nil
}

// systemdEnv quotes one NAME=VALUE for an Environment= line: inside double
// quotes systemd unescapes \\ and \", and % starts a specifier unless
// doubled; $ is not expanded there. Line breaks and NUL are refused: a
// line break would end the line and start another directive.
func systemdEnv(kv string) (string, error) {
	if strings.ContainsAny(kv, lineBreaks) {
		return "", fmt.Errorf("a systemd Environment= value cannot hold a line break or NUL: %q", kv)
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`)
	return `"` + r.Replace(kv) + `"`, nil
}

// hostsField passes an address or a name into /etc/hosts, which has no
// quoting: empty values, spaces, '#' and control characters would split,
// comment out or break the line, so they are refused.
func hostsField(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("an /etc/hosts field cannot be empty")
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r == '#' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "", fmt.Errorf("an /etc/hosts field cannot hold spaces, '#' or control characters: %q", s)
	}
	return s, nil
}
