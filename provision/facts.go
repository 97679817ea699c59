package provision

import (
	"context"
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

// factsScript prints one section per probe. It only reads.
func factsScript(dockerUser string) string {
	u := shell.Quote(dockerUser)
	probes := []struct{ name, cmd string }{
		{"os-release", "cat /etc/os-release"},
		{"hostname", "hostname"},
		{"hosts", "cat /etc/hosts"},
		{"user", "id -un " + u + " && id -nG " + u},
		{"authorized-keys", "cat ~" + dockerUser + "/.ssh/authorized_keys"},
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
	}
	var b strings.Builder
	for _, p := range probes {
		fmt.Fprintf(&b, "echo '@@%s'; (%s) 2>/dev/null; ", p.name, p.cmd)
	}
	b.WriteString("echo '@@end'; true")
	return b.String()
}

func parseFacts(out string) *Facts {
	f := &Facts{sections: map[string]string{}}
	// Through a pty (sudo with requiretty) the terminal may have turned
	// every newline into CRLF: the end marker tells.
	if strings.Contains(out, "@@end\r\n") {
		out = strings.ReplaceAll(out, "\r\n", "\n")
	}
	cur := ""
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trimmed, "@@") {
			if cur != "" {
				f.sections[cur] = b.String()
			}
			cur = strings.TrimPrefix(trimmed, "@@")
			b.Reset()
			continue
		}
		b.WriteString(line)
	}
	if cur != "" {
		f.sections[cur] = b.String()
	}
	return f
}

// GatherFacts probes the host in one command, as root.
func GatherFacts(ctx context.Context, r Runner, dockerUser string) (*Facts, error) {
	res, err := r.RunSudo(ctx, factsScript(dockerUser))
	if err != nil {
		return nil, err
	}
	f := parseFacts(string(res.Stdout))
	if _, ok := f.sections["end"]; !ok {
		return nil, fmt.Errorf("probing %s: the output ended early", r.Host())
	}
	return f, nil
}
