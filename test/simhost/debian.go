package simhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Host is one simulated Debian 12 host that runs Docker (the enginetest
// World's version) as a systemd service, logged in to as root. It models
// the effect of what provisioning sends (files, users, the hostname,
// dockerd's restarts) so that a second run sees what the first did.
type Host struct {
	Name, Addr string
	// Port is where its SSH server answers, on 127.0.0.1.
	Port int

	lab  *Lab
	home string
	ln   net.Listener

	mu       sync.Mutex
	conns    []net.Conn
	hostname string
	files    map[string]string
	users    map[string][]string // user -> groups, the first its primary
	pid      int
	// changes are the commands that changed the host (writes, restarts,
	// users, the hostname); unknown the commands the model does not know.
	changes, unknown []string
}

func newHost(l *Lab, name, addr, home string) *Host {
	return &Host{Name: name, Addr: addr, lab: l, home: home, hostname: "debian", pid: 700,
		files: map[string]string{
			"/etc/hosts":      "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
			"/etc/os-release": osRelease,
		},
		users: map[string][]string{"root": {"root"}},
	}
}

const osRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`

const dockerUnit = `# /lib/systemd/system/docker.service
[Unit]
Description=Docker Application Container Engine
After=network-online.target docker.socket containerd.service
Requires=docker.socket

[Service]
Type=notify
ExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock
ExecReload=/bin/kill -s HUP $MAINPID

[Install]
WantedBy=multi-user.target
`

const bootID = "5e1d0c0a-0000-4000-8000-000000000001"

// Changes returns the commands that changed the host, in order.
func (h *Host) Changes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.changes...)
}

// Unknown returns the commands the model did not know (they succeeded
// with no output).
func (h *Host) Unknown() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.unknown...)
}

// File returns a file's content on the host.
func (h *Host) File(path string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.files[path]
	return s, ok
}

// ResetChanges forgets the changes recorded so far.
func (h *Host) ResetChanges() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes, h.unknown = nil, nil
}

func (h *Host) registryAt(port int) bool { return port == h.lab.RegistryPort }

// serveRegistry answers HTTP requests as a registry's /v2/ does.
func serveRegistry(rw io.ReadWriter) {
	buf := make([]byte, 4096)
	for {
		n, err := rw.Read(buf)
		if n > 0 && strings.Contains(string(buf[:n]), "\r\n\r\n") {
			_, _ = io.WriteString(rw, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDocker-Distribution-Api-Version: registry/2.0\r\nContent-Length: 2\r\n\r\n{}")
		}
		if err != nil {
			return
		}
	}
}

var (
	reBatchPart  = regexp.MustCompile(`(?s)\(\n(.*?)\n\) \|\| \{ rc=\$\?; echo 'shoal: batch op (\d+) failed' >&2; exit \$rc; \}`)
	reInstall    = regexp.MustCompile(`(?m)^install -m (\d+) -o \S+ -g "\$g" ('[^']*') ('[^']*') \|\| exit 1$`)
	reProbeName  = regexp.MustCompile(`(?m)^echo '@@([0-9a-zA-Z]+) ([a-z0-9-]+)'; [({](.*)[)}] 2>/dev/null; echo$`)
	reHostname   = regexp.MustCompile(`^printf '%s\\n' '([^']*)' > /etc/hostname && hostname `)
	reUsermod    = regexp.MustCompile(`usermod -aG docker '([^']*)'`)
	reUseradd    = regexp.MustCompile(`useradd -m -s /bin/bash '([^']*)'`)
	reSudoWrap   = regexp.MustCompile(`^sh -c ('(?:[^']|'\\'')*')$`)
	reKey        = regexp.MustCompile(`printf '%s\\n' '([^']*)' >> "\$f"$`)
	reCatOr      = regexp.MustCompile(`^cat ('[^']*') 2>/dev/null \|\| \[ ! -e '[^']*' \]$`)
	reDockerUser = regexp.MustCompile(`id -un '([^']*)'`)
)

// Exec runs one command as the host would and returns its exit status.
func (h *Host) Exec(cmd string, stdout, stderr io.Writer) int {
	if m := reSudoWrap.FindStringSubmatch(cmd); m != nil {
		cmd = unquote(m[1])
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if strings.Contains(cmd, "\n) || { rc=$?; echo 'shoal: batch op ") {
		return h.batch(cmd, stderr)
	}
	out, code := h.exec(cmd)
	if code != 0 {
		_, _ = io.WriteString(stderr, out)
		return code
	}
	_, _ = io.WriteString(stdout, out)
	return 0
}

// batch runs each op of a RunBatch script in turn.
func (h *Host) batch(script string, stderr io.Writer) int {
	for _, m := range reBatchPart.FindAllStringSubmatch(script, -1) {
		out, code := h.exec(m[1])
		if code != 0 {
			_, _ = fmt.Fprintf(stderr, "%sshoal: batch op %s failed\n", out, m[2])
			return code
		}
	}
	return 0
}

// unquote undoes shell.Quote.
func unquote(q string) string {
	return strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(q, "'"), "'"), `'\''`, "'")
}

func (h *Host) changed(what string) { h.changes = append(h.changes, what) }

// exec is one command (an op of a batch, or a session's): its output (or
// stderr) and status.
func (h *Host) exec(cmd string) (string, int) {
	cmd = strings.TrimPrefix(cmd, "export DEBIAN_FRONTEND=noninteractive; ")
	switch {
	case strings.HasPrefix(cmd, "# shoal facts probe\n"):
		return h.facts(cmd), 0
	case reInstall.MatchString(cmd):
		return h.install(cmd)
	case reHostname.MatchString(cmd):
		h.hostname = reHostname.FindStringSubmatch(cmd)[1]
		h.changed("hostname " + h.hostname)
		return "", 0
	case reUseradd.MatchString(cmd) || reUsermod.MatchString(cmd):
		return h.user(cmd)
	case strings.HasPrefix(cmd, "[ -d '") && strings.Contains(cmd, "' ] || install -d -m "):
		return "", 0
	case strings.HasPrefix(cmd, "systemctl restart docker"), strings.HasPrefix(cmd, "systemctl start docker"):
		h.pid++
		h.lab.World.Restart(h.Name)
		h.changed("restart docker")
		return "", 0
	case strings.HasPrefix(cmd, "systemctl daemon-reload"), strings.HasPrefix(cmd, "systemctl enable"), strings.HasPrefix(cmd, "systemctl reenable"):
		for _, u := range regexp.MustCompile(`(?:reenable|enable) '?([a-z0-9.-]+)`).FindAllStringSubmatch(cmd, -1) {
			h.files["enabled:"+u[1]] = ""
		}
		if strings.Contains(cmd, "restart docker") {
			h.pid++
			h.lab.World.Restart(h.Name)
		}
		h.changed(cmd)
		return "", 0
	case strings.HasPrefix(cmd, "mkdir -p "):
		return "", 0
	case strings.HasSuffix(cmd, "mv -f /etc/docker/daemon.json.shoal-new /etc/docker/daemon.json"):
		if old, ok := h.files["/etc/docker/daemon.json"]; ok {
			h.files["/etc/docker/daemon.json.shoal-prev"] = old
		}
		h.files["/etc/docker/daemon.json"] = h.files["/etc/docker/daemon.json.shoal-new"]
		delete(h.files, "/etc/docker/daemon.json.shoal-new")
		h.changed("install daemon.json")
		return "", 0
	case reCatOr.MatchString(cmd):
		return h.files[unquote(reCatOr.FindStringSubmatch(cmd)[1])], 0
	case strings.Contains(cmd, "/_ping") || strings.Contains(cmd, "docker version"):
		return h.lab.World.Version + "\n", 0
	}
	h.unknown = append(h.unknown, cmd)
	return "", 0
}

// install is WriteFile's script: the uploaded temp file put in place.
func (h *Host) install(cmd string) (string, int) {
	m := reInstall.FindStringSubmatch(cmd)
	tmp, next := unquote(m[2]), unquote(m[3])
	data, err := os.ReadFile(tmp)
	if err != nil {
		return err.Error() + "\n", 1
	}
	dst := strings.TrimSuffix(next, ".shoal-tmp")
	h.files[dst] = string(data)
	h.changed("write " + dst)
	return "", 0
}

func (h *Host) user(cmd string) (string, int) {
	if m := reUseradd.FindStringSubmatch(cmd); m != nil {
		if _, ok := h.users[m[1]]; !ok {
			h.users[m[1]] = []string{m[1]}
		}
	}
	if m := reUsermod.FindStringSubmatch(cmd); m != nil {
		if g := h.users[m[1]]; g != nil && !contains(g[1:], "docker") {
			h.users[m[1]] = append(g, "docker")
		}
		if k := reKey.FindStringSubmatch(cmd); k != nil {
			h.files[h.homeOf(m[1])+"/.ssh/authorized_keys"] += k[1] + "\n"
		}
	}
	h.changed(cmd)
	return "", 0
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// facts answers the probe section by section, in the script's order.
func (h *Host) facts(script string) string {
	du := ""
	if m := reDockerUser.FindStringSubmatch(script); m != nil {
		du = m[1]
	}
	var b strings.Builder
	for _, m := range reProbeName.FindAllStringSubmatch(script, -1) {
		fmt.Fprintf(&b, "@@%s %s\n%s\n", m[1], m[2], h.section(m[2], m[3], du))
	}
	if i := strings.LastIndex(script, "echo '@@"); i >= 0 {
		if m := regexp.MustCompile(`^echo '@@([0-9a-zA-Z]+) end'`).FindStringSubmatch(script[i:]); m != nil {
			fmt.Fprintf(&b, "@@%s end\n", m[1])
		}
	}
	return b.String()
}

func lines(l ...string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

func sum(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func (h *Host) homeOf(user string) string {
	if user == "root" {
		return "/root"
	}
	return "/home/" + user
}

// section is one probe's answer.
func (h *Host) section(name, cmd, du string) string {
	const dropIn = "/etc/systemd/system/docker.service.d/shoal.conf"
	version := h.lab.World.Version
	switch name {
	case "os-release":
		return h.files["/etc/os-release"]
	case "hostname":
		return lines(h.hostname)
	case "hosts":
		return h.files["/etc/hosts"]
	case "user":
		if g, ok := h.users[du]; ok {
			return lines(du, strings.Join(g, " "))
		}
	case "authorized-keys":
		return h.files[h.homeOf(du)+"/.ssh/authorized_keys"]
	case "commands":
		return lines("systemctl", "hostnamectl", "apt-get", "dockerd", "docker", "usermod", "useradd", "curl")
	case "docker-version":
		return lines("Docker version " + version + ", build 0123abc")
	case "docker-package":
		return lines("install ok installed 5:" + version + "-1~debian.12~bookworm")
	case "docker-group":
		var members []string
		for u, g := range h.users {
			if contains(g[1:], "docker") {
				members = append(members, u)
			}
		}
		sort.Strings(members)
		return lines("docker:x:994:" + strings.Join(members, ","))
	case "daemon-json-exists":
		if _, ok := h.files["/etc/docker/daemon.json"]; ok {
			return lines("yes")
		}
	case "daemon-json":
		return h.files["/etc/docker/daemon.json"]
	case "tls":
		var out []string
		for _, f := range []string{"ca.pem", "server.pem", "server-key.pem"} {
			if data, ok := h.files["/etc/docker/shoal/"+f]; ok {
				out = append(out, sum(data)+"  "+f)
			}
		}
		return lines(out...)
	case "dropin":
		return h.files[dropIn]
	case "unit":
		u := dockerUnit
		if d, ok := h.files[dropIn]; ok {
			u += "\n# " + dropIn + "\n" + d
		}
		return u
	case "enabled":
		return lines("enabled")
	case "active":
		return lines("active")
	case "dockerd-pid":
		return lines(fmt.Sprint(h.pid))
	case "daemon-id":
		return lines(h.daemonID())
	case "firewalld":
		return lines("inactive")
	case "kernel":
		return lines("6.1.0-28-amd64")
	case "iptables":
		return lines("@@enabled", "disabled")
	case "ip-vs":
		return lines("loaded=yes module=no persisted=no")
	case "docker-info":
		return `{"Version":"` + version + `"}` + "\n"
	case "shoal-persist":
		return h.persistProbe()
	case "shoal-peer-ssh":
		return h.peerProbe(du, cmd)
	}
	return ""
}

func (h *Host) daemonID() string { return fmt.Sprintf("%s %d %d", bootID, h.pid, 5000+h.pid) }

func (h *Host) persistProbe() string {
	var out []string
	for _, p := range []string{"/etc/shoal/hostname", "/etc/shoal/hosts.block", "/etc/shoal/restore", "/etc/systemd/system/shoal-restore.service", "/etc/cloud/cloud.cfg.d/99-shoal.cfg"} {
		if data, ok := h.files[p]; ok {
			out = append(out, sum(data)+"  "+p)
		}
	}
	out = append(out, "@@enabled")
	if _, ok := h.files["enabled:shoal-restore.service"]; ok {
		out = append(out, "enabled")
	}
	return lines(append(out, "@@cloud")...)
}

var rePeer = regexp.MustCompile(`sha256sum < "\$h/\.ssh/"('[^']*')`)

// peerProbe answers the cluster's probe of the docker user's ~/.ssh.
func (h *Host) peerProbe(du, cmd string) string {
	g, ok := h.users[du]
	if !ok {
		return lines("", "", "@@", "@@", "@@", "@@")
	}
	home := h.homeOf(du) + "/.ssh/"
	var b strings.Builder
	b.WriteString(lines(h.homeOf(du), g[0], "@@"))
	b.WriteString(h.files[home+"config"] + "@@\n")
	b.WriteString(h.files[home+"known_hosts"] + "@@\n")
	if m := rePeer.FindStringSubmatch(cmd); m != nil {
		if k, ok := h.files[home+unquote(m[1])]; ok {
			b.WriteString(sum(k) + "  -\n")
		}
	}
	b.WriteString("@@\n")
	for _, l := range strings.Split(h.files[home+"authorized_keys"], "\n") {
		if strings.Contains(l, "shoal") && l != "" {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
