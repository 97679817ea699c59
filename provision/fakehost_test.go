package provision

// A scripted host for transcript tests: it answers the facts probe the way
// the OS of a fixture (testdata/hosts/*.txt) would, models the effect of
// every command provisioning sends (so that a second run sees what the
// first one did), and records each call. A command it does not know fails
// the test: every command in a golden transcript is one the fake understood.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/provision/osfamily"
	"github.com/shoal-dev/shoal/templates"
)

// fixture is one parsed testdata/hosts file: a comment, then txtar-style
// "-- name --" sections; host, spec and install hold "key: value" lines.
type fixture struct {
	name     string
	comment  string
	sections map[string]string
}

func loadFixture(t testing.TB, path string) fixture {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{sections: map[string]string{}}
	base := path[strings.LastIndex(path, "/")+1:]
	f.name = strings.TrimSuffix(base, ".txt")
	cur := ""
	var buf strings.Builder
	flush := func() {
		if cur == "" {
			f.comment = buf.String()
		} else {
			f.sections[cur] = buf.String()
		}
		buf.Reset()
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		l := strings.TrimRight(line, "\n")
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") && len(l) > 6 {
			flush()
			cur = strings.TrimSuffix(strings.TrimPrefix(l, "-- "), " --")
			continue
		}
		buf.WriteString(line)
	}
	flush()
	return f
}

// kv reads a section of "key: value" lines; a key may repeat.
func (f fixture) kv(section string) map[string][]string {
	out := map[string][]string{}
	for _, l := range strings.Split(f.sections[section], "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(l) == "" {
			continue
		}
		out[strings.TrimSpace(k)] = append(out[strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	return out
}

func (f fixture) get(section, key string) string {
	v := f.kv(section)[key]
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Fake TLS material: only its bytes matter.
var (
	fakeCA   = []byte("-----BEGIN CERTIFICATE-----\nfake CA for transcript tests\n-----END CERTIFICATE-----\n")
	fakeCert = []byte("-----BEGIN CERTIFICATE-----\nfake server certificate\n-----END CERTIFICATE-----\n")
	fakeKey  = []byte("-----BEGIN PRIVATE KEY-----\nfake server key\n-----END PRIVATE KEY-----\n")
)

// spec builds the provisioning Spec the fixture asks for.
func (f fixture) spec() Spec {
	s := Spec{
		Hostname:   f.get("spec", "hostname"),
		DockerUser: f.get("spec", "docker-user"),
		Install: osfamily.Install{
			Mode:    validate.InstallMode(f.get("spec", "install")),
			Version: f.get("spec", "version"),
			RepoURL: f.get("spec", "repo-url"),
			// Checked by internal/validate before a Spec is made.
			OSMirror:           f.get("spec", "os-mirror"),
			ReplaceConflicting: f.get("spec", "replace-conflicting") == "yes",
		},
		lockPoll: time.Millisecond,
		Daemon: DaemonSettings{
			InsecureRegistries: strings.Fields(f.get("spec", "insecure-registries")),
			RegistryMirrors:    strings.Fields(f.get("spec", "registry-mirrors")),
			Labels:             strings.Fields(f.get("spec", "labels")),
		},
		FirewallPorts:  strings.Fields(f.get("spec", "firewall-ports")),
		AuthorizedKeys: f.kv("spec")["authorized-key"],
	}
	for _, e := range strings.Split(f.get("spec", "hosts"), ";") {
		if w := strings.Fields(e); len(w) >= 2 {
			s.Hosts = append(s.Hosts, HostEntry{IP: w[0], Names: w[1:]})
		}
	}
	if p := f.get("spec", "tls"); p != "" {
		port, _ := strconv.Atoi(p)
		s.TLS = &TLS{CA: fakeCA, Cert: fakeCert, Key: fakeKey, Port: port}
	}
	return s
}

type fakeUser struct {
	groups []string // the first is the primary group
	keys   []string
}

// fakeHost is the simulated machine.
type fakeHost struct {
	t    testing.TB
	fix  fixture
	user string
	sudo string // "", "requiretty" or "password"
	tty  bool
	log  []string

	osRelease string
	hostname  string
	files     map[string]string
	users     map[string]*fakeUser
	groups    map[string]bool
	commands  map[string]bool
	rpms      map[string]bool
	docker    string // the engine's version, "" when none
	unit      string
	enabled   bool
	active    bool
	pid       int
	repo      string // the docker-ce repository the host knows, "" none
	aptFresh  bool   // apt-get update ran since the repo was added

	firewalld  bool
	fwServices []string
	fwRuntime  []string
	fwPerm     []string
	ufw        bool
	ufwRules   []string
	selinux    string
	// fwZone is the zone of the interface that carries swarm traffic;
	// fwWrong records ports opened in any other zone.
	fwZone, fwIface string
	fwWrong         []string
	// fwDockerZone: firewalld's runtime configuration has Docker's zone;
	// without it dockerd's next start makes it and reloads firewalld,
	// which drops fwRuntime back to fwPerm.
	fwDockerZone bool
	// ipvsModule: the kernel has ip_vs as a module; ipvsLoaded: loaded (or
	// built in, or the container's host has it loaded).
	ipvsModule, ipvsLoaded bool
	// iptablesInput is `iptables -S INPUT` ("" when iptables is not there).
	iptablesInput   string
	iptablesEnabled bool
	// vmxnet3 is the swarm interface when it is a vmxnet3 NIC; its tx
	// checksum offload is on until ethtool turns it off.
	vmxnet3, vmxOffload string
	vmxEnabled          bool

	// deadHosts are repository servers that do not answer (scheme://host).
	deadHosts map[string]bool
	// lockHeld is how many more lock checks find the lock held.
	lockHeld int
	// lockRace is how many package commands find the lock taken by
	// another process although the check just found it free.
	lockRace int
	removed  []string
	// refuses are daemon.json keys this dockerd does not know
	// (host: dockerd-refuses): --validate refuses them (Docker 23 on), and
	// dockerd does not start with them.
	refuses []string
	// socketRestarts counts docker.socket's restarts.
	socketRestarts int
	// reenabled are the units `systemctl reenable` enabled.
	reenabled map[string]bool
}

func newFakeHost(t testing.TB, fix fixture) *fakeHost {
	h := &fakeHost{
		t:         t,
		fix:       fix,
		user:      fix.get("host", "user"),
		sudo:      fix.get("host", "sudo"),
		osRelease: fix.sections["os-release"],
		hostname:  fix.get("host", "hostname"),
		files:     map[string]string{"/etc/hosts": fix.sections["hosts"]},
		users:     map[string]*fakeUser{},
		groups:    map[string]bool{},
		commands:  map[string]bool{},
		rpms:      map[string]bool{},
		docker:    fix.get("host", "docker"),
		selinux:   fix.get("host", "selinux"),
		firewalld: fix.get("host", "firewalld") == "active",
		ufw:       fix.get("host", "ufw") == "active",
		pid:       0,
	}
	for _, c := range strings.Fields(fix.get("host", "commands")) {
		h.commands[c] = true
	}
	for _, p := range strings.Fields(fix.get("host", "rpm")) {
		h.rpms[p] = true
	}
	for _, u := range strings.Fields(fix.get("host", "users")) {
		name, groups, _ := strings.Cut(u, ":")
		h.users[name] = &fakeUser{groups: strings.Split(groups, ",")}
		for _, g := range h.users[name].groups {
			h.groups[g] = true
		}
	}
	for _, g := range strings.Fields(fix.get("host", "groups")) {
		h.groups[g] = true
	}
	if d, ok := fix.sections["daemon.json"]; ok {
		h.files[daemonJSONPath] = d
	}
	if h.docker != "" {
		h.unit = fix.sections["unit"]
		h.commands["dockerd"], h.commands["docker"] = true, true
		st := fix.get("host", "docker-state")
		h.enabled, h.active = strings.Contains(st, "enabled"), strings.Contains(st, " active") || strings.HasPrefix(st, "active")
		if h.active {
			h.pid = 1000
		}
	}
	h.fwServices = strings.Fields(fix.get("host", "firewalld-services"))
	h.fwRuntime = strings.Fields(fix.get("host", "firewalld-ports"))
	h.fwPerm = h.fwRuntime
	if p, ok := fix.kv("host")["firewalld-permanent-ports"]; ok {
		h.fwPerm = strings.Fields(p[0])
	}
	h.ufwRules = strings.Fields(fix.get("host", "ufw-rules"))
	h.fwZone, h.fwIface = fix.get("host", "firewalld-zone"), fix.get("host", "firewalld-iface")
	h.fwDockerZone = fix.get("host", "firewalld-docker-zone") != "no"
	if p := fix.get("host", "iptables-policy"); p != "" {
		h.iptablesInput = "-P INPUT " + p + "\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
		if r := fix.get("host", "iptables-rule"); r != "" {
			h.iptablesInput += r + "\n"
		}
	}
	h.vmxnet3, h.vmxOffload = fix.get("host", "vmxnet3"), "on"
	// By default ip_vs is built in: nothing to do.
	h.ipvsLoaded, h.ipvsModule = true, false
	if v := fix.get("host", "ip-vs"); v != "" {
		st := parseIPVS(v)
		h.ipvsLoaded, h.ipvsModule = st.loaded, st.module
	}
	if h.fwZone == "" {
		h.fwZone = "public"
	}
	if h.fwIface == "" {
		h.fwIface = "eth0"
	}
	h.deadHosts = map[string]bool{}
	for _, d := range strings.Fields(fix.get("host", "dead-repo-hosts")) {
		h.deadHosts[d] = true
	}
	h.refuses = strings.Fields(fix.get("host", "dockerd-refuses"))
	h.lockHeld, _ = strconv.Atoi(fix.get("host", "lock-held"))
	h.lockRace, _ = strconv.Atoi(fix.get("host", "lock-race"))
	// -- repos -- holds /etc/yum.repos.d: "#@file PATH" then its text.
	name := ""
	for _, l := range strings.SplitAfter(fix.sections["repos"], "\n") {
		if f, ok := strings.CutPrefix(strings.TrimRight(l, "\n"), osfamily.RepoFileMarker); ok {
			name = f
			h.files[name] = ""
			continue
		}
		if name != "" {
			h.files[name] += l
		}
	}
	return h
}

// --- the Runner ---------------------------------------------------------

func (h *fakeHost) Host() string { return "10.9.9.9" }
func (h *fakeHost) User() string { return h.user }

func (h *fakeHost) Run(ctx context.Context, cmd string) (sshrun.Result, error) {
	h.log = append(h.log, "run:   "+cmd)
	return h.exec(cmd)
}

func (h *fakeHost) RunSudo(ctx context.Context, cmd string) (sshrun.Result, error) {
	if err := ctx.Err(); err != nil {
		return sshrun.Result{ExitCode: -1}, err
	}
	h.log = append(h.log, h.sudoTag()+h.show(cmd))
	if err := h.sudoRefuses(cmd); err != nil {
		h.log = append(h.log, "       -> "+outcome(err))
		return sshrun.Result{ExitCode: 1}, err
	}
	res, err := h.exec(cmd)
	if err != nil {
		h.log = append(h.log, "       -> "+outcome(err))
	}
	return res, err
}

func (h *fakeHost) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode, owner string) error {
	if owner == "" {
		owner = "root"
	}
	h.log = append(h.log, fmt.Sprintf("write: %s (%04o %s)", path, mode.Perm(), owner))
	if strings.HasSuffix(path, ".pem") {
		h.log = append(h.log, fmt.Sprintf("       | (%d bytes of PEM)", len(data)))
	} else {
		for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
			h.log = append(h.log, strings.TrimRight("       | "+l, " "))
		}
	}
	if err := h.sudoRefuses("write " + path); err != nil {
		h.log = append(h.log, "       -> "+outcome(err))
		return err
	}
	h.files[path] = string(data)
	return nil
}

// progress records what provisioning tells the user besides the steps
// (waits, warnings) in the transcript.
func (h *fakeHost) progress(step string, st ui.Status, detail string) {
	if st == ui.Info {
		h.log = append(h.log, "info:  "+step+": "+detail)
	}
}

// SetSudoTTY makes the fake a SudoTTYRunner, as sshrun will be.
func (h *fakeHost) SetSudoTTY(on bool) {
	h.log = append(h.log, fmt.Sprintf("tty:   SetSudoTTY(%v)", on))
	h.tty = on
}

func (h *fakeHost) sudoTag() string {
	if h.tty {
		return "sudo+pty: "
	}
	return "sudo:  "
}

// show shortens the facts probe: its full text is a golden of its own.
func (h *fakeHost) show(cmd string) string {
	if isFactsProbe(cmd) {
		return "<facts probe: testdata/golden/facts-probe.sh>"
	}
	if isLockCheck(cmd) {
		return "<package lock check: who holds the package manager's lock>"
	}
	if cmd == dockerVersionCmd {
		return "<the daemon's version: curl /_ping, else docker info>"
	}
	if cmd == installDaemonJSONCmd {
		return "<daemon.json.shoal-new checked by dockerd --validate where it can, then put in place (the old one kept as .shoal-prev)>"
	}
	if cmd == restoreDaemonJSONCmd {
		return "<daemon.json.shoal-prev put back (or daemon.json removed), dockerd restarted>"
	}
	return cmd
}

func isLockCheck(cmd string) bool {
	return cmd == (osfamily.Debian{}).LockHolders() || cmd == (osfamily.RHEL{}).LockHolders()
}

func isFactsProbe(cmd string) bool { return strings.HasPrefix(cmd, factsScriptHead+"\n") }

// sudoRefuses is what sudo says before running anything.
func (h *fakeHost) sudoRefuses(cmd string) error {
	if h.user == "root" {
		return nil
	}
	re := &sshrun.RunError{Host: h.Host(), Cmd: "sudo -n sh -c " + sshrun.ShellQuote(cmd), ExitCode: 1}
	switch h.sudo {
	case "requiretty":
		if !h.tty {
			re.Stderr = "sudo: sorry, you must have a tty to run sudo"
			return re
		}
	case "password":
		re.Stderr = "sudo: a password is required"
		return &sshrun.SudoError{Host: h.Host(), User: h.user, Err: re}
	}
	return nil
}

// outcome is a failed call in one line: exit status and stderr.
func outcome(err error) string {
	var re *sshrun.RunError
	if errors.As(err, &re) {
		return fmt.Sprintf("exit %d: %s", re.ExitCode, strings.ReplaceAll(re.Stderr, "\n", " / "))
	}
	l, _, _ := strings.Cut(err.Error(), "\n")
	return l
}

// fail is a command that ran and exited non-zero.
func (h *fakeHost) fail(cmd string, code int, stderr string) (sshrun.Result, error) {
	return sshrun.Result{Stderr: []byte(stderr + "\n"), ExitCode: code},
		&sshrun.RunError{Host: h.Host(), Cmd: cmd, ExitCode: code, Stderr: stderr}
}

func ok(stdout string) (sshrun.Result, error) {
	return sshrun.Result{Stdout: []byte(stdout)}, nil
}

// --- what commands do -----------------------------------------------------

var (
	reHostname  = regexp.MustCompile(`^printf '%s\\n' '([^']*)' > /etc/hostname && hostname `)
	reKey       = regexp.MustCompile(`printf '%s\\n' '([^']*)' >> `)
	reUsermod   = regexp.MustCompile(`\{ getent group docker >/dev/null \|\| groupadd docker; \} && usermod -aG docker '([^']*)'`)
	reUseradd   = regexp.MustCompile(`^if getent group '([^']*)' >/dev/null; then useradd -m -s /bin/bash -g '[^']*' '[^']*'; else useradd -m -s /bin/bash '[^']*'; fi && `)
	rePkgInst   = regexp.MustCompile(`^(yum|dnf) install -y -q (.+)$`)
	reAddRepo   = regexp.MustCompile(`^(yum-config-manager|dnf config-manager) --add-repo (\S+)$`)
	reSed       = regexp.MustCompile(`^sed -i 's\+([^+]+)\+([^+]+)\+' ` + regexp.QuoteMeta(osfamily.DockerRepoFile) + `$`)
	reAptInst   = regexp.MustCompile(`^apt-get install -y -q (.+?) \|\| \{ apt-get update -q && apt-get install -y -q (.+); \}$`)
	reAptPlain  = regexp.MustCompile(`^apt-get install -y -q (.+)$`)
	reAptGPG    = regexp.MustCompile(`^curl -fsSL (\S+)/gpg -o /etc/apt/keyrings/docker.asc && chmod a\+r /etc/apt/keyrings/docker.asc$`)
	reAptList   = regexp.MustCompile(`^echo "deb \[arch=\$\(dpkg --print-architecture\) signed-by=/etc/apt/keyrings/docker.asc\] "'(\S+) (\S+) stable' > /etc/apt/sources.list.d/docker.list$`)
	reUfwAllow  = regexp.MustCompile(`^ufw allow (\S+)$`)
	rePinnedRPM = regexp.MustCompile(`^(docker-ce-cli|docker-ce|docker)-([0-9][0-9.]*\*?)$`)
	rePkgRemove = regexp.MustCompile(`^(yum|dnf) remove -y -q (.+)$`)
	reMoveAside = regexp.MustCompile(`^mv -n '(/etc/yum\.repos\.d/[^']+)' '([^']+)'$`)
	reFwZoneAdd = regexp.MustCompile(`^firewall-cmd( --permanent)?(?: --zone=(\S+))?((?: --add-port=\S+)+)$`)
	reDisabled  = regexp.MustCompile(`(?m)^(enabled\s*=\s*)0`)
	reRepoOn    = regexp.MustCompile(`^(?:yum-config-manager --enable |subscription-manager repos --enable=)(\S+)$`)
)

func (h *fakeHost) exec(cmd string) (sshrun.Result, error) {
	cmd = strings.TrimPrefix(cmd, "export DEBIAN_FRONTEND=noninteractive; ")
	switch {
	case isFactsProbe(cmd):
		return ok(h.facts(cmd))
	case isLockCheck(cmd):
		if h.lockHeld > 0 {
			h.lockHeld--
			if strings.Contains(cmd, "dpkg") {
				return ok("unattended-upgr (pid 812)\n")
			}
			return ok("yum (pid 812)\n")
		}
		return ok("")
	case cmd == (osfamily.RHEL{Major: 7}).ListVersionsCmd() || cmd == (osfamily.RHEL{Major: 8}).ListVersionsCmd():
		return h.listVersions(cmd)
	case cmd == osfamily.MadisonCmd:
		if h.repo == "" || !h.aptFresh {
			return ok("")
		}
		var out []string
		offered := strings.Fields(h.fix.get("install", "offered-apt"))
		if len(offered) == 0 {
			offered = []string{h.fix.get("install", "version")}
		}
		codename := fakeCodename(h.osRelease)
		for _, v := range offered {
			out = append(out, fmt.Sprintf(" docker-ce | 5:%s-1~%s | %s %s/stable amd64 Packages", v, codename, h.repo, codename))
		}
		return ok(strings.Join(out, "\n") + "\n")
	case rePkgRemove.MatchString(cmd):
		for _, p := range strings.Fields(rePkgRemove.FindStringSubmatch(cmd)[2]) {
			delete(h.rpms, p)
			h.removed = append(h.removed, p)
		}
		return ok("")
	case reMoveAside.MatchString(cmd) || strings.Contains(cmd, " && mv -n "):
		for _, c := range strings.Split(cmd, " && ") {
			m := reMoveAside.FindStringSubmatch(c)
			if m == nil {
				h.t.Errorf("%s: unknown move: %q", h.fix.name, c)
				return h.fail(cmd, 1, "unknown")
			}
			if _, ok := h.files[m[2]]; ok {
				continue // mv -n keeps the first backup
			}
			h.files[m[2]] = h.files[m[1]]
			delete(h.files, m[1])
		}
		return ok("")
	case reRepoOn.MatchString(cmd):
		id := reRepoOn.FindStringSubmatch(cmd)[1]
		if strings.HasPrefix(cmd, "subscription-manager") && !h.commands["subscription-manager"] {
			return h.fail(cmd, 127, "sh: subscription-manager: command not found")
		}
		for f, text := range h.files {
			if i := strings.Index(text, "["+id+"]"); i >= 0 && strings.HasPrefix(f, "/etc/yum.repos.d/") {
				h.files[f] = text[:i] + reDisabled.ReplaceAllString(text[i:], "${1}1")
				return ok("")
			}
		}
		return h.fail(cmd, 1, "Error: "+id+" is not a valid repository ID.")
	case cmd == `sed -i 's/\$releasever/7/g' `+osfamily.DockerRepoFile:
		h.files[osfamily.DockerRepoFile] = strings.ReplaceAll(h.files[osfamily.DockerRepoFile], "$releasever", "7")
		return ok("")
	case cmd == dockerVersionCmd:
		if !h.active {
			return h.fail(cmd, 1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
		}
		return ok(h.docker + "\n")
	case reHostname.MatchString(cmd):
		h.hostname = reHostname.FindStringSubmatch(cmd)[1]
		return ok("")
	case strings.Contains(cmd, "usermod -aG docker "):
		return h.userStep(cmd)
	case strings.HasPrefix(cmd, "mkdir -p /etc/docker"):
		if strings.HasSuffix(cmd, " && cp -p "+daemonJSONPath+" "+daemonJSONBackup) {
			h.files[daemonJSONBackup] = h.files[daemonJSONPath]
		} else if cmd != "mkdir -p /etc/docker" {
			break
		}
		return ok("")
	case strings.HasPrefix(cmd, "[ -d '/etc/") && strings.Contains(cmd, "' ] || install -d -m 0755 '/etc/"):
		return ok("")
	case cmd == installDaemonJSONCmd:
		return h.installDaemonJSON(cmd)
	case cmd == restoreDaemonJSONCmd:
		if prev, ok := h.files[daemonJSONPrev]; ok {
			h.files[daemonJSONPath] = prev
			delete(h.files, daemonJSONPrev)
		} else {
			delete(h.files, daemonJSONPath)
		}
		return h.systemctl("systemctl restart docker")
	case cmd == dockerdWhyCmd:
		return ok(fmt.Sprintf("docker.service - Docker Application Container Engine\n     Active: %s\n%s\n", map[bool]string{true: "active (running)", false: "failed"}[h.active], h.dockerdRefusal()))
	case strings.HasPrefix(cmd, "systemctl "):
		return h.systemctl(cmd)
	case cmd == "sh "+iptablesScriptPath+" && systemctl daemon-reload && systemctl enable "+iptablesUnit:
		if h.iptablesInput == "" {
			return h.fail(cmd, 127, "iptables: command not found")
		}
		if !strings.Contains(h.iptablesInput, "-A INPUT -j "+iptablesChain) {
			h.iptablesInput += "-A INPUT -j " + iptablesChain + "\n"
		}
		h.iptablesEnabled = true
		return ok("")
	case h.vmxnet3 != "" && cmd == "ethtool -K "+h.vmxnet3+" tx-checksum-ip-generic off && systemctl daemon-reload && systemctl enable "+vmxnet3Unit:
		h.vmxOffload, h.vmxEnabled = "off", true
		return ok("")
	case cmd == "modprobe ip_vs":
		if !h.ipvsModule && !h.ipvsLoaded {
			return h.fail(cmd, 1, "modprobe: FATAL: Module ip_vs not found in directory /lib/modules/5.14.0-427.13.1.el9_4.x86_64")
		}
		h.ipvsLoaded = true
		return ok("")
	case strings.HasPrefix(cmd, "firewall-cmd ") || strings.HasPrefix(cmd, "ufw "):
		return h.firewall(cmd)
	case h.lockRace > 0 && (rePkgInst.MatchString(cmd) || reAptInst.MatchString(cmd) || reAptPlain.MatchString(cmd)):
		h.lockRace--
		if strings.HasPrefix(cmd, "apt-get") {
			return h.fail(cmd, 100, "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 845 (apt-get)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?")
		}
		return h.fail(cmd, 1, "error: can't create transaction lock on /var/lib/rpm/.rpm.lock (Resource temporarily unavailable)")
	case rePkgInst.MatchString(cmd):
		m := rePkgInst.FindStringSubmatch(cmd)
		return h.rpmInstall(cmd, m[1], strings.Fields(m[2]))
	case reAddRepo.MatchString(cmd):
		m := reAddRepo.FindStringSubmatch(cmd)
		tool := map[string]string{"yum-config-manager": "yum-utils", "dnf config-manager": "dnf-plugins-core"}[m[1]]
		if !h.rpms[tool] {
			if m[1] == "yum-config-manager" {
				return h.fail(cmd, 127, "sh: yum-config-manager: command not found")
			}
			return h.fail(cmd, 1, "No such command: config-manager. Please use /usr/bin/dnf --help")
		}
		// docker-ce.repo names download.docker.com, whoever serves it.
		url := m[2]
		if !strings.HasSuffix(url, "/docker-ce.repo") {
			return h.fail(cmd, 1, "Cannot download "+url)
		}
		h.repo = osfamily.DefaultRepoURL + "/linux/" + pathPart(url)
		h.files[osfamily.DockerRepoFile] = "[docker-ce-stable]\nbaseurl=" + h.repo + "/$releasever/$basearch/stable\n"
		return ok("adding repo from: " + url + "\n")
	case reSed.MatchString(cmd):
		m := reSed.FindStringSubmatch(cmd)
		if h.repo == "" {
			return h.fail(cmd, 2, "sed: can't read "+osfamily.DockerRepoFile+": No such file or directory")
		}
		h.repo = strings.Replace(h.repo, m[1], m[2], 1)
		h.files[osfamily.DockerRepoFile] = strings.ReplaceAll(h.files[osfamily.DockerRepoFile], m[1], m[2])
		return ok("")
	case strings.HasPrefix(cmd, "command -v curl >/dev/null || "):
		return ok("")
	case cmd == "install -m 0755 -d /etc/apt/keyrings":
		return ok("")
	case reAptGPG.MatchString(cmd):
		return ok("")
	case reAptList.MatchString(cmd):
		m := reAptList.FindStringSubmatch(cmd)
		h.repo, h.aptFresh = m[1], false
		if want := fakeCodename(h.osRelease); m[2] != want {
			h.t.Errorf("%s: docker.list names suite %q, the OS is %q", h.fix.name, m[2], want)
		}
		return ok("")
	case cmd == "apt-get update -q":
		h.aptFresh = true
		return ok("")
	case reAptInst.MatchString(cmd):
		return h.aptInstall(cmd, strings.Fields(reAptInst.FindStringSubmatch(cmd)[1]))
	case reAptPlain.MatchString(cmd):
		return h.aptInstall(cmd, strings.Fields(reAptPlain.FindStringSubmatch(cmd)[1]))
	}
	h.t.Errorf("%s: the fake host does not know this command:\n%s", h.fix.name, cmd)
	return h.fail(cmd, 127, "fake host: unknown command")
}

func pathPart(url string) string {
	i := strings.Index(url, "/linux/")
	if i < 0 {
		return url
	}
	return strings.TrimSuffix(url[i+len("/linux/"):], "/docker-ce.repo")
}

func fakeCodename(osRelease string) string {
	o := osfamily.ParseOSRelease(osRelease)
	if o.UbuntuCodename != "" {
		return o.UbuntuCodename
	}
	return o.VersionCodename
}

func (h *fakeHost) userStep(cmd string) (sshrun.Result, error) {
	name := reUsermod.FindStringSubmatch(cmd)[1]
	if m := reUseradd.FindStringSubmatch(cmd); m != nil {
		if h.users[name] != nil {
			return h.fail(cmd, 9, "useradd: user '"+name+"' already exists")
		}
		primary := name
		if !h.groups[name] {
			h.groups[name] = true
		}
		h.users[name] = &fakeUser{groups: []string{primary}}
	} else if strings.Contains(cmd, "useradd") {
		h.t.Errorf("%s: useradd in an unexpected form:\n%s", h.fix.name, cmd)
	}
	u := h.users[name]
	if u == nil {
		return h.fail(cmd, 6, "usermod: user '"+name+"' does not exist")
	}
	h.groups["docker"] = true
	if !slices.Contains(u.groups, "docker") {
		u.groups = append(u.groups, "docker")
	}
	for _, m := range reKey.FindAllStringSubmatch(cmd, -1) {
		u.keys = append(u.keys, m[1])
	}
	return ok("")
}

func (h *fakeHost) systemctl(cmd string) (sshrun.Result, error) {
	for _, c := range strings.Split(cmd, " && ") {
		switch c {
		case "systemctl daemon-reload":
		case "systemctl reenable '" + PersistUnitName + "'":
			if h.reenabled == nil {
				h.reenabled = map[string]bool{}
			}
			h.reenabled[PersistUnitName] = true
			continue
		case "systemctl enable docker":
			h.enabled = true
		case "systemctl start docker":
			if !h.active {
				h.pid += 100
				if why := h.dockerdRefusal(); why != "" {
					return h.fail(cmd, 1, "Job for docker.service failed because the control process exited with error code.")
				}
				h.dockerdStarts()
			}
			h.active = true
		case "systemctl stop docker":
			h.active = false
		case "systemctl restart docker.socket":
			h.socketRestarts++
		case "systemctl restart docker":
			h.pid += 100
			h.active = true
			if why := h.dockerdRefusal(); why != "" {
				h.active = false
				return h.fail(cmd, 1, "Job for docker.service failed because the control process exited with error code.")
			}
			h.dockerdStarts()
		default:
			h.t.Errorf("%s: unknown systemctl command %q", h.fix.name, c)
			return h.fail(cmd, 1, "unknown")
		}
		if h.docker == "" && c != "systemctl daemon-reload" {
			return h.fail(cmd, 5, "Failed to "+c+": Unit docker.service not found.")
		}
	}
	return ok("")
}

// dockerdRefusal is what dockerd says of the host's daemon.json when it
// holds a key it does not know ("" when it has none).
func (h *fakeHost) dockerdRefusal() string {
	return h.refusal(h.files[daemonJSONPath])
}

func (h *fakeHost) refusal(daemonJSON string) string {
	for _, k := range h.refuses {
		if strings.Contains(daemonJSON, `"`+k+`"`) {
			return "unable to configure the Docker daemon with file /etc/docker/daemon.json: the following directives don't match any configuration option: " + k
		}
	}
	return ""
}

// installDaemonJSON is installDaemonJSONCmd: dockerd from 23 on checks the
// new file first.
func (h *fakeHost) installDaemonJSON(cmd string) (sshrun.Result, error) {
	next, have := h.files[daemonJSONNew]
	if !have {
		return h.fail(cmd, 1, "mv: cannot stat '"+daemonJSONNew+"': No such file or directory")
	}
	if major, _ := strconv.Atoi(strings.Split(h.docker, ".")[0]); major >= 23 {
		if why := h.refusal(next); why != "" {
			delete(h.files, daemonJSONNew)
			return h.fail(cmd, 1, strings.Replace(why, daemonJSONPath, daemonJSONNew, 1))
		}
	}
	delete(h.files, daemonJSONPrev)
	if cur, exists := h.files[daemonJSONPath]; exists {
		h.files[daemonJSONPrev] = cur
	}
	h.files[daemonJSONPath] = next
	delete(h.files, daemonJSONNew)
	return ok("")
}

// dockerdStarts is what a starting dockerd does to firewalld: without
// Docker's zone it makes it, and reloads firewalld (moby's setupDockerZone).
func (h *fakeHost) dockerdStarts() {
	if h.docker != "" && h.firewalld && !h.fwDockerZone {
		h.fwDockerZone = true
		h.fwRuntime = slices.Clone(h.fwPerm)
	}
}

func (h *fakeHost) firewall(cmd string) (sshrun.Result, error) {
	for _, c := range strings.Split(cmd, " && ") {
		switch {
		case reFwZoneAdd.MatchString(c):
			if !h.firewalld {
				return h.fail(cmd, 252, "FirewallD is not running")
			}
			m := reFwZoneAdd.FindStringSubmatch(c)
			zone := m[2]
			if zone == "" {
				zone = h.fix.get("host", "firewalld-default-zone")
				if zone == "" {
					zone = "public"
				}
			}
			target := &h.fwRuntime
			if m[1] != "" {
				target = &h.fwPerm
			}
			for _, a := range strings.Fields(m[3]) {
				p := strings.TrimPrefix(a, "--add-port=")
				if zone != h.fwZone {
					h.fwWrong = append(h.fwWrong, zone+":"+p)
					continue
				}
				if !slices.Contains(*target, p) {
					*target = append(*target, p)
				}
			}
		case c == "firewall-cmd --reload":
			if !h.firewalld {
				return h.fail(cmd, 252, "FirewallD is not running")
			}
			h.t.Errorf("%s: firewall-cmd --reload drops the runtime-only rules an administrator added", h.fix.name)
			h.fwRuntime = slices.Clone(h.fwPerm)
		case reUfwAllow.MatchString(c):
			p := reUfwAllow.FindStringSubmatch(c)[1]
			if !slices.Contains(h.ufwRules, p) {
				h.ufwRules = append(h.ufwRules, p)
			}
		default:
			h.t.Errorf("%s: unknown firewall command %q", h.fix.name, c)
			return h.fail(cmd, 1, "unknown")
		}
	}
	return ok("")
}

// rpmInstall installs packages; docker-ce's need the docker-ce repository,
// and a pinned version must be the one the fixture's repository has.
func (h *fakeHost) rpmInstall(cmd, pm string, words []string) (sshrun.Result, error) {
	if !h.commands[pm] {
		return h.fail(cmd, 127, "sh: "+pm+": command not found")
	}
	inst := h.fix.kv("install")
	// yum and dnf load every enabled repository first: a dead one stops
	// them whatever is asked for.
	for _, r := range h.repoDir().Repos {
		for _, host := range r.Hosts() {
			if r.Enabled && h.deadHosts[host] {
				return h.fail(cmd, 1, "Could not retrieve mirrorlist "+host+"/?release=7&arch=x86_64&repo=os&infra=stock error was\n"+
					"14: curl#6 - \"Could not resolve host: "+strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")+"; Unknown error\"\n"+
					"Cannot find a valid baseurl for repo: "+r.ID+"/7/x86_64")
			}
		}
	}
	if strings.Contains(h.files[osfamily.DockerRepoFile], "$releasever") && osfamily.ParseOSRelease(h.osRelease).ID == "rhel" {
		return h.fail(cmd, 1, "https://download.docker.com/linux/centos/7Server/x86_64/stable/repodata/repomd.xml: [Errno 14] HTTPS Error 404 - Not Found")
	}
	for _, w := range words {
		w = strings.Trim(w, "'")
		name, pin := w, ""
		if m := rePinnedRPM.FindStringSubmatch(w); m != nil {
			name, pin = m[1], m[2]
		}
		switch name {
		case "docker-ce", "docker-ce-cli", "containerd.io":
			if h.repo == "" {
				return h.fail(cmd, 1, "No package "+w+" available.\nError: Nothing to do")
			}
			if c := osfamily.Conflicts(func(p string) bool { return h.rpms[p] }); len(c) > 0 {
				return h.fail(cmd, 1, "Error: \n Problem: problem with installed package "+c[0]+"\n  - package containerd.io conflicts with runc provided by runc\n  - package containerd.io obsoletes runc provided by runc")
			}
		case "container-selinux":
			// Modelled where the fixture lists the OS's repositories.
			if d := h.repoDir(); h.fix.sections["repos"] != "" && !hasEnabled(d, "extras", "appstream") {
				return h.fail(cmd, 1, "No package container-selinux available.\nError: Nothing to do")
			}
		case "docker", "yum-utils", "dnf-plugins-core":
		default:
			return h.fail(cmd, 1, "No package "+w+" available.")
		}
		if pin != "" && !pinMatches(inst["version"][0], pin) {
			return h.fail(cmd, 1, "No package "+w+" available.")
		}
		h.rpms[name] = true
		if name == inst["package"][0] {
			h.installDocker()
		}
	}
	return ok("")
}

// repoDir is /etc/yum.repos.d as the fake holds it, read by the real parser.
func (h *fakeHost) repoDir() osfamily.RepoDir {
	return osfamily.ParseRepoFiles(h.repoListing())
}

func (h *fakeHost) repoListing() string {
	var names []string
	for f := range h.files {
		if strings.HasPrefix(f, "/etc/yum.repos.d/") {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, f := range names {
		b.WriteString(osfamily.RepoFileMarker + f + "\n")
		if strings.HasSuffix(f, ".repo") {
			b.WriteString(h.files[f] + "\n")
		}
	}
	return b.String()
}

func hasEnabled(d osfamily.RepoDir, words ...string) bool {
	for _, r := range d.Repos {
		for _, w := range words {
			if r.Enabled && strings.Contains(strings.ToLower(r.ID), w) {
				return true
			}
		}
	}
	return false
}

// listVersions answers `dnf list --showduplicates docker-ce` from the
// versions the fixture's repository offers (offered-centos, offered-rhel).
func (h *fakeHost) listVersions(cmd string) (sshrun.Result, error) {
	if h.repo == "" {
		return h.fail(cmd, 1, "Error: No matching Packages to list")
	}
	dir := "centos"
	if strings.Contains(h.repo, "/linux/rhel") {
		dir = "rhel"
	}
	var out []string
	for _, v := range strings.Fields(h.fix.get("install", "offered-"+dir)) {
		out = append(out, fmt.Sprintf("docker-ce.x86_64    3:%s-1.el8    docker-ce-stable", v))
	}
	if len(out) == 0 {
		return h.fail(cmd, 1, "Error: No matching Packages to list")
	}
	return ok("Available Packages\n" + strings.Join(out, "\n") + "\n")
}

func pinMatches(have, pin string) bool {
	if p, ok := strings.CutSuffix(pin, "*"); ok {
		return strings.HasPrefix(have, p)
	}
	return have == pin
}

// aptInstall installs .debs: docker-ce needs the repository and a fresh
// `apt-get update`.
func (h *fakeHost) aptInstall(cmd string, words []string) (sshrun.Result, error) {
	inst := h.fix.kv("install")
	for _, w := range words {
		w = strings.Trim(w, "'")
		name, pin, _ := strings.Cut(w, "=")
		switch name {
		case "docker-ce", "docker-ce-cli", "containerd.io":
			if h.repo == "" || !h.aptFresh {
				return h.fail(cmd, 100, "E: Unable to locate package "+name)
			}
			pin = strings.TrimPrefix(pin, "5:")
		case "docker.io", "curl", "ca-certificates":
		default:
			return h.fail(cmd, 100, "E: Unable to locate package "+name)
		}
		if pin != "" && !pinMatches(inst["version"][0], pin) {
			return h.fail(cmd, 100, "E: Version '"+pin+"' for '"+name+"' was not found")
		}
		if name == inst["package"][0] {
			h.installDocker()
		}
	}
	return ok("")
}

// installDocker is what the fixture's Docker package brings.
func (h *fakeHost) installDocker() {
	inst := h.fix.kv("install")
	h.docker = inst["version"][0]
	h.unit = h.fix.sections["unit"]
	h.groups["docker"] = true
	h.commands["docker"] = true
	if inst["package"][0] != "docker" {
		h.commands["dockerd"] = true // CentOS 7's own package has dockerd-current
	}
	for _, p := range strings.Fields(h.fix.get("install", "rpm")) {
		h.rpms[p] = true
	}
	if s := h.fix.get("install", "sysconfig"); s != "" {
		h.files["/etc/sysconfig/docker"] = s + "\n"
	}
	if h.fix.get("install", "starts") == "yes" {
		h.enabled, h.active = true, true
		h.pid += 100
		h.dockerdStarts()
	}
}

// --- the facts probe --------------------------------------------------------

var (
	reProbeName = regexp.MustCompile(`(?m)^echo '@@([0-9a-zA-Z]+) ([a-z0-9-]+)'`)
	reProbeCmds = regexp.MustCompile(`for c in ([^;]+); do command -v`)
	reProbeRPM  = regexp.MustCompile(`rpm -q --qf '%\{NAME\}\\n' ([^;)]+)`)
)

// facts answers the probe section by section, in the script's order.
func (h *fakeHost) facts(script string) string {
	var b strings.Builder
	for _, m := range reProbeName.FindAllStringSubmatch(script, -1) {
		nonce, name := m[1], m[2]
		if name == "end" {
			fmt.Fprintf(&b, "@@%s end\n", nonce)
			continue
		}
		fmt.Fprintf(&b, "@@%s %s\n%s\n", nonce, name, h.section(name, script))
	}
	return b.String()
}

// testFacts builds facts from "@@name" lines each followed by the
// section's text, for tests that set a few sections by hand.
func testFacts(text string) *Facts {
	f := &Facts{sections: map[string]string{}}
	cur := ""
	for _, line := range strings.SplitAfter(text, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "@@"); ok {
			cur = name
			f.sections[cur] = ""
			continue
		}
		if cur != "" {
			f.sections[cur] += line
		}
	}
	return f
}

func lines(l ...string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// fakeBootID is the fake host's boot: it never reboots.
const fakeBootID = "0b0e1d2c-3a4b-4c5d-8e6f-7a8b9c0d1e2f"

// daemonID is what the probe's daemon-id prints: the boot, dockerd's pid
// and its start time (a new pid, a new start).
func (h *fakeHost) daemonID() string {
	if h.pid == 0 {
		return fakeBootID + " 0 "
	}
	return fmt.Sprintf("%s %d %d", fakeBootID, h.pid, 5000+h.pid)
}

// reKnownDaemon finds, in the probe, the daemon the last run left and its
// version (pingLine).
var reKnownDaemon = regexp.MustCompile(`= '([^']+)' \]; then shoal_ping='([^']+)'`)

func (h *fakeHost) section(name, script string) string {
	du := dockerUserOf(script)
	switch name {
	case "end":
		return ""
	case "os-release":
		return h.osRelease
	case "hostname":
		return lines(h.hostname)
	case "hosts":
		return h.files["/etc/hosts"]
	case "user":
		if u := h.users[du]; u != nil {
			return lines(du, strings.Join(u.groups, " "))
		}
	case "authorized-keys":
		if u := h.users[du]; u != nil {
			return lines(u.keys...)
		}
	case "commands":
		var out []string
		for _, c := range strings.Fields(reProbeCmds.FindStringSubmatch(script)[1]) {
			if h.commands[c] {
				out = append(out, c)
			}
		}
		return lines(out...)
	case "docker-info":
		if m := reKnownDaemon.FindStringSubmatch(script); h.active && m != nil && m[1] == h.daemonID() {
			// The shell takes the last run's version while the same
			// daemon runs, and asks nothing.
			return `{"Version":"` + m[2] + `"}`
		}
		if h.active && h.docker != "" {
			return `{"Platform":{"Name":""},"Version":"` + h.docker + `","ApiVersion":"1.41"}`
		}
	case "docker-version":
		if h.docker != "" {
			return lines("Docker version " + h.docker + ", build 0123abc")
		}
	case "docker-package":
		// The fakes' engines come from packages whose version is dockerd's.
		return ""
	case "rpm":
		if !h.commands["rpm"] {
			return ""
		}
		var out []string
		for _, p := range strings.Fields(reProbeRPM.FindStringSubmatch(script)[1]) {
			if h.rpms[p] {
				out = append(out, p)
			} else {
				out = append(out, "package "+p+" is not installed")
			}
		}
		return lines(out...)
	case "docker-group":
		if h.groups["docker"] {
			var members []string
			for n, u := range h.users {
				if slices.Contains(u.groups[1:], "docker") {
					members = append(members, n)
				}
			}
			sort.Strings(members)
			return lines("docker:x:994:" + strings.Join(members, ","))
		}
	case "daemon-json-exists":
		if _, ok := h.files[daemonJSONPath]; ok {
			return lines("yes")
		}
	case "daemon-json":
		return h.files[daemonJSONPath]
	case "daemon-json-backup":
		if _, ok := h.files[daemonJSONBackup]; ok {
			return lines("yes")
		}
	case "tls":
		var out []string
		for _, f := range []string{"ca.pem", "server.pem", "server-key.pem"} {
			if data, ok := h.files[tlsDir+"/"+f]; ok {
				sum := sha256.Sum256([]byte(data))
				out = append(out, hex.EncodeToString(sum[:])+"  "+f)
			}
		}
		return lines(out...)
	case "dropin":
		return h.files[dropInPath]
	case "unit":
		if h.docker == "" {
			return ""
		}
		u := h.unit
		if d, ok := h.files[dropInPath]; ok {
			u += "\n# " + dropInPath + "\n" + d
		}
		return u
	case "enabled":
		if h.docker != "" {
			return lines(map[bool]string{true: "enabled", false: "disabled"}[h.enabled])
		}
	case "active":
		return lines(map[bool]string{true: "active", false: "inactive"}[h.active])
	case "dockerd-pid":
		return lines(strconv.Itoa(h.pid))
	case "daemon-id":
		return lines(h.daemonID())
	case "firewalld":
		return lines(map[bool]string{true: "active", false: "inactive"}[h.firewalld])
	case "firewalld-zone":
		if h.firewalld {
			return lines(h.fwIface + " " + h.fwZone)
		}
	case "package-lock":
		if h.lockHeld > 0 {
			return lines("unattended-upgr (pid 812)")
		}
	case "kernel":
		if k := h.fix.get("host", "kernel"); k != "" {
			return lines(k)
		}
		return lines("5.14.0-427.13.1.el9_4.x86_64")
	case "overlay-selinux":
		if v := h.fix.get("host", "overlay-selinux"); v != "" {
			return lines(v)
		}
		return lines("yes")
	case "yum-repos":
		return h.repoListing()
	case "repo-reach":
		seen := map[string]bool{}
		var out []string
		for _, r := range h.repoDir().Repos {
			if !r.Enabled || osfamily.IsDockerRepo(r) {
				continue
			}
			for _, host := range r.Hosts()[:min(1, len(r.Hosts()))] {
				if !seen[host] {
					seen[host] = true
					out = append(out, host+" "+map[bool]string{true: "000", false: "200"}[h.deadHosts[host]])
				}
			}
		}
		sort.Strings(out)
		return lines(out...)
	case "iptables":
		if h.iptablesInput == "" {
			return lines("@@enabled", "disabled")
		}
		return h.iptablesInput + "@@script\n" + h.files[iptablesScriptPath] + "@@enabled\n" + map[bool]string{true: "enabled\n", false: "disabled\n"}[h.iptablesEnabled]
	case "vmxnet3":
		if h.vmxnet3 == "" {
			return ""
		}
		out := "iface=" + h.vmxnet3 + "\n"
		if h.commands["ethtool"] {
			out += "tx-checksum-ip-generic: " + h.vmxOffload + "\n"
		}
		return out + "enabled=" + map[bool]string{true: "enabled", false: "disabled"}[h.vmxEnabled] + "\n@@unit\n" + h.files[vmxnet3UnitPath]
	case "ip-vs":
		yn := map[bool]string{true: "yes", false: "no"}
		want := strings.TrimRight(string(templates.ModulesLoadIPVS()), "\n")
		return lines(fmt.Sprintf("loaded=%s module=%s persisted=%s", yn[h.ipvsLoaded], yn[h.ipvsModule],
			yn[strings.TrimRight(h.files[ipvsConfPath], "\n") == want]))
	case "firewalld-docker-zone":
		if h.firewalld {
			return lines(map[bool]string{true: "yes", false: "no"}[h.fwDockerZone])
		}
	case "firewalld-all-runtime", "firewalld-all-permanent":
		if !h.firewalld || h.fwDockerZone {
			return ""
		}
		ports := h.fwRuntime
		if name == "firewalld-all-permanent" {
			ports = h.fwPerm
		}
		return lines("block", "  target: %%REJECT%%", "  ports: ", "  rich rules: ", "",
			h.fwZone+" (active)", "  target: default", "  icmp-block-inversion: no", "  interfaces: "+h.fwIface, "  sources: ",
			"  services: "+strings.Join(h.fwServices, " "), "  ports: "+strings.Join(ports, " "), "  protocols: ",
			"  forward: yes", "  masquerade: no", "  forward-ports: ", "  source-ports: ", "  icmp-blocks: ", "  rich rules: ")
	case "firewalld-runtime", "firewalld-permanent":
		if !h.firewalld {
			return ""
		}
		ports := h.fwRuntime
		if name == "firewalld-permanent" {
			ports = h.fwPerm
		}
		return lines(h.fwZone+" (active)", "  target: default", "  icmp-block-inversion: no", "  interfaces: "+h.fwIface, "  sources: ",
			"  services: "+strings.Join(h.fwServices, " "), "  ports: "+strings.Join(ports, " "), "  protocols: ",
			"  forward: yes", "  masquerade: no", "  forward-ports: ", "  source-ports: ", "  icmp-blocks: ", "  rich rules: ")
	case "ufw":
		if !h.commands["ufw"] {
			return ""
		}
		if !h.ufw {
			return lines("Status: inactive")
		}
		out := []string{"Status: active", "Logging: on (low)", "Default: deny (incoming), allow (outgoing), deny (routed)", "New profiles: skip", "",
			fmt.Sprintf("%-27s%-12s%s", "To", "Action", "From"), fmt.Sprintf("%-27s%-12s%s", "--", "------", "----")}
		// As ufw 0.36 prints them: an application profile after its ports.
		to := func(r, v6 string) string {
			if r == "OpenSSH" {
				return "22/tcp (OpenSSH" + v6 + ")"
			}
			return r + v6
		}
		for _, r := range h.ufwRules {
			out = append(out, fmt.Sprintf("%-27s%-12s%-26s", to(r, ""), "ALLOW IN", "Anywhere"))
		}
		for _, r := range h.ufwRules {
			out = append(out, fmt.Sprintf("%-27s%-12s%-26s", to(r, " (v6)"), "ALLOW IN", "Anywhere (v6)"))
		}
		return lines(out...)
	case "selinux":
		if h.commands["getenforce"] {
			return lines(h.selinux)
		}
	case "docker-sysconfig":
		var out []string
		for _, l := range strings.Split(h.files["/etc/sysconfig/docker"], "\n") {
			if strings.Contains(l, "--selinux-enabled") {
				out = append(out, l)
			}
		}
		return lines(out...)
	case persistProbeName:
		var out []string
		for _, p := range []string{persistHostname, persistBlock, persistScript, persistUnit, cloudInitCfg} {
			if data, ok := h.files[p]; ok {
				out = append(out, sha([]byte(data))+"  "+p)
			}
		}
		out = append(out, "@@enabled")
		if h.reenabled[PersistUnitName] {
			out = append(out, "enabled")
		}
		return lines(append(out, "@@cloud")...)
	default:
		h.t.Errorf("%s: the fake host does not know the probe %q: teach it", h.fix.name, name)
	}
	return ""
}

var reProbeUser = regexp.MustCompile(`id -un '([^']*)'`)

func dockerUserOf(script string) string {
	if m := reProbeUser.FindStringSubmatch(script); m != nil {
		return m[1]
	}
	return ""
}
