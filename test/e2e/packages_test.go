package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildDist runs build/dist (what `make dist` runs) for linux/amd64 into a
// temporary folder and returns it.
func buildDist(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	root, _ := filepath.Abs("../..")
	r := run(t, 10*time.Minute, "bash", "-c", `cd "$1" && go run ./build/dist -targets linux/amd64 -out "$2"`, "_", root, out)
	if r.code != 0 {
		t.Fatalf("build/dist: %s", r)
	}
	return out
}

func onlyFile(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) != 1 {
		t.Fatalf("want one %s in %s, have %v", pattern, dir, m)
	}
	return m[0]
}

// TestPackagesDeb: the .deb installs with apt in a clean container of the
// lab's base image; its man pages open, bash completes the drivers, the
// installed machine adopts a lab host, and apt-get remove leaves nothing.
// The .rpm's files and scripts are read with rpm. Two builds of one commit
// give the same SHA256SUMS.
func TestPackagesDeb(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	if _, err := os.Stat("/usr/bin/rpm"); err != nil {
		t.Fatalf("prerequisite missing: rpm (run `make lab-setup`)")
	}
	dist := buildDist(t)
	again := buildDist(t)
	a, _ := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	b, _ := os.ReadFile(filepath.Join(again, "SHA256SUMS"))
	if len(a) == 0 || string(a) != string(b) {
		t.Fatalf("two builds of one commit differ:\n%s\n%s", a, b)
	}
	t.Logf("SHA256SUMS (twice the same):\n%s", a)
	checkRPM(t, onlyFile(t, dist, "*.rpm"))

	_, pub := userKey(t)
	priv := filepath.Join(filepath.Dir(pub), "id_ed25519")
	nodeIP := labHost(t, "e2e-pkg-node", hostOpts{user: "tester", pubkey: pub})

	const c = "e2e-pkg-client"
	run(t, time.Minute, "docker", "rm", "-fv", c)
	t.Cleanup(func() { run(t, time.Minute, "docker", "rm", "-fv", c) })
	if r := run(t, time.Minute, "docker", "run", "-d", "--name", c, "--network", "shoal-lab",
		"--entrypoint", "sleep", "shoal-lab/base:bookworm", "infinity"); r.code != 0 {
		t.Fatalf("client container: %s", r)
	}
	deb := onlyFile(t, dist, "*.deb")
	for src, dst := range map[string]string{deb: "/tmp/", priv: "/root/id_ed25519"} {
		if r := run(t, time.Minute, "docker", "cp", src, c+":"+dst); r.code != 0 {
			t.Fatalf("docker cp %s: %s", src, r)
		}
	}
	sh := func(script string) string {
		t.Helper()
		r := run(t, 10*time.Minute, "docker", "exec", c, "bash", "-euo", "pipefail", "-c", script)
		if r.code != 0 {
			t.Fatalf("in %s: %s\n%s", c, script, r)
		}
		return r.stdout
	}
	// man-db and bash-completion are the user's, not the package's.
	sh(`export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends man-db bash-completion >/dev/null
		cd /tmp && apt-get install -y -q ./shoal_*.deb`)
	checkInstalled(t, sh, deb)
	sh(`chmod 600 /root/id_ed25519; machine --output plain create -d ssh --ssh-host ` + nodeIP +
		` --ssh-user tester --ssh-key /root/id_ed25519 pkgnode && machine ssh pkgnode -- docker info --format '{{.ServerVersion}}'`)

	files := strings.Fields(sh(`dpkg -L shoal | while read -r f; do [ -d "$f" ] || echo "$f"; done`))
	sh(`apt-get remove -y -q shoal >/dev/null`)
	if left := sh(`for f in ` + strings.Join(files, " ") + ` /usr/lib/shoal /usr/share/doc/shoal; do [ ! -e "$f" ] && [ ! -L "$f" ] || echo "$f"; done
		dpkg-query -W -f='${db:Status-Abbrev}' shoal 2>/dev/null | grep -v '^un' || true`); left != "" {
		t.Errorf("apt-get remove left behind:\n%s", left)
	}
}

func checkInstalled(t *testing.T, sh func(string) string, deb string) {
	t.Helper()
	// The package's version is the binaries' (less the -1 release).
	pv := strings.TrimSuffix(strings.TrimSpace(sh(`dpkg-query -W -f='${Version}' shoal`)), "-1")
	if !strings.Contains(filepath.Base(deb), pv) {
		t.Errorf("package version %s is not in its file name %s", pv, deb)
	}
	for cmd, want := range map[string]string{"machine version": "machine (shoal) " + pv, "shoal-cluster version": "cluster (shoal) " + pv, "/usr/lib/shoal/bin/cluster version": "cluster (shoal) " + pv} {
		if got := strings.TrimSpace(sh(cmd)); got != want {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
	for page, want := range map[string]string{"machine": "machine", "machine-create": "--driver", "shoal-cluster-up": "shoal-cluster up"} {
		if got := sh(`MANWIDTH=100 man -P cat ` + page + ` 2>&1`); !strings.Contains(got, want) {
			t.Errorf("man %s does not say %q:\n%s", page, want, got)
		}
	}
	// Bash as a user's shell: bash-completion loads the command's file on
	// demand; complete `machine create -d <TAB>`.
	// (bash-completion is not written for set -eu; its loader returns 124.)
	got := sh(`set +eu +o pipefail; source /usr/share/bash-completion/bash_completion
		_completion_loader machine || true
		COMP_WORDS=(machine create -d ""); COMP_CWORD=3; COMP_LINE="machine create -d "; COMP_POINT=${#COMP_LINE}
		__start_machine machine "" -d
		printf '%s\n' "${COMPREPLY[@]}"`)
	for _, d := range []string{"ssh", "docker", "libvirt", "virtualbox", "generic"} {
		if !strings.Contains("\n"+got, "\n"+d+"\n") {
			t.Errorf("machine create -d <TAB> does not offer %s:\n%s", d, got)
		}
	}
	sh(`test -s /usr/share/zsh/vendor-completions/_machine && test -s /usr/share/fish/vendor_completions.d/shoal-cluster.fish && test -s /usr/share/doc/shoal/README.md`)
}

// checkRPM reads the .rpm's files, scripts and dependencies.
func checkRPM(t *testing.T, rpm string) {
	t.Helper()
	r := run(t, time.Minute, "rpm", "-qlp", rpm)
	if r.code != 0 {
		t.Fatalf("rpm -qlp: %s", r)
	}
	for _, f := range []string{"/usr/bin/machine", "/usr/bin/shoal-cluster", "/usr/lib/shoal/bin/cluster",
		"/usr/share/man/man1/machine-create.1.gz", "/usr/share/man/man1/shoal-cluster-up.1.gz",
		"/usr/share/bash-completion/completions/machine", "/usr/share/zsh/site-functions/_shoal-cluster",
		"/usr/share/fish/vendor_completions.d/machine.fish", "/usr/share/doc/shoal/README.md"} {
		if !strings.Contains(r.stdout+"\n", f+"\n") {
			t.Errorf("the rpm lacks %s:\n%s", f, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "/usr/bin/cluster\n") {
		t.Errorf("the rpm installs /usr/bin/cluster (graphviz's):\n%s", r.stdout)
	}
	// No scriptlets: installing runs nothing.
	if r := run(t, time.Minute, "rpm", "-qp", "--scripts", rpm); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("rpm --scripts: want none: %s", r)
	}
	// Nothing required beyond what rpm adds itself; drivers' needs are weak.
	r = run(t, time.Minute, "rpm", "-qp", "--requires", rpm)
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l != "" && !strings.HasPrefix(l, "rpmlib(") && !strings.HasPrefix(l, "/bin/sh") {
			t.Errorf("rpm requires %q", l)
		}
	}
	if r := run(t, time.Minute, "rpm", "-qp", "--suggests", rpm); !strings.Contains(r.stdout, "docker-ce") {
		t.Errorf("rpm suggests: %s", r)
	}
}
