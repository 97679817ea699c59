package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers/all"
)

// runMachine runs the machine CLI in process, as main does.
func runMachine(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	storage := filepath.Join(t.TempDir(), "store")
	var out, errb bytes.Buffer
	full := append([]string{"--storage-path", storage, "--output", "plain"}, args...)
	code = cli.Run(context.Background(), newRoot(all.Registry()), full, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// docker-machine (commands/env.go, errImproperUnsetEnvArgs; runCommand
// logs the error and exits 1).
func TestEnvUnsetWithNameIsDockerMachinesError(t *testing.T) {
	for _, argv := range [][]string{{"env", "-u", "m1"}, {"env", "--unset", "m1", "m2"}, {"env", "m1", "-u"}} {
		code, out, errOut := runMachine(t, nil, argv...)
		if code != 1 || out != "" {
			t.Errorf("%q: exit %d, stdout %q; want 1 and nothing", argv, code, out)
		}
		if want := "Error: Expected no machine name when the -u flag is present\n"; errOut != want {
			t.Errorf("%q: stderr %q, want %q", argv, errOut, want)
		}
	}
}

// docker-machine's template: the four DOCKER_* lines, then the proxy one.
func TestEnvUnsetNoProxy(t *testing.T) {
	cases := []struct {
		shell, want string
		env         map[string]string
	}{
		{"bash", "unset DOCKER_TLS_VERIFY\nunset DOCKER_HOST\nunset DOCKER_CERT_PATH\nunset DOCKER_MACHINE_NAME\nunset NO_PROXY\n", map[string]string{"no_proxy": "", "NO_PROXY": ""}},
		{"bash", "unset DOCKER_TLS_VERIFY\nunset DOCKER_HOST\nunset DOCKER_CERT_PATH\nunset DOCKER_MACHINE_NAME\nunset no_proxy\n", map[string]string{"no_proxy": "10.0.0.5", "NO_PROXY": "x"}},
		{"fish", "set -e DOCKER_TLS_VERIFY;\nset -e DOCKER_HOST;\nset -e DOCKER_CERT_PATH;\nset -e DOCKER_MACHINE_NAME;\nset -e NO_PROXY;\n", map[string]string{"no_proxy": "", "NO_PROXY": ""}},
		{"tcsh", "unsetenv DOCKER_TLS_VERIFY;\nunsetenv DOCKER_HOST;\nunsetenv DOCKER_CERT_PATH;\nunsetenv DOCKER_MACHINE_NAME;\nunsetenv NO_PROXY;\n", map[string]string{"no_proxy": "", "NO_PROXY": ""}},
		{"powershell", "Remove-Item Env:\\\\DOCKER_TLS_VERIFY\nRemove-Item Env:\\\\DOCKER_HOST\nRemove-Item Env:\\\\DOCKER_CERT_PATH\nRemove-Item Env:\\\\DOCKER_MACHINE_NAME\nRemove-Item Env:\\\\NO_PROXY\n", map[string]string{"no_proxy": "", "NO_PROXY": ""}},
		{"cmd", "SET DOCKER_TLS_VERIFY=\nSET DOCKER_HOST=\nSET DOCKER_CERT_PATH=\nSET DOCKER_MACHINE_NAME=\nSET NO_PROXY=\n", map[string]string{"no_proxy": "", "NO_PROXY": ""}},
		{"emacs", "(setenv \"DOCKER_TLS_VERIFY\" nil)\n(setenv \"DOCKER_HOST\" nil)\n(setenv \"DOCKER_CERT_PATH\" nil)\n(setenv \"DOCKER_MACHINE_NAME\" nil)\n(setenv \"NO_PROXY\" nil)\n", map[string]string{"no_proxy": "", "NO_PROXY": ""}},
	}
	for _, c := range cases {
		code, out, errOut := runMachine(t, c.env, "env", "--shell", c.shell, "--no-proxy", "-u")
		if code != 0 || !strings.HasPrefix(out, c.want) {
			t.Errorf("%s %v: exit %d\n%s%s\nwant it to start with\n%s", c.shell, c.env, code, out, errOut, c.want)
		}
		// Without --no-proxy, the proxy variable is left alone.
		_, out, _ = runMachine(t, c.env, "env", "--shell", c.shell, "-u")
		if strings.Contains(strings.ToLower(out), "no_proxy") {
			t.Errorf("%s: env -u touches the proxy variable:\n%s", c.shell, out)
		}
	}
}
