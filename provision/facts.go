package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
)

// Facts is what one round trip tells of a host before anything changes.
type Facts struct {
	sections map[string]string
}

// Section returns the raw text of one probe.
func (f *Facts) Section(name string) string { return strings.TrimRight(f.sections[name], "\n") }

// Has tells whether a command is on the host's PATH.
func (f *Facts) Has(cmd string) bool {
	for _, l := range strings.Split(f.Section("commands"), "\n") {
		if l == cmd {
			return true
		}
	}
	return false
}

var versionRE = regexp.MustCompile(`\d+\.\d+\.\d+`)

// DockerVersion is the installed engine's version ("" when none).
func (f *Facts) DockerVersion() string {
	return versionRE.FindString(f.Section("docker-version"))
}

// RunningDocker is the version the running daemon answered the probe with
// ("" when it did not answer).
func (f *Facts) RunningDocker() string {
	var v struct{ Version string }
	if json.Unmarshal([]byte(f.Section("docker-info")), &v) != nil || !versionRE.MatchString(v.Version) {
		return ""
	}
	return v.Version
}

// UserGroups returns the user's groups, and whether the user exists.
func (f *Facts) UserGroups() ([]string, bool) {
	lines := strings.Split(f.Section("user"), "\n")
	if len(lines) < 2 || lines[0] == "" {
		return nil, false
	}
	return strings.Fields(lines[1]), true
}

// rpmProbe lists the packages whose presence the facts record.
const rpmProbe = "docker-ce docker-ce-cli containerd.io container-selinux docker yum-utils dnf-plugins-core"

// RPMInstalled tells whether the facts saw an rpm package installed.
func (f *Facts) RPMInstalled(pkg string) bool {
	for _, l := range strings.Split(f.Section("rpm"), "\n") {
		if strings.TrimSpace(l) == pkg {
			return true
		}
	}
	return false
}

// factsScript prints, for each probe, a marker line "@@NONCE NAME", the
// probe's output as it is, and a newline. NONCE is random for each run, so
// no file content (no final newline, CRLF, a line that looks like a marker)
// can run into the next section; and the output needs no encoding, which
// would cost two more processes a probe on a busy host. It only reads.
func factsScript(dockerUser, nonce string, extra ...Probe) string {
	u := shell.Quote(dockerUser)
	probes := []struct{ name, cmd string }{
		{"os-release", "cat /etc/os-release"},
		{"hostname", "hostname"},
		{"hosts", "cat /etc/hosts"},
		{"user", "id -un " + u + " && id -nG " + u},
		{"authorized-keys", `pw=$(getent passwd ` + u + `) && cat "$(printf '%s\n' "$pw" | cut -d: -f6)/.ssh/authorized_keys"`},
		{"commands", "for c in systemctl hostnamectl apt-get yum dnf rpm dockerd docker usermod useradd curl ufw firewall-cmd getenforce; do command -v $c >/dev/null && echo $c; done"},
		// CentOS 7's own docker package names its daemon dockerd-current.
		{"docker-version", "dockerd --version || dockerd-current --version"},
		// One rpm call answers for every package the RHEL family cares
		// about; a missing one prints "package X is not installed".
		{"rpm", "rpm -q --qf '%{NAME}\\n' " + rpmProbe},
		{"docker-group", "getent group docker"},
		{"daemon-json-exists", "test -e /etc/docker/daemon.json && echo yes"},
		{"daemon-json", "cat /etc/docker/daemon.json"},
		{"daemon-json-backup", "test -e " + daemonJSONBackup + " && echo yes"},
		{"tls", "cd " + tlsDir + " && sha256sum ca.pem server.pem server-key.pem"},
		{"dropin", "cat " + dropInPath},
		{"unit", "systemctl cat docker.service"},
		{"enabled", "systemctl is-enabled docker"},
		{"active", "systemctl is-active docker"},
		{"dockerd-pid", "systemctl show -p MainPID --value docker"},
		{"firewalld", "systemctl is-active firewalld"},
		// Runtime and permanent both: a port open in only one of them is
		// either gone at the next reload or not open yet.
		{"firewalld-runtime", "systemctl is-active -q firewalld && firewall-cmd --list-all"},
		{"firewalld-permanent", "systemctl is-active -q firewalld && firewall-cmd --permanent --list-all"},
		// verbose for the default policy: "allow (incoming)" opens all.
		{"ufw", "ufw status verbose"},
		{"selinux", "getenforce"},
		// CentOS 7's docker package passes --selinux-enabled in OPTIONS;
		// the same key in daemon.json would stop dockerd.
		{"docker-sysconfig", "grep -h -- '--selinux-enabled' /etc/sysconfig/docker"},
		// A daemon that answers here and is not restarted needs no wait
		// for it afterwards (bounded: a hung daemon must not hang the probe).
		// The Engine API's /version through curl costs a tenth of the
		// docker CLI (a large binary to start); the CLI when curl is not there.
		{"docker-info", `systemctl is-active -q docker && { curl -fsS -m 20 --unix-socket /var/run/docker.sock http://localhost/version || timeout 20 docker version --format '{"Version":{{json .Server.Version}}}'; }`},
	}
	for _, p := range extra {
		probes = append(probes, struct{ name, cmd string }{p.Name, p.Cmd})
	}
	var b strings.Builder
	b.WriteString(factsScriptHead + "\n")
	for _, p := range probes {
		// A probe that fails prints what it printed: its status is not a fact.
		fmt.Fprintf(&b, "echo %s; (%s) 2>/dev/null; echo\n", shell.Quote("@@"+nonce+" "+p.name), p.cmd)
	}
	fmt.Fprintf(&b, "echo %s", shell.Quote("@@"+nonce+" end"))
	return b.String()
}

// factsScriptHead is the facts probe's first line.
const factsScriptHead = "# shoal facts probe"

// builtinProbe tells whether name is one of provisioning's own probes.
func builtinProbe(name string) bool {
	return name == "end" || strings.Contains(factsScript("u", "n"), "'@@n "+name+"'")
}

// newNonce returns a fresh random marker for one run of the probe.
func newNonce() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// parseFacts reads the probe's sections: after each "@@NONCE NAME" line,
// the output up to the newline before the next marker. What comes before
// the first marker (a warning sudo printed through a pty) is not a fact; a
// terminal that turned every newline into CRLF changes nothing.
func parseFacts(out, nonce string) (*Facts, error) {
	f := &Facts{sections: map[string]string{}}
	marker := "@@" + nonce + " "
	if strings.Contains(out, marker+"end\r\n") {
		out = strings.ReplaceAll(out, "\r\n", "\n")
	}
	chunks := strings.Split(out, marker)
	for _, c := range chunks[1:] {
		name, rest, ok := strings.Cut(c, "\n")
		if name == "end" && ok {
			f.sections["end"] = ""
			continue
		}
		content, nl := strings.CutSuffix(rest, "\n")
		if !ok || !nl || !sectionRE.MatchString(name) {
			return nil, fmt.Errorf("the facts probe printed a garbled section %q", shorten(marker+c, 80))
		}
		f.sections[name] = content
	}
	return f, nil
}

var sectionRE = regexp.MustCompile(`^[a-z0-9-]+$`)

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Probe is a read-only command whose output the caller wants from the same
// round trip as the facts (Report.Facts.Section(Name)). Its name must not be
// one of provisioning's own.
type Probe struct {
	Name, Cmd string
}

// GatherFacts probes the host in one command, as root.
func GatherFacts(ctx context.Context, r Runner, dockerUser string, extra ...Probe) (*Facts, error) {
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	res, err := r.RunSudo(ctx, factsScript(dockerUser, nonce, extra...))
	if err != nil {
		return nil, err
	}
	if res.Truncated {
		return nil, fmt.Errorf("probing %s: the probe's output is too large (is /etc/hosts or daemon.json many megabytes?)", r.Host())
	}
	f, err := parseFacts(string(res.Stdout), nonce)
	if err != nil {
		return nil, fmt.Errorf("probing %s: %w", r.Host(), err)
	}
	if _, ok := f.sections["end"]; !ok {
		return nil, fmt.Errorf("probing %s: the output ended early", r.Host())
	}
	return f, nil
}
