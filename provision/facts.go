package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/provision/osfamily"
)

// Facts is what one round trip tells of a host before anything changes.
type Facts struct {
	sections map[string]string
}

// Section returns the raw text of one probe.
func (f *Facts) Section(name string) string { return strings.TrimRight(f.sections[name], "\n") }

// Has tells whether a command is on the host's PATH.
func (f *Facts) Has(cmd string) bool {
	return slices.Contains(strings.Split(f.Section("commands"), "\n"), cmd)
}

var versionRE = regexp.MustCompile(`\d+\.\d+\.\d+`)

// DockerVersion is the installed engine's version ("" when none): the
// package's version when a Debian package of it is installed (that is what
// a pinned install asks apt for), else what dockerd says.
func (f *Facts) DockerVersion() string {
	v := versionRE.FindString(f.Section("docker-version"))
	if v == "" {
		return ""
	}
	if p := versionRE.FindString(f.dockerPackage()); p != "" {
		return p
	}
	return v
}

// dockerPackage is the installed Debian package's version ("" when none is
// installed: dpkg-query also lists packages removed but not purged).
func (f *Facts) dockerPackage() string {
	for _, l := range strings.Split(f.Section("docker-package"), "\n") {
		if v, ok := strings.CutPrefix(l, "install ok installed "); ok {
			return v
		}
	}
	return ""
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
const rpmProbe = "docker-ce docker-ce-cli containerd.io container-selinux yum-utils dnf-plugins-core " + osfamily.ConflictingPackages

// RPMInstalled tells whether the facts saw an rpm package installed.
func (f *Facts) RPMInstalled(pkg string) bool {
	for _, l := range strings.Split(f.Section("rpm"), "\n") {
		if strings.TrimSpace(l) == pkg {
			return true
		}
	}
	return false
}

// probeCmd is one section of the facts probe: its name and its shell.
type probeCmd struct{ name, cmd string }

// hostProbes read the host, its docker user and its Docker install.
func hostProbes(dockerUser string) []probeCmd {
	u := shell.Quote(dockerUser)
	return []probeCmd{
		{"os-release", "cat /etc/os-release"},
		{"hostname", "hostname"},
		{"hosts", "cat /etc/hosts"},
		{"user", "id -un " + u + " && id -nG " + u},
		{"authorized-keys", `pw=$(getent passwd ` + u + `) && cat "$(printf '%s\n' "$pw" | cut -d: -f6)/.ssh/authorized_keys"`},
		{"commands", "for c in systemctl hostnamectl apt-get yum dnf rpm dockerd docker usermod useradd curl ufw firewall-cmd getenforce subscription-manager; do command -v $c >/dev/null && echo $c; done"},
		// The installed dockerd's version: that of the running daemon when
		// it runs the installed binary (after a package upgrade its exe
		// reads "... (deleted)"), which costs nothing more; else `dockerd
		// --version`, the probe's dearest command (a large binary to
		// start). CentOS 7's own docker package names its daemon
		// dockerd-current.
		{"docker-version", `if [ -n "$shoal_ping" ] && e=$(readlink /proc/"$shoal_dpid"/exe) && d=$(command -v dockerd) && [ "$e" = "$(readlink -f "$d")" ]; then echo "Docker version $shoal_ping (the running dockerd)"; else dockerd --version || dockerd-current --version; fi`},
		// The Debian package's version: a re-built package of the same
		// binaries (a local repository) has its own.
		// (Only "install ok installed" counts: dockerPackage.)
		{"docker-package", "dpkg-query -W -f '${Status} ${Version}\\n' docker-ce docker.io"},
		// One rpm call answers for every package the RHEL family cares
		// about; a missing one prints "package X is not installed".
		{"rpm", "rpm -q --qf '%{NAME}\\n' " + rpmProbe},
		{"docker-group", "getent group docker"},
		{"daemon-json-exists", "test -e /etc/docker/daemon.json && echo yes"},
		{"daemon-json", "cat /etc/docker/daemon.json"},
		{"daemon-json-backup", "test -e " + daemonJSONBackup + " && echo yes"},
		{"tls", "cd " + tlsDir + " && sha256sum ca.pem server.pem server-key.pem"},
		{"dropin", "cat " + dropInPath},
		// The lines `systemctl cat docker.service` prints (the unit file,
		// then each drop-in, each after "# PATH"), from the paths the head's
		// one systemctl call read: a systemctl call less. systemctl itself
		// where it did not name the file.
		{"unit", `if [ -n "$shoal_dfrag" ]; then set -f; for f in $shoal_dfrag $shoal_ddropins; do printf '# %s\n' "$f"; cat "$f"; echo; done; else systemctl cat docker.service; fi`},
		{"enabled", `echo "$shoal_denabled"`},
		{"active", `echo "$shoal_dactive"`},
		{"dockerd-pid", `echo "$shoal_dpid"`},
		{"daemon-id", `echo "$shoal_boot $shoal_dpid $shoal_dstart"`},
	}
}

// networkProbes read the firewalls and the swarm interface.
func networkProbes() []probeCmd {
	return []probeCmd{
		{"firewalld", `echo "$shoal_factive"`},
		// "IFACE ZONE": the interface that carries swarm traffic and the
		// zone that governs it (the default zone when it has none).
		{"firewalld-zone", `[ "$shoal_factive" = active ] && shoal_zone`},
		// Runtime and permanent both: a port open in only one of them is
		// either gone at the next reload or not open yet.
		{"firewalld-runtime", `[ "$shoal_factive" = active ] && z=$(shoal_zone | cut -d' ' -f2) && firewall-cmd --zone="$z" --list-all`},
		{"firewalld-permanent", `[ "$shoal_factive" = active ] && z=$(shoal_zone | cut -d' ' -f2) && firewall-cmd --permanent --zone="$z" --list-all`},
		// Whether firewalld's runtime configuration has Docker's zone
		// ("yes"/"no"): without it, dockerd's next start makes it and
		// reloads firewalld. Then every zone, runtime and permanent: the
		// rules only in the runtime one are what that reload drops
		// (firewalldKeepStep puts them back).
		{"firewalld-docker-zone", `shoal_dz=; [ "$shoal_factive" = active ] && { if firewall-cmd --get-zones | tr ' ' '\n' | grep -qx docker; then shoal_dz=yes; else shoal_dz=no; fi; echo "$shoal_dz"; }`},
		{"firewalld-all-runtime", `[ "$shoal_dz" = no ] && firewall-cmd --list-all-zones`},
		{"firewalld-all-permanent", `[ "$shoal_dz" = no ] && firewall-cmd --permanent --list-all-zones`},
		// ip_vs: loaded, loadable, kept loaded (ipvsStep).
		{"ip-vs", ipvsProbe()},
		// iptables' INPUT, shoal's chain script and unit (iptablesStep).
		{"iptables", iptablesProbe},
		// The swarm interface when it is a vmxnet3 NIC (vmxnet3Step).
		{"vmxnet3", vmxnet3Probe},
	}
}

// systemProbes read SELinux, the kernel, the package manager and its
// repositories, and the running daemon.
func systemProbes() []probeCmd {
	return []probeCmd{
		// verbose for the default policy: "allow (incoming)" opens all.
		{"ufw", "ufw status verbose"},
		{"selinux", "getenforce"},
		// CentOS 7's docker package passes --selinux-enabled in OPTIONS;
		// the same key in daemon.json would stop dockerd.
		{"docker-sysconfig", "grep -h -- '--selinux-enabled' /etc/sysconfig/docker"},
		// dockerd refuses selinux-enabled with overlay2 on a kernel without
		// security_inode_copy_up (CentOS 7 before 7.4): moby looks for it in
		// /proc/kallsyms, and so does this.
		{"kernel", "uname -r"},
		// Who holds the package manager's lock now (provisioning waits for
		// it before it installs, and says so up front).
		// Read only where Docker is not installed and running: a host
		// whose Docker runs needs packages only for an upgrade, and the
		// install step waits for the lock and names its holder then.
		{"package-lock", `if [ "$shoal_dactive" = active ] && command -v dockerd >/dev/null; then :; else ` + osfamily.LockProbe + `; fi`},
		// Only read where SELinux can be enforcing (getenforce is there):
		// nothing else asks, and grepping /proc/kallsyms is a tenth of the
		// probe's time on a host that answers everything else at once.
		{"overlay-selinux", "command -v getenforce >/dev/null && if [ -r /proc/kallsyms ]; then if grep -q ' security_inode_copy_up$' /proc/kallsyms; then echo yes; else echo no; fi; fi"},
		// The RHEL family's repositories: every file's name, the text of
		// each *.repo, and whether the servers of the enabled ones (not
		// Docker's) answer at all (curl's 000: no DNS, no connection), all
		// at once: a probe costs at most 5 s however many there are.
		{"yum-repos", `[ -d /etc/yum.repos.d ] && for f in /etc/yum.repos.d/*; do [ -f "$f" ] || continue; printf '%s%s\n' ` + shell.Quote(osfamily.RepoFileMarker) + ` "$f"; case "$f" in *.repo) cat "$f"; echo;; esac; done`},
		{"repo-reach", `[ -d /etc/yum.repos.d ] && command -v curl >/dev/null && hs=$(cat /etc/yum.repos.d/*.repo 2>/dev/null | awk '` + reachAwk + `' | sort -u) && set -f && for h in $hs; do printf '%s %s\n' "$h" "$(curl -s -o /dev/null --connect-timeout 3 -m 5 -w '%{http_code}' "$h/")" & done; wait`},
		// A daemon that answers here and is not restarted needs no wait for
		// it afterwards. Its version from /_ping (pingVersionFunc); the
		// docker CLI, a tenth as cheap, when curl is not there (bounded: a
		// hung daemon must not hang the probe).
		{"docker-info", `[ "$shoal_dactive" = active ] && if [ -n "$shoal_ping" ]; then printf '{"Version":"%s"}\n' "$shoal_ping"; else timeout 20 docker version --format '{"Version":{{json .Server.Version}}}'; fi`},
	}
}

// factsScript prints, for each probe, a marker line "@@NONCE NAME", the
// probe's output as it is, and a newline. NONCE is random for each run, so
// no file content (no final newline, CRLF, a line that looks like a marker)
// can run into the next section; and the output needs no encoding, which
// would cost two more processes a probe on a busy host. It only reads.
// extra are the caller's own probes.
//
// addr is the address (or interface name) swarm traffic uses: the interface
// that has it (else the default route's; never lo, as when shoal reaches
// the host through a forwarded port) carries swarm traffic, and its
// firewalld zone is the one that must let swarm's ports in.
func factsScript(dockerUser, addr, nonce string, known RunningDaemon, extra ...Probe) string {
	probes := slices.Concat(hostProbes(dockerUser), networkProbes(), systemProbes())
	own := len(probes) // from here on, the caller's
	for _, p := range extra {
		probes = append(probes, probeCmd{p.Name, p.Cmd})
	}
	var b strings.Builder
	b.WriteString(factsScriptHead + "\n")
	b.WriteString(unitsHead)
	b.WriteString(pingLine(known))
	b.WriteString("shoal_iface() { i=$(ip -o addr show 2>/dev/null | awk -v a=" + shell.Quote(addr) + ` '` + ifaceAwk + `'); ` +
		`[ -n "$i" ] || i=$(ip -o route show default 2>/dev/null | awk '{ for (n = 1; n < NF; n++) if ($n == "dev") { print $(n+1); exit } }'); echo "$i"; }` + "\n")
	b.WriteString(`shoal_zone() { i=$(shoal_iface); ` +
		`z=$(firewall-cmd --get-zone-of-interface="$i" 2>/dev/null) && [ "$z" != "no zone" ] || z=$(firewall-cmd --get-default-zone); echo "$i $z"; }` + "\n")
	for i, p := range probes {
		// A probe that fails prints what it printed: its status is not a fact.
		open, end := "{ ", "; }"
		if i >= own || ownShell(p.name) {
			open, end = "(", ")"
		}
		fmt.Fprintf(&b, "echo %s; %s%s%s 2>/dev/null; echo\n", shell.Quote("@@"+nonce+" "+p.name), open, p.cmd, end)
	}
	fmt.Fprintf(&b, "echo %s", shell.Quote("@@"+nonce+" end"))
	return b.String()
}

// ownShell tells whether one of provisioning's probes runs in a subshell
// of its own: it changes the directory or a shell option, starts jobs, or
// its text comes from elsewhere. The others run in a brace group, a fork
// less each (together a seventh of the probe's cost): they set their
// variables before each use. The caller's probes all get a subshell.
func ownShell(name string) bool {
	switch name {
	case "tls", "unit", "package-lock", "repo-reach":
		return true
	}
	return false
}

// unitsHead reads docker's and firewalld's unit states in one systemctl
// call (a call costs as much as the rest of a section), and the running
// daemon's identity (shoal_boot, the boot's id; shoal_dstart, its start
// time in clock ticks), into shell variables the sections use:
// shoal_denabled, shoal_dactive, shoal_dpid, shoal_dfrag, shoal_ddropins
// (docker's unit file and drop-ins), shoal_factive; pingLine then sets
// shoal_ping, the running daemon's version.
// A unit that is not there reads as inactive with no file state, as
// is-active and is-enabled say.
const unitsHead = pingVersionFunc + `
shoal_denabled= shoal_dactive= shoal_dpid= shoal_dfrag= shoal_ddropins= shoal_factive= shoal_ping=
shoal_units=$(systemctl show docker.service firewalld.service -p Id -p UnitFileState -p ActiveState -p MainPID -p FragmentPath -p DropInPaths 2>/dev/null)
shoal_id= shoal_en= shoal_ac= shoal_pid= shoal_fr= shoal_di=
while IFS= read -r shoal_l; do
  case $shoal_l in
    Id=*) shoal_id=${shoal_l#*=} ;;
    UnitFileState=*) shoal_en=${shoal_l#*=} ;;
    ActiveState=*) shoal_ac=${shoal_l#*=} ;;
    MainPID=*) shoal_pid=${shoal_l#*=} ;;
    FragmentPath=*) shoal_fr=${shoal_l#*=} ;;
    DropInPaths=*) shoal_di=${shoal_l#*=} ;;
    '') case $shoal_id in
          docker.service) shoal_denabled=$shoal_en shoal_dactive=$shoal_ac shoal_dpid=$shoal_pid shoal_dfrag=$shoal_fr shoal_ddropins=$shoal_di ;;
          firewalld.service) shoal_factive=$shoal_ac ;;
        esac
        shoal_id= shoal_en= shoal_ac= shoal_pid= shoal_fr= shoal_di= ;;
  esac
done <<SHOAL_UNITS
$shoal_units

SHOAL_UNITS
shoal_boot= shoal_dstart=
read -r shoal_boot 2>/dev/null </proc/sys/kernel/random/boot_id
if [ "${shoal_dpid:-0}" != 0 ] && read -r shoal_l 2>/dev/null </proc/"$shoal_dpid"/stat; then
  set -f; set -- ${shoal_l##*) }; set +f; shoal_dstart=${20:-}
fi
`

// pingLine sets shoal_ping: from known while the daemon it names still
// runs (the same boot, pid and start time), else from /_ping.
func pingLine(known RunningDaemon) string {
	if !known.valid() {
		return "[ \"$shoal_dactive\" = active ] && shoal_ping=$(shoal_ping_version 20)\n"
	}
	return "if [ \"$shoal_dactive\" = active ]; then\n" +
		"  if [ \"$shoal_boot $shoal_dpid $shoal_dstart\" = " + shell.Quote(known.id()) + " ]; then shoal_ping=" + shell.Quote(known.Version) + "; else shoal_ping=$(shoal_ping_version 20); fi\n" +
		"fi\n"
}

// pingVersionFunc defines shoal_ping_version TIMEOUT: the running daemon's
// version from the Server header of its /_ping through curl (/version
// would run runc and docker-init to ask theirs). It returns 1 when no
// daemon answers, 2 when the one that answers is not Docker (podman's
// API): the callers then ask the docker CLI, or not.
const pingVersionFunc = `shoal_ping_version() {
  shoal_h=$(curl -fsS -m "$1" -o /dev/null -D - --unix-socket /var/run/docker.sock http://localhost/_ping 2>/dev/null) || return 1
  while IFS= read -r shoal_l; do
    case $shoal_l in
      [Ss]erver:\ Docker/[0-9]*) shoal_l=${shoal_l#*/}; echo "${shoal_l%%[!0-9A-Za-z.+~_-]*}"; return 0 ;;
    esac
  done <<SHOAL_PING
$shoal_h
SHOAL_PING
  return 2
}`

// factsScriptHead is the facts probe's first line.
const factsScriptHead = "# shoal facts probe"

// builtinProbe tells whether name is one of provisioning's own probes.
func builtinProbe(name string) bool {
	return name == "end" || strings.Contains(factsScript("u", "a", "n", RunningDaemon{}), "'@@n "+name+"'")
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

// RunningDocker is the version the running daemon answered the probe with
// ("" when it did not answer).
func (f *Facts) RunningDocker() string {
	var v struct{ Version string }
	if json.Unmarshal([]byte(f.Section("docker-info")), &v) != nil || !versionRE.MatchString(v.Version) {
		return ""
	}
	return v.Version
}

// RunningDaemon is a running dockerd: which boot, which process (its pid
// and start time; no other process of that boot has both) and the version
// it answered. Given the one the last run saw, the probe takes the version
// from it while that process runs, instead of asking the daemon (curl: a
// tenth of a no-op's cost to the host).
type RunningDaemon struct {
	Boot    string `json:"boot"`
	PID     int    `json:"pid"`
	Start   string `json:"start"`
	Version string `json:"version"`
}

var (
	bootIDRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	digitsRE      = regexp.MustCompile(`^[0-9]{1,20}$`)
	fullVersionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~_-]{0,63}$`)
)

// valid tells whether d names a daemon completely, in the forms the probe
// prints (and so may be compared in its text).
func (d RunningDaemon) valid() bool {
	return bootIDRE.MatchString(d.Boot) && d.PID > 0 && digitsRE.MatchString(d.Start) &&
		fullVersionRE.MatchString(d.Version) && versionRE.MatchString(d.Version)
}

func (d RunningDaemon) id() string { return fmt.Sprintf("%s %d %s", d.Boot, d.PID, d.Start) }

// Daemon is the running daemon the probe saw (zero when none answered, or
// it could not say which it is).
func (f *Facts) Daemon() RunningDaemon {
	fs := strings.Fields(f.Section("daemon-id"))
	if len(fs) != 3 {
		return RunningDaemon{}
	}
	pid, err := strconv.Atoi(fs[1])
	if err != nil {
		return RunningDaemon{}
	}
	d := RunningDaemon{Boot: fs[0], PID: pid, Start: fs[2], Version: f.RunningDocker()}
	if !d.valid() {
		return RunningDaemon{}
	}
	return d
}

// Probe is a read-only command whose output the caller wants from the same
// round trip as the facts (Report.Facts.Section(Name)). Its name must not be
// one of provisioning's own.
type Probe struct {
	Name, Cmd string
}

// ifaceAwk picks, from `ip -o addr show`, the interface that has the
// address a, or is named a; never lo.
const ifaceAwk = `$2 != "lo" { split($4, p, "/"); if (p[1] == a || $2 == a) { print $2; exit } }`

// reachAwk prints the scheme://host of each enabled repository that is not
// Docker's, from the concatenated *.repo files.
const reachAwk = `function out() { if (en && h != "") print h } /^[ \t]*\[/ { out(); en = 1; h = ""; if ($0 ~ /^[ \t]*\[docker-ce/) en = 0; next } ` +
	`/^[ \t]*enabled[ \t]*=/ { v = $0; sub(/^[^=]*=[ \t]*/, "", v); if (v !~ /^(1|[Tt]rue|[Yy]es)/) en = 0 } ` +
	`/^[ \t]*(baseurl|mirrorlist|metalink)[ \t]*=/ && h == "" { v = $0; sub(/^[^=]*=[ \t]*/, "", v); if (match(v, /^https?:\/\/[^\/ \t?#]+/)) h = substr(v, 1, RLENGTH) } END { out() }`

// probeAddr is the address or interface whose firewalld zone matters: the
// swarm address without its port, else the address shoal connects to.
func probeAddr(spec Spec, r Runner) string {
	a := spec.SwarmAddr
	if a == "" {
		return r.Host()
	}
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

var sectionRE = regexp.MustCompile(`^[a-z0-9-]+$`)

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// GatherFacts probes the host in one command, as root. addr is the address
// or interface that carries swarm traffic (see factsScript).
func GatherFacts(ctx context.Context, r Runner, dockerUser, addr string, known RunningDaemon, extra ...Probe) (*Facts, error) {
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	res, err := r.RunSudo(ctx, factsScript(dockerUser, addr, nonce, known, extra...))
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

// RepoDir is /etc/yum.repos.d as the probe saw it (empty off the RHEL
// family).
func (f *Facts) RepoDir() osfamily.RepoDir {
	return osfamily.ParseRepoFiles(f.sections["yum-repos"])
}

// Reach tells, per repository server, whether it answered the probe.
func (f *Facts) Reach() map[string]bool { return osfamily.ParseReach(f.Section("repo-reach")) }

// SwarmZone is the interface that carries swarm traffic and its firewalld
// zone ("" when firewalld does not run or the probe could not tell).
func (f *Facts) SwarmZone() (iface, zone string) {
	w := strings.Fields(f.Section("firewalld-zone"))
	if len(w) == 2 {
		return w[0], w[1]
	}
	if len(w) == 1 {
		return "", w[0]
	}
	return "", ""
}
