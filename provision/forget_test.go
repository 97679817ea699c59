package provision

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ForgetMesh, run with a stand-in getent on a docker user's ~/.ssh, takes
// the cluster's key, blocks and authorized_keys entries away and leaves
// every other line, and the other cluster's, as they were.
func TestForgetMeshCleansTheDockerUsersSSH(t *testing.T) {
	home := t.TempDir()
	ssh := filepath.Join(home, ".ssh")
	if err := os.Mkdir(ssh, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"shoal-c1":  "PRIVATE\n",
		"shoal-c10": "PRIVATE OTHER\n",
		"config":    "Host x\n# BEGIN shoal cluster c1\nHost n1 n2\n    IdentityFile ~/.ssh/shoal-c1\n# END shoal cluster c1\nHost y\n",
		"known_hosts": "x ssh-ed25519 AAAAx\n# BEGIN shoal cluster c1\nn1 ssh-ed25519 AAAAn1\n# END shoal cluster c1\n" +
			"# BEGIN shoal cluster c10\nm1 ssh-ed25519 AAAAm1\n# END shoal cluster c10\n",
		"authorized_keys": "ssh-rsa AAAAme me@laptop\nssh-ed25519 AAAAold shoal-cluster-c1\nssh-ed25519 AAAAo shoal-cluster-c10\n",
	}
	for n, d := range files {
		if err := os.WriteFile(filepath.Join(ssh, n), []byte(d), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := "set -e\n" + EditFuncs + "getent() { printf 'docker:x:1000:1000::%s:/bin/sh\\n' \"$FAKEHOME\"; }\n" +
		strings.Join(ForgetMesh("docker", "c1"), "\n")
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "FAKEHOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string]string{
		"shoal-c10":       "PRIVATE OTHER\n",
		"config":          "Host x\nHost y\n",
		"known_hosts":     "x ssh-ed25519 AAAAx\n# BEGIN shoal cluster c10\nm1 ssh-ed25519 AAAAm1\n# END shoal cluster c10\n",
		"authorized_keys": "ssh-rsa AAAAme me@laptop\nssh-ed25519 AAAAo shoal-cluster-c10\n",
	}
	if _, err := os.Stat(filepath.Join(ssh, "shoal-c1")); !os.IsNotExist(err) {
		t.Errorf("the cluster key is still there (%v)", err)
	}
	for n, w := range want {
		b, err := os.ReadFile(filepath.Join(ssh, n))
		if err != nil || string(b) != w {
			t.Errorf("%s = %q (%v), want %q", n, b, err, w)
		}
	}
}

// ForgetScript disables and removes the boot unit before anything else,
// and names the cluster's mesh only with a cluster.
func TestForgetScript(t *testing.T) {
	s := ForgetScript("dock'er", "c1")
	undo := strings.Index(s, PersistUndo())
	if undo < 0 || !strings.Contains(PersistUndo(), "systemctl disable "+PersistUnitName) || !strings.Contains(PersistUndo(), "rm -rf "+PersistDir) {
		t.Fatalf("the boot unit is not undone:\n%s", s)
	}
	if mesh := strings.Index(s, "getent passwd"); mesh < undo {
		t.Errorf("the mesh comes before the unit:\n%s", s)
	}
	if !strings.Contains(s, `'dock'\''er'`) || !strings.Contains(s, `' shoal-cluster-c1'`) {
		t.Errorf("names not quoted as words:\n%s", s)
	}
	if strings.Contains(ForgetScript("docker", ""), "getent") {
		t.Error("a machine of no cluster gets a mesh cleanup")
	}
	if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
		t.Errorf("not valid shell: %v\n%s", err, out)
	}
}

// ForgetScript run on a stand-in root (its /etc/ paths moved under a temp
// folder, systemctl and getent stand-ins that log): the unit is disabled,
// then the unit, its copies and cloud-init's setting are gone; what else
// is in /etc stays.
func TestForgetScriptTakesTheBootUnitAway(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "home")
	for path, data := range map[string]string{
		persistUnit:            restoreUnit,
		persistHostname:        "n1\n",
		persistBlock:           "# BEGIN shoal\n",
		persistScript:          restoreScript(),
		cloudInitCfg:           cloudInitConfig,
		"/etc/cloud/cloud.cfg": "keep\n",
		"/etc/hosts":           "127.0.0.1 localhost\n",
	} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(root, "calls")
	stubs := `systemctl() { echo "systemctl $*" >> "$LOG"; [ -e "$ROOT` + persistUnit + `" ] && echo "unit still there" >> "$LOG"; return 0; }
getent() { printf 'docker:x:1000:1000::%s:/bin/sh\n' "$FAKEHOME"; }
`
	script := strings.ReplaceAll(ForgetScript("docker", "c1"), " /etc/", ` "$ROOT"/etc/`)
	if strings.Count(script, "/etc/") != strings.Count(script, `"$ROOT"/etc/`) {
		t.Fatalf("a path of the script is not moved under the stand-in root: not run\n%s", script)
	}
	script = strings.Replace(script, "set -e\n", "set -e\n"+stubs, 1)
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "ROOT="+root, "FAKEHOME="+home, "LOG="+log)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, script)
	}
	for _, gone := range []string{persistUnit, PersistDir, cloudInitCfg} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", gone, err)
		}
	}
	for _, kept := range []string{"/etc/cloud/cloud.cfg", "/etc/hosts"} {
		if _, err := os.Stat(filepath.Join(root, kept)); err != nil {
			t.Errorf("%s: %v", kept, err)
		}
	}
	calls, _ := os.ReadFile(log)
	if want := "systemctl disable " + PersistUnitName + "\nunit still there\nsystemctl daemon-reload\n"; string(calls) != want {
		t.Errorf("calls:\n%s\nwant:\n%s", calls, want)
	}
}
