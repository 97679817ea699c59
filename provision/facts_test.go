package provision

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shoal-dev/shoal/provision/osfamily"
)

// testNonce is the probe's marker in these tests.
const testNonce = "0123456789abcdef01234567"

func probeLine(name, content string) string {
	return "@@" + testNonce + " " + name + "\n" + content + "\n"
}

const endLine = "@@" + testNonce + " end\n"

// TestParseFactsFraming: whatever a file holds, each section reads back
// byte for byte and the next one is intact (issue 10 item 2: a file
// without a final newline swallowed the next marker).
func TestParseFactsFraming(t *testing.T) {
	contents := map[string]string{
		"no final newline": `{"debug": true}`,
		"crlf":             "127.0.0.1 localhost\r\n::1 localhost\r\n",
		"empty":            "",
		"marker lookalike": "x\n@@end\n@@commands\nsystemctl\n",
		"hosts no newline": "127.0.0.1 localhost\nff02::2 ip6-allrouters",
	}
	for name, c := range contents {
		out := probeLine("daemon-json", c) + probeLine("commands", "systemctl\ncurl\n") + endLine
		for _, variant := range []string{out, strings.ReplaceAll(out, "\n", "\r\n"), "sudo: unable to resolve host x\n" + out} {
			f, err := parseFacts(variant, testNonce)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := f.sections["daemon-json"]; got != c {
				t.Errorf("%s: daemon-json = %q, want %q", name, got, c)
			}
			if !f.Has("systemctl") || !f.Has("curl") {
				t.Errorf("%s: the next section was damaged: %q", name, f.sections["commands"])
			}
			if _, ok := f.sections["end"]; !ok {
				t.Errorf("%s: no end marker", name)
			}
		}
	}
	for _, garbled := range []string{"@@" + testNonce + " hosts", "@@" + testNonce + " Hosts!\nx\n" + endLine, "@@" + testNonce + " hosts\nno newline after" + "@@" + testNonce + " end"} {
		if _, err := parseFacts(garbled, testNonce); err == nil {
			t.Errorf("a garbled section must be an error: %q", garbled)
		}
	}
	// Markers without this run's nonce are content.
	f, err := parseFacts(probeLine("hosts", "@@end\n@@0000 end\n")+endLine, testNonce)
	if err != nil || f.sections["hosts"] != "@@end\n@@0000 end\n" {
		t.Errorf("another nonce's marker: %q, %v", f.sections["hosts"], err)
	}
}

// TestFactsScriptOnThisMachine runs the real probe with sh here: files come
// back byte for byte, a missing one is an empty section, and a hostile user
// name stays one quoted word.
func TestFactsScriptOnThisMachine(t *testing.T) {
	for _, tool := range []string{"sh", "cut", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	dir := t.TempDir()
	pwned := dir + "/pwned"
	out, err := exec.Command("sh", "-c", factsScript("x; touch "+pwned+"; echo x", "1.2.3.4; touch "+pwned, testNonce, RunningDaemon{})).Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	f, err := parseFacts(string(out), testNonce)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("the docker user's name ran as a command")
	}
	for section, file := range map[string]string{"hosts": "/etc/hosts", "os-release": "/etc/os-release"} {
		want, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		if f.sections[section] != string(want) {
			t.Errorf("%s: got %q, want %q", section, f.sections[section], want)
		}
	}
	if _, ok := f.sections["end"]; !ok || f.sections["authorized-keys"] != "" {
		t.Errorf("want the end marker and no keys for a user that does not exist: %v", f.sections)
	}
}

func FuzzParseFacts(f *testing.F) {
	for _, seed := range []string{
		"",
		endLine,
		probeLine("daemon-json", "null") + endLine,
		probeLine("daemon-json", `{"a":1}}`) + probeLine("hosts", "127.0.0.1 localhost") + endLine,
		probeLine("authorized-keys", "ssh-ed25519 AAAA me") + probeLine("commands", "systemctl\n") + strings.TrimSuffix(endLine, "\n") + "\r\n",
		"@@hosts\n127.0.0.1 localhost@@user\n", // the old framing's failure
		"@@ \n@@x @@\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, out string) {
		facts, err := parseFacts(out, testNonce)
		if err != nil {
			return
		}
		// Every section read re-encodes to what a probe would print, and
		// reads back the same.
		var again strings.Builder
		for name, c := range facts.sections {
			if strings.ContainsAny(name, " \n\r") {
				t.Fatalf("section name %q holds a separator", name)
			}
			again.WriteString(probeLine(name, c))
		}
		back, err := parseFacts(again.String(), testNonce)
		if err != nil {
			t.Fatalf("re-encoded facts do not parse: %v", err)
		}
		for name, c := range facts.sections {
			if back.sections[name] != c {
				t.Fatalf("section %q: %q read back as %q", name, c, back.sections[name])
			}
		}
		_ = facts.DockerVersion()
		_, _ = facts.UserGroups()
	})
}

func TestDockerVersionPrefersThePackage(t *testing.T) {
	for _, tc := range []struct{ dockerd, pkg, want string }{
		{"Docker version 20.10.24+dfsg1, build 297e128", "install ok installed 20.10.99+dfsg1-1\n", "20.10.99"},
		{"Docker version 24.0.9, build 2936816", "unknown ok not-installed \ninstall ok installed 5:24.0.9-1~debian.12~bookworm\n", "24.0.9"},
		{"Docker version 20.10.24+dfsg1, build 297e128", "", "20.10.24"},
		// Removed, its configuration kept: not the engine that runs.
		{"Docker version 24.0.9, build 2936816", "deinstall ok config-files 20.10.24+dfsg1-1\n", "24.0.9"},
		// A package without a binary on the PATH is no engine.
		{"", "install ok installed 20.10.24+dfsg1-1\n", ""},
	} {
		f := &Facts{sections: map[string]string{"docker-version": tc.dockerd, "docker-package": tc.pkg}}
		if got := f.DockerVersion(); got != tc.want {
			t.Errorf("dockerd %q package %q: %q, want %q", tc.dockerd, tc.pkg, got, tc.want)
		}
	}
}

// TestReachAwk runs the probe's awk program over repository files here:
// the scheme://host of each enabled repository that is not Docker's, once
// per repository (the first URL), with dnf's ways of saying enabled.
func TestReachAwk(t *testing.T) {
	if _, err := exec.LookPath("awk"); err != nil {
		t.Fatalf("awk is needed: %v", err)
	}
	in := "[base]\nname=x\nmirrorlist=http://mirrorlist.centos.org/?release=7&repo=os\n#baseurl=http://mirror.centos.org/centos/7/os/\n" +
		"[centosplus]\nmirrorlist=http://plus.example/?x\nenabled=0\n" +
		"[docker-ce-stable]\nbaseurl=https://download.docker.com/linux/centos/7/x86_64/stable\n" +
		"[epel]\nenabled = True\nmetalink=https://mirrors.fedoraproject.org/metalink?repo=epel-7\n" +
		"  [local]\nbaseurl = https://repo.local:8443/el7/ , https://second.local/\nenabled=1\n" +
		"[media]\nbaseurl=file:///media/\n"
	cmd := exec.Command("awk", reachAwk)
	cmd.Stdin = strings.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "http://mirrorlist.centos.org\nhttps://mirrors.fedoraproject.org\nhttps://repo.local:8443\n"
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// TestIfaceAwk runs the probe's interface pick over `ip -o addr show`
// output: by address or by name, IPv6 too, never lo.
func TestIfaceAwk(t *testing.T) {
	ipAddr := `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host \       valid_lft forever preferred_lft forever
2: enp0s3    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic enp0s3\       valid_lft 86000sec preferred_lft 86000sec
3: enp0s8    inet 192.168.56.101/24 brd 192.168.56.255 scope global enp0s8\       valid_lft forever preferred_lft forever
3: enp0s8    inet6 fd00::5/64 scope global \       valid_lft forever preferred_lft forever
`
	for addr, want := range map[string]string{
		"192.168.56.101": "enp0s8\n", "fd00::5": "enp0s8\n", "enp0s8": "enp0s8\n",
		"127.0.0.1": "", "lo": "", "192.168.56.1": "", "10.0.2.15": "enp0s3\n",
	} {
		cmd := exec.Command("awk", "-v", "a="+addr, ifaceAwk)
		cmd.Stdin = strings.NewReader(ipAddr)
		out, err := cmd.Output()
		if err != nil || string(out) != want {
			t.Errorf("%s: got %q %v, want %q", addr, out, err, want)
		}
	}
}

// TestRepoReachProbe runs the probe's repo-reach part here, against a
// repository directory in a temp folder: a server that answers (even 404)
// answers; a refused port and a name that does not resolve do not; a
// disabled repository and Docker's are not asked.
func TestRepoReachProbe(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed: %v", err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dir := t.TempDir()
	repos := "[alive]\nbaseurl=" + srv.URL + "/el7/os/\n[refused]\nbaseurl=http://127.0.0.1:1/x\n[nodns]\nmirrorlist=http://nonexistent.invalid/?r\n" +
		"[off]\nenabled=0\nbaseurl=http://disabled.invalid/\n[docker-ce-stable]\nbaseurl=http://docker.invalid/\n"
	if err := os.WriteFile(filepath.Join(dir, "x.repo"), []byte(repos), 0o644); err != nil {
		t.Fatal(err)
	}
	var probe string
	for _, l := range strings.Split(factsScript("docker", "10.9.9.9", testNonce, RunningDaemon{}), "\n") {
		if rest, ok := strings.CutPrefix(l, "echo '@@"+testNonce+" repo-reach'; ("); ok {
			probe, _, _ = strings.Cut(rest, ") 2>/dev/null; echo")
		}
	}
	if probe == "" {
		t.Fatal("no repo-reach probe in the script")
	}
	out, err := exec.Command("sh", "-c", strings.ReplaceAll(probe, "/etc/yum.repos.d", dir)).Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	got := osfamily.ParseReach(string(out))
	want := map[string]bool{srv.URL: true, "http://127.0.0.1:1": false, "http://nonexistent.invalid": false}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for h, ok := range want {
		if v, asked := got[h]; !asked || v != ok {
			t.Errorf("%s: got %v (asked %v), want %v", h, v, asked, ok)
		}
	}
}

func TestRunningDocker(t *testing.T) {
	for in, want := range map[string]string{
		`{"Platform":{"Name":""},"Version":"20.10.24+dfsg1","ApiVersion":"1.41"}`: "20.10.24+dfsg1",
		`{"Version":"24.0.9"}`:                "24.0.9",
		``:                                    "",
		`Cannot connect to the Docker daemon`: "",
		`{"Version":""}`:                      "",
		`{"Version":"garbage"}`:               "",
	} {
		f := &Facts{sections: map[string]string{"docker-info": in}}
		if got := f.RunningDocker(); got != want {
			t.Errorf("RunningDocker(%q) = %q, want %q", in, got, want)
		}
	}
}

// pingSocket serves Docker's /_ping on a unix socket of its own, with
// the Server header server says (a daemon that is there after serve).
type pingSocket struct {
	dir, sock string
	server    atomic.Value
}

func newPingSocket(t *testing.T) *pingSocket {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed: %v", err)
	}
	dir, err := os.MkdirTemp("", "dv") // short: a unix socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &pingSocket{dir: dir, sock: filepath.Join(dir, "docker.sock")}
	p.server.Store("Docker/24.0.9-1 (linux)")
	return p
}

func (p *pingSocket) serve(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("unix", p.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", p.server.Load().(string))
		w.Write([]byte("OK"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// fakeCommand puts a script named name first in PATH for run.
func (p *pingSocket) fakeCommand(t *testing.T, name, script string) {
	t.Helper()
	bin := filepath.Join(p.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// run runs script with sh, the socket in place of Docker's.
func (p *pingSocket) run(script string) (string, error) {
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(script, "/var/run/docker.sock", p.sock))
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(p.dir, "bin")+":"+os.Getenv("PATH"))
	out, err := cmd.Output()
	return string(out), err
}

// TestDockerVersionCmd runs the daemon's version command here against a
// socket of its own: Docker's /_ping header gives the version with no
// docker CLI; no daemon fails at once (no CLI either); a server that is
// not Docker's is asked through `docker info`.
func TestDockerVersionCmd(t *testing.T) {
	p := newPingSocket(t)
	called := filepath.Join(p.dir, "cli-called")
	p.fakeCommand(t, "docker", "touch "+called+"\necho 9.9.9\n")
	run := func() (string, error) {
		os.Remove(called)
		return p.run(dockerVersionCmd)
	}
	cliCalled := func() bool { _, err := os.Stat(called); return err == nil }

	if out, err := run(); err == nil || cliCalled() {
		t.Errorf("no daemon: %q, %v, docker CLI called: %v; want a failure and no CLI", out, err, cliCalled())
	}
	p.serve(t)
	if out, err := run(); err != nil || out != "24.0.9-1\n" || cliCalled() {
		t.Errorf("Docker's daemon: %q, %v, docker CLI called: %v; want 24.0.9-1 from /_ping alone", out, err, cliCalled())
	}
	p.server.Store("Libpod/4.9.4 (linux)")
	if out, err := run(); err != nil || out != "9.9.9\n" || !cliCalled() {
		t.Errorf("a daemon that is not Docker's: %q, %v, docker CLI called: %v; want the CLI's answer", out, err, cliCalled())
	}
}

// TestFactsProbeHeadVersion runs the facts probe's head here, a fake
// systemctl saying what docker.service is, against a socket of its own:
// the running daemon's version is read from /_ping only when the unit is
// active and the daemon is Docker's. (On a host, a head that reads no
// version costs a `docker version` later, which no e2e test would see.)
func TestFactsProbeHeadVersion(t *testing.T) {
	p := newPingSocket(t)
	unit := func(state string) {
		p.fakeCommand(t, "systemctl", "printf 'Id=docker.service\\nUnitFileState=enabled\\nActiveState="+state+"\\nMainPID=42\\nFragmentPath=/lib/systemd/system/docker.service\\nDropInPaths=\\n\\n'\n")
	}
	head := unitsHead + pingLine(RunningDaemon{}) + `echo "active=$shoal_dactive pid=$shoal_dpid ping=$shoal_ping"`
	check := func(what, want string) {
		t.Helper()
		if out, err := p.run(head); err != nil || strings.TrimSpace(out) != want {
			t.Errorf("%s: %q, %v; want %q", what, out, err, want)
		}
	}
	unit("active")
	check("active unit, no daemon", "active=active pid=42 ping=")
	p.serve(t)
	check("active unit, Docker's daemon", "active=active pid=42 ping=24.0.9-1")
	p.server.Store("Docker/26.1.5+dfsg1 (linux) extra")
	check("a Debian build's version", "active=active pid=42 ping=26.1.5+dfsg1")
	p.server.Store("Libpod/4.9.4 (linux)")
	check("a daemon that is not Docker's", "active=active pid=42 ping=")
	p.server.Store("Docker/24.0.9-1 (linux)")
	unit("inactive")
	check("an inactive unit is not asked", "active=inactive pid=42 ping=")
}

// TestFactsProbeKnownDaemon runs the probe's head here with a fake
// systemctl naming this test's own process as dockerd: the last run's
// version is taken while that very process runs (no daemon is asked:
// there is none), and not once its pid, start time or boot differ.
func TestFactsProbeKnownDaemon(t *testing.T) {
	p := newPingSocket(t)
	pid := os.Getpid()
	p.fakeCommand(t, "systemctl", fmt.Sprintf("printf 'Id=docker.service\\nActiveState=active\\nMainPID=%d\\n\\n'\n", pid))
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	start := fields[19] // the 22nd field of stat
	seen := RunningDaemon{Boot: strings.TrimSpace(string(boot)), PID: pid, Start: start, Version: "24.0.9"}
	if !seen.valid() {
		t.Fatalf("the daemon as this machine names it is not valid: %+v", seen)
	}
	run := func(known RunningDaemon) string {
		t.Helper()
		out, err := p.run(unitsHead + pingLine(known) + `echo "id=$shoal_boot $shoal_dpid $shoal_dstart ping=$shoal_ping"`)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return strings.TrimSpace(out)
	}
	if got, want := run(RunningDaemon{}), "id="+seen.id()+" ping="; got != want {
		t.Errorf("no daemon known, none answering: %q, want %q", got, want)
	}
	if got, want := run(seen), "id="+seen.id()+" ping=24.0.9"; got != want {
		t.Errorf("the same daemon: %q, want %q", got, want)
	}
	for what, other := range map[string]RunningDaemon{
		"another start": {Boot: seen.Boot, PID: pid, Start: start + "1", Version: "24.0.9"},
		"another pid":   {Boot: seen.Boot, PID: pid + 1, Start: start, Version: "24.0.9"},
		"another boot":  {Boot: "00000000-0000-0000-0000-000000000000", PID: pid, Start: start, Version: "24.0.9"},
	} {
		if got, want := run(other), "id="+seen.id()+" ping="; got != want {
			t.Errorf("%s: %q, want %q (asked, and no daemon answered)", what, got, want)
		}
	}
	p.serve(t)
	if got, want := run(RunningDaemon{Boot: seen.Boot, PID: pid, Start: start + "1", Version: "24.0.9"}), "id="+seen.id()+" ping=24.0.9-1"; got != want {
		t.Errorf("another start, a daemon answering: %q, want %q", got, want)
	}
	// What the store gives is checked before it reaches the probe's text.
	for _, bad := range []RunningDaemon{
		{Boot: seen.Boot, PID: pid, Start: start, Version: "24.0.9'; touch /tmp/x; '"},
		{Boot: seen.Boot + "'", PID: pid, Start: start, Version: "24.0.9"},
		{Boot: seen.Boot, PID: pid, Start: "1 2", Version: "24.0.9"},
		{Boot: seen.Boot, PID: 0, Start: start, Version: "24.0.9"},
		{Boot: seen.Boot, PID: pid, Start: start, Version: "latest"},
	} {
		if bad.valid() || strings.Contains(pingLine(bad), "then shoal_ping=") {
			t.Errorf("%+v is taken as a daemon the probe may trust", bad)
		}
	}
}

// FuzzPingLine: whatever a machine's config.json says of its daemon (a
// user can edit it), the probe's text either ignores it or holds it as
// two quoted words made of a daemon id's and a version's characters only.
func FuzzPingLine(f *testing.F) {
	f.Add("a35c03be-8a5e-4cd7-89e2-5473d6109bae", 340, "5544368", "20.10.24+dfsg1")
	f.Add("a35c03be-8a5e-4cd7-89e2-5473d6109bae", 1, "1", "24.0.9'; touch /x; '")
	f.Add("x'$(id)'", -1, "1 2", "latest")
	plain := pingLine(RunningDaemon{})
	safe := regexp.MustCompile(`^[0-9A-Za-z.+~_ -]+$`)
	f.Fuzz(func(t *testing.T, boot string, pid int, start, version string) {
		d := RunningDaemon{Boot: boot, PID: pid, Start: start, Version: version}
		line := pingLine(d)
		if !d.valid() {
			if line != plain {
				t.Fatalf("%+v is not a daemon, yet the probe uses it:\n%s", d, line)
			}
			return
		}
		if !safe.MatchString(d.id()) || !safe.MatchString(d.Version) {
			t.Fatalf("%+v passes as a daemon with characters a shell could read", d)
		}
		if !strings.Contains(line, "= '"+d.id()+"' ]") || !strings.Contains(line, "shoal_ping='"+d.Version+"'") {
			t.Fatalf("the probe does not hold %+v as two quoted words:\n%s", d, line)
		}
	})
}
