package shellenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hostile are storage paths that must come out of eval unchanged, never run.
var hostile = []string{
	"/home/u/My Machines/certs",
	"/tmp/$(touch PWNED)/certs",
	"/tmp/`touch PWNED`/certs",
	`/tmp/"quoted"/it's/certs`,
	`/tmp/back\slash/$HOME/!x/certs`,
}

// TestEnvScriptBashEval runs the script through bash's eval, as users do.
func TestEnvScriptBashEval(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash is needed for this test")
	}
	for _, v := range hostile {
		dir := t.TempDir()
		script, err := EnvScript("bash", []string{"1", "tcp://10.0.0.5:2376", v, "m1"}, "machine env m1")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bash, "-c", `eval "$SCRIPT"; printf %s "$DOCKER_CERT_PATH"`)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SCRIPT="+script)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%q: eval: %v\n%s", v, err, script)
		}
		if string(out) != v {
			t.Errorf("eval gave %q, want %q\n%s", out, v, script)
		}
		if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
			t.Errorf("%q: eval ran a command", v)
		}
	}
}

// Each shell's quoting, by its rules, for the shells not installed here.
func TestEnvScriptQuoting(t *testing.T) {
	v := `/a b/$(x)/"q"/it's/\/!`
	cases := map[string]string{
		"bash":       `export DOCKER_CERT_PATH="/a b/\$(x)/\"q\"/it's/\\/!"`,
		"fish":       `set -gx DOCKER_CERT_PATH "/a b/\$(x)/\"q\"/it's/\\/!";`,
		"tcsh":       `setenv DOCKER_CERT_PATH '/a b/$(x)/"q"/it'\''s/\/\!';`,
		"powershell": "$Env:DOCKER_CERT_PATH = \"/a b/`$(x)/`\"q`\"/it's/\\/!\"",
		"emacs":      `(setenv "DOCKER_CERT_PATH" "/a b/$(x)/\"q\"/it's/\\/!")`,
	}
	for shell, want := range cases {
		got, err := Script(shell, []Var{{"DOCKER_CERT_PATH", v}}, false, "machine env m1")
		if err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		if first, _, _ := strings.Cut(got, "\n"); first != want {
			t.Errorf("%s:\n got %s\nwant %s", shell, first, want)
		}
	}
	// cmd: & and friends quoted, what cmd cannot escape refused.
	if got, _ := Script("cmd", []Var{{"X", `C:\a&b`}}, false, "m"); !strings.HasPrefix(got, `SET "X=C:\a&b"`+"\n") {
		t.Errorf("cmd: %q", got)
	}
	for _, bad := range []string{`C:\%PATH%`, `a"b`, "a\nb"} {
		if _, err := Script("cmd", []Var{{"X", bad}}, false, "m"); err == nil {
			t.Errorf("cmd took %q", bad)
		}
	}
	if _, err := Script("tcsh", []Var{{"X", "a\nb"}}, false, "m"); err == nil {
		t.Errorf("tcsh took a line break")
	}
}

func TestEnvScriptEmacs(t *testing.T) {
	got, err := EnvScript("emacs", envValues, "machine env m1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`(setenv "DOCKER_HOST" "tcp://10.0.0.5:2376")`, `;; Run this command`} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	got, _ = EnvScript("emacs", nil, "machine env -u")
	if !strings.Contains(got, `(setenv "DOCKER_HOST" nil)`) {
		t.Errorf("emacs unset:\n%s", got)
	}
}

func TestNoProxy(t *testing.T) {
	cases := []struct {
		env         map[string]string
		name, value string
	}{
		{nil, "NO_PROXY", "10.0.0.5"},
		{map[string]string{"NO_PROXY": "localhost"}, "NO_PROXY", "localhost,10.0.0.5"},
		{map[string]string{"no_proxy": "localhost,10.0.0.5"}, "no_proxy", "localhost,10.0.0.5"},
		{map[string]string{"NO_PROXY": "10.0.0.50"}, "NO_PROXY", "10.0.0.50,10.0.0.5"},
		{map[string]string{"no_proxy": "a", "NO_PROXY": "b"}, "no_proxy", "a,10.0.0.5"},
	}
	for _, c := range cases {
		n, v := NoProxy(func(k string) string { return c.env[k] }, "10.0.0.5")
		if n != c.name || v != c.value {
			t.Errorf("%v: %s=%s, want %s=%s", c.env, n, v, c.name, c.value)
		}
	}
}

func TestEnvScriptPOSIXShells(t *testing.T) {
	want, _ := EnvScript("bash", envValues, "m")
	for _, sh := range []string{"sh", "ksh", "dash", "ash"} {
		if got, err := EnvScript(sh, envValues, "m"); err != nil || got != want {
			t.Errorf("%s: %v\n%s", sh, err, got)
		}
	}
}
