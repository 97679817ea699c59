package shellenv

import (
	"regexp"
	"strings"
	"testing"
)

var envValues = []string{"1", "tcp://10.0.0.5:2376", "/home/u/.machine/certs", "m1"}

func TestEnvScriptSet(t *testing.T) {
	cases := map[string][]string{
		"bash": {
			`export DOCKER_TLS_VERIFY="1"`,
			`export DOCKER_HOST="tcp://10.0.0.5:2376"`,
			`export DOCKER_CERT_PATH="/home/u/.machine/certs"`,
			`export DOCKER_MACHINE_NAME="m1"`,
			`# eval "$(machine env m1)"`,
		},
		"zsh": {
			`export DOCKER_HOST="tcp://10.0.0.5:2376"`,
			`# eval "$(machine env m1)"`,
		},
		"fish": {
			`set -gx DOCKER_TLS_VERIFY "1";`,
			`set -gx DOCKER_HOST "tcp://10.0.0.5:2376";`,
			`set -gx DOCKER_MACHINE_NAME "m1";`,
			`# eval (machine env m1)`,
		},
		"tcsh": {
			`setenv DOCKER_HOST "tcp://10.0.0.5:2376";`,
			`setenv DOCKER_CERT_PATH "/home/u/.machine/certs";`,
			"# eval `machine env m1`",
		},
		"powershell": {
			`$Env:DOCKER_TLS_VERIFY = "1"`,
			`$Env:DOCKER_HOST = "tcp://10.0.0.5:2376"`,
			`$Env:DOCKER_MACHINE_NAME = "m1"`,
			`# & machine env m1 | Invoke-Expression`,
		},
		"cmd": {
			`SET DOCKER_TLS_VERIFY=1`,
			`SET DOCKER_HOST=tcp://10.0.0.5:2376`,
			`SET DOCKER_CERT_PATH=/home/u/.machine/certs`,
			`SET DOCKER_MACHINE_NAME=m1`,
			`@FOR /f "tokens=*" %i IN ('machine env m1') DO @%i`,
		},
	}
	for shell, want := range cases {
		got, err := EnvScript(shell, envValues, "machine env m1")
		if err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
		for _, w := range want {
			found := false
			for _, l := range lines {
				// The hint's comment marker is checked by TestEnvScriptHintIsAComment.
				if l == w || strings.HasPrefix(w, "@FOR") && strings.HasSuffix(l, " "+w) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no line %q in\n%s", shell, w, got)
			}
		}
		// The variables come first, in EnvVars order.
		for i, v := range EnvVars {
			if !strings.Contains(lines[i], v) || !strings.Contains(lines[i], envValues[i]) {
				t.Errorf("%s: line %d = %q, want %s=%s", shell, i+1, lines[i], v, envValues[i])
			}
		}
		if !strings.HasSuffix(got, "\n") {
			t.Errorf("%s: script does not end with a newline", shell)
		}
	}
}

func TestEnvScriptUnset(t *testing.T) {
	cases := map[string]*regexp.Regexp{
		"bash":       regexp.MustCompile(`^unset (\w+)$`),
		"zsh":        regexp.MustCompile(`^unset (\w+)$`),
		"fish":       regexp.MustCompile(`^set -e (\w+);$`),
		"tcsh":       regexp.MustCompile(`^unsetenv (\w+);$`),
		"powershell": regexp.MustCompile(`^Remove-Item Env:\\{1,2}(\w+)$`),
		"cmd":        regexp.MustCompile(`^SET (\w+)=$`),
	}
	for shell, re := range cases {
		got, err := EnvScript(shell, nil, "machine env --unset")
		if err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
		if len(lines) < len(EnvVars) {
			t.Fatalf("%s: %q: too few lines", shell, got)
		}
		for i, v := range EnvVars {
			m := re.FindStringSubmatch(lines[i])
			if m == nil || m[1] != v {
				t.Errorf("%s: line %d = %q, want it to unset %s (%s)", shell, i+1, lines[i], v, re)
			}
		}
		if strings.Contains(got, "DOCKER_HOST=tcp") || strings.Contains(got, "export") {
			t.Errorf("%s: unset script sets something: %q", shell, got)
		}
		if !strings.Contains(got, "machine env --unset") {
			t.Errorf("%s: no hint naming the command: %q", shell, got)
		}
	}
}

// The hint lines are comments in the shell that runs the script: cmd's
// FOR loop runs every line of output, and '#' is not a comment in cmd.
func TestEnvScriptHintIsAComment(t *testing.T) {
	comment := map[string]string{"bash": "#", "zsh": "#", "fish": "#", "tcsh": "#", "powershell": "#", "cmd": "REM"}
	for shell, c := range comment {
		got, err := EnvScript(shell, envValues, "machine env m1")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
		hint := lines[len(EnvVars):]
		if len(hint) == 0 {
			t.Errorf("%s: no hint lines", shell)
		}
		for _, l := range hint {
			if !strings.HasPrefix(l, c+" ") {
				t.Errorf("%s: hint line %q is not a %s comment", shell, l, c)
			}
		}
	}
}

func TestEnvScriptUnknownShell(t *testing.T) {
	_, err := EnvScript("nushell", envValues, "x")
	if err == nil {
		t.Fatal("EnvScript(nushell) succeeded")
	}
	if !strings.Contains(err.Error(), "nushell") {
		t.Errorf("error %q does not name the shell", err)
	}
	if _, err := EnvScript("", envValues, "x"); err == nil {
		t.Error("EnvScript(\"\") succeeded")
	}
}

func TestDetectShell(t *testing.T) {
	cases := map[string]string{
		"/bin/bash":           "bash",
		"/usr/bin/zsh":        "zsh",
		"/usr/local/bin/fish": "fish",
		"/bin/tcsh":           "tcsh",
		"/bin/csh":            "tcsh",
		"/bin/sh":             "bash",
		"":                    "bash",
		"/opt/weird/shell":    "bash",
	}
	for env, want := range cases {
		t.Setenv("SHELL", env)
		if got := DetectShell(); got != want {
			t.Errorf("SHELL=%q: DetectShell = %q, want %q", env, got, want)
		}
	}
	// Whatever it detects, EnvScript speaks it.
	t.Setenv("SHELL", "/usr/bin/fish")
	if _, err := EnvScript(DetectShell(), envValues, "x"); err != nil {
		t.Errorf("EnvScript(DetectShell()): %v", err)
	}
}
