package provision

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/sshrun"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/golden")

// golden compares got with testdata/golden/name, or writes it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./provision -run 'Transcripts|FactsProbeGolden' -update` to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from what provisioning sent now (-want +got):\n%s\nIf the change is intended, run `go test ./provision -run 'Transcripts|FactsProbeGolden' -update` and review the diff.",
			path, lineDiff(string(want), got))
	}
}

// lineDiff is a small line-oriented diff, enough to read a transcript change.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	// Longest common subsequence table.
	n, m := len(al), len(bl)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && al[i] == bl[j]:
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&out, "+ %s\n", bl[j])
			j++
		default:
			fmt.Fprintf(&out, "- %s\n", al[i])
			i++
		}
	}
	return out.String()
}

func fixtures(t *testing.T) []string {
	paths, err := filepath.Glob(filepath.Join("testdata", "hosts", "*.txt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures in testdata/hosts: %v", err)
	}
	return paths
}

// transcript renders one run: the calls, then the outcome.
func transcript(title string, h *fakeHost, rep *Report, err error) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(title), "\n") {
		fmt.Fprintf(&b, "# %s\n", l)
	}
	for _, l := range h.log {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	switch {
	case err != nil:
		fmt.Fprintf(&b, "# error: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n#        "))
	case rep != nil:
		changed := "nothing"
		if len(rep.Changed) > 0 {
			changed = strings.Join(rep.Changed, " ")
		}
		fmt.Fprintf(&b, "# changed: %s\n# docker restarted: %v, Docker %s\n", changed, rep.DockerRestarted, rep.DockerVersion)
	}
	return b.String()
}

// TestTranscripts provisions every fixture host twice and compares the exact
// calls with testdata/golden/NAME-first.txt and NAME-rerun.txt. The second
// run must change nothing: only read-only calls.
func TestTranscripts(t *testing.T) {
	for _, path := range fixtures(t) {
		fix := loadFixture(t, path)
		t.Run(fix.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			h := newFakeHost(t, fix)
			rep, err := Provision(ctx, h, fix.spec(), h.progress)
			golden(t, fix.name+"-first.txt", transcript(fix.name+", first run.\n"+fix.comment, h, rep, err))

			if want := strings.TrimSpace(fix.sections["error"]); want != "" {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("want an error containing %q, got %v", want, err)
				}
				for _, l := range h.log {
					if fix.get("host", "refused") == "late" {
						break // the error comes from the repository, once it is added
					}
					if !strings.Contains(l, "<facts probe") && !strings.HasPrefix(l, "       ->") && !strings.HasPrefix(l, "info:") {
						t.Errorf("a refused host was sent more than the read-only facts probe: %s", l)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("first run: %v", err)
			}
			checkConverged(t, h, fix.spec())

			// A new run is a new connection: sudo's pty is off again.
			h.log, h.tty = nil, false
			rep, err = Provision(ctx, h, fix.spec(), h.progress)
			golden(t, fix.name+"-rerun.txt", transcript(fix.name+", second run (changes nothing)", h, rep, err))
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			if len(rep.Changed) > 0 || rep.DockerRestarted {
				t.Errorf("the second run changed %v (restarted: %v)", rep.Changed, rep.DockerRestarted)
			}
			for _, l := range h.log {
				readOnly := strings.Contains(l, "<facts probe") || strings.Contains(l, "<the daemon's version") ||
					strings.HasPrefix(l, "       ->") || strings.HasPrefix(l, "tty:") || strings.HasPrefix(l, "info:")
				if !readOnly {
					t.Errorf("the second run sent a changing call: %s", l)
				}
			}
		})
	}
}

// checkConverged looks at the fake host's state after a first run.
func checkConverged(t *testing.T, h *fakeHost, spec Spec) {
	t.Helper()
	if h.hostname != spec.Hostname {
		t.Errorf("hostname %q, want %q", h.hostname, spec.Hostname)
	}
	if !h.active || !h.enabled {
		t.Errorf("docker active=%v enabled=%v", h.active, h.enabled)
	}
	du := spec.DockerUser
	if du == "" {
		du = h.user
	}
	if u := h.users[du]; u == nil || !slices.Contains(u.groups, "docker") {
		t.Errorf("user %s is not in the docker group", du)
	}
	want, _ := wantedPorts(spec)
	if h.firewalld {
		for _, p := range want {
			open := slices.Contains(h.fwPerm, p) && slices.Contains(h.fwRuntime, p) || p == "22/tcp" && slices.Contains(h.fwServices, "ssh")
			if !open {
				t.Errorf("firewalld: %s is not open (permanent %v, runtime %v)", p, h.fwPerm, h.fwRuntime)
			}
		}
	}
	// A kernel with the ip_vs module has it loaded, and at every boot.
	if h.ipvsModule && (!h.ipvsLoaded || h.files[ipvsConfPath] == "") {
		t.Errorf("ip_vs: loaded %v, %s %q", h.ipvsLoaded, ipvsConfPath, h.files[ipvsConfPath])
	}
	// A DROP policy gets shoal's chain hooked at INPUT's end, kept at boot.
	if strings.Contains(h.iptablesInput, "-P INPUT DROP") && len(spec.Hosts) > 0 {
		if !strings.HasSuffix(h.iptablesInput, "-A INPUT -j "+iptablesChain+"\n") || !h.iptablesEnabled || h.files[iptablesUnitPath] == "" {
			t.Errorf("iptables: shoal's chain is not last in INPUT or not kept at boot:\n%s", h.iptablesInput)
		}
	}
	// A vmxnet3 swarm interface has its offload off, now and at boot.
	if h.vmxnet3 != "" && h.commands["ethtool"] && (h.vmxOffload != "off" || !h.vmxEnabled || h.files[vmxnet3UnitPath] == "") {
		t.Errorf("vmxnet3 %s: offload %s, unit enabled %v", h.vmxnet3, h.vmxOffload, h.vmxEnabled)
	}
	// The administrator's runtime-only rules outlive dockerd's reload.
	for _, p := range strings.Fields(h.fix.get("host", "firewalld-keep")) {
		if !slices.Contains(h.fwRuntime, p) {
			t.Errorf("firewalld: the runtime-only %s is gone (runtime %v)", p, h.fwRuntime)
		}
	}
	if len(h.fwWrong) > 0 {
		t.Errorf("firewalld: ports opened in a zone other than %s (the swarm interface's): %v", h.fwZone, h.fwWrong)
	}
	if h.ufw {
		for _, p := range want {
			if !slices.Contains(h.ufwRules, p) && !(p == "22/tcp" && slices.Contains(h.ufwRules, "OpenSSH")) {
				t.Errorf("ufw: %s is not allowed (rules %v)", p, h.ufwRules)
			}
		}
	}
	dj := h.files[daemonJSONPath]
	enforcing := h.selinux == "Enforcing" && h.commands["rpm"]
	flagged := strings.Contains(h.files["/etc/sysconfig/docker"], "--selinux-enabled")
	// dockerd refuses overlay2 with selinux-enabled on a kernel that cannot
	// label overlay files: left out there, or dockerd would not start.
	flagged = flagged || h.fix.get("host", "overlay-selinux") == "no"
	if got := strings.Contains(dj, `"selinux-enabled": true`); got != (enforcing && !flagged) {
		t.Errorf("daemon.json selinux-enabled=%v, want %v (enforcing %v, flag in sysconfig %v):\n%s", got, enforcing && !flagged, enforcing, flagged, dj)
	}
	if enforcing && !h.rpms["container-selinux"] {
		t.Errorf("SELinux is enforcing and container-selinux is not installed")
	}
	if h.selinux != "" && h.selinux != h.fix.get("host", "selinux") {
		t.Errorf("SELinux mode changed to %s", h.selinux)
	}
}

// TestFactsProbeGolden keeps the one round trip's script in view: a change
// to it shows in review.
func TestFactsProbeGolden(t *testing.T) {
	// One probe a line for reading; the script itself is one line.
	golden(t, "facts-probe.sh", factsScript("docker", "10.9.9.9", "NONCE", RunningDaemon{})+"\n")
}

// TestRequireTTYWithoutPTY: sudo with requiretty and a runner that cannot
// give it a pty is a clear error that says how to fix sudoers, after the
// read-only probe alone.
func TestRequireTTYWithoutPTY(t *testing.T) {
	h := newFakeHost(t, loadFixture(t, "testdata/hosts/centos7.txt"))
	_, err := Provision(context.Background(), struct{ Runner }{h}, loadFixture(t, "testdata/hosts/centos7.txt").spec(), nil)
	if err == nil {
		t.Fatal("provisioning went on although sudo needs a tty")
	}
	for _, want := range []string{"requires a terminal", "requiretty", "Defaults:centos !requiretty", "/etc/sudoers.d/", "10.9.9.9"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	var se *StepError
	if !errors.As(err, &se) || se.Step != "facts" {
		t.Errorf("want a StepError of step facts, got %T %v", err, err)
	}
	if len(h.log) != 2 || !strings.Contains(h.log[0], "<facts probe") {
		t.Errorf("want only the facts probe and its refusal, got:\n%s", strings.Join(h.log, "\n"))
	}
}

// TestSudoPassword: sudo that wants a password stops provisioning with
// sshrun's SudoError (which says how to grant passwordless sudo) and nothing
// else is sent.
func TestSudoPassword(t *testing.T) {
	fix := loadFixture(t, "testdata/hosts/debian12.txt")
	h := newFakeHost(t, fix)
	h.sudo = "password"
	_, err := Provision(context.Background(), h, fix.spec(), nil)
	var se *sshrun.SudoError
	if !errors.As(err, &se) {
		t.Fatalf("want a *sshrun.SudoError, got %T %v", err, err)
	}
	if !strings.Contains(err.Error(), "needs passwordless sudo") || !strings.Contains(err.Error(), "NOPASSWD") {
		t.Errorf("the error should say how to grant passwordless sudo:\n%v", err)
	}
	if len(h.log) != 2 {
		t.Errorf("want only the facts probe and its refusal, got:\n%s", strings.Join(h.log, "\n"))
	}
}

// TestDistroRefusedOnEL9: RHEL 8/9 and their rebuilds have no Docker package;
// --engine-install distro says so before anything changes.
func TestDistroRefusedOnEL9(t *testing.T) {
	fix := loadFixture(t, "testdata/hosts/centos-stream9.txt")
	spec := fix.spec()
	spec.Install.Mode = "distro"
	h := newFakeHost(t, fix)
	_, err := Provision(context.Background(), h, spec, nil)
	if err == nil || !strings.Contains(err.Error(), "no Docker Engine package of its own") || !strings.Contains(err.Error(), "--engine-install repo") {
		t.Fatalf("want a clear refusal of distro on CentOS Stream 9, got %v", err)
	}
	if len(h.log) != 1 {
		t.Errorf("want only the facts probe, got:\n%s", strings.Join(h.log, "\n"))
	}
}

// TestContainerSELinuxStep: Docker present without container-selinux on an
// enforcing host gets it, and dockerd restarts to pick it up.
func TestContainerSELinuxStep(t *testing.T) {
	fix := loadFixture(t, "testdata/hosts/rocky9.txt")
	h := newFakeHost(t, fix)
	delete(h.rpms, "container-selinux")
	rep, err := Provision(context.Background(), h, fix.spec(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Changed, "selinux") || !h.rpms["container-selinux"] || !rep.DockerRestarted {
		t.Errorf("container-selinux not installed: changed %v\n%s", rep.Changed, strings.Join(h.log, "\n"))
	}
	if !slices.Contains(h.log, "sudo:  dnf install -y -q container-selinux") {
		t.Errorf("want dnf install of container-selinux:\n%s", strings.Join(h.log, "\n"))
	}
}

// TestFirewallPortsValidated: a malformed extra port is refused before
// anything is sent.
func TestFirewallPortsValidated(t *testing.T) {
	fix := loadFixture(t, "testdata/hosts/debian12.txt")
	for _, bad := range []string{"5000", "5000/sctp", "70000/tcp", "5000/tcp; rm -rf /", ""} {
		spec := fix.spec()
		spec.FirewallPorts = []string{bad}
		h := newFakeHost(t, fix)
		if _, err := Provision(context.Background(), h, spec, nil); err == nil || !strings.Contains(err.Error(), "firewall port") {
			t.Errorf("%q: want a firewall port error, got %v", bad, err)
		}
		if len(h.log) != 0 {
			t.Errorf("%q: calls were sent: %v", bad, h.log)
		}
	}
}

// TestDottedLoginUser: a login user named as on LDAP/FreeIPA hosts
// (john.doe) is the docker user by default, and reaches every command quoted.
func TestDottedLoginUser(t *testing.T) {
	fix := loadFixture(t, "testdata/hosts/debian12.txt")
	h := newFakeHost(t, fix)
	h.user = "john.doe"
	h.users["john.doe"] = &fakeUser{groups: []string{"john.doe"}}
	spec := fix.spec()
	spec.DockerUser = ""
	if _, err := Provision(context.Background(), h, spec, nil); err != nil {
		t.Fatalf("provisioning as john.doe: %v", err)
	}
	log := strings.Join(h.log, "\n")
	if !strings.Contains(log, "usermod -aG docker 'john.doe'") {
		t.Errorf("john.doe was not put in the docker group, quoted:\n%s", log)
	}
}
