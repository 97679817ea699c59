package machine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// shellSyntax says how one shell sets and unsets a variable.
type shellSyntax struct {
	set, unset, hint, comment string
}

// Shells are the shells `machine env` speaks.
var shells = map[string]shellSyntax{
	"bash":       {`export %s="%s"`, `unset %s`, `eval "$(%s)"`, "#"},
	"zsh":        {`export %s="%s"`, `unset %s`, `eval "$(%s)"`, "#"},
	"fish":       {`set -gx %s "%s";`, `set -e %s;`, `eval (%s)`, "#"},
	"tcsh":       {`setenv %s "%s";`, `unsetenv %s;`, "eval `%s`", "#"},
	"powershell": {`$Env:%s = "%s"`, `Remove-Item Env:\\%s`, `& %s | Invoke-Expression`, "#"},
	// cmd runs every line the FOR loop reads: its comments must be REM.
	"cmd": {`SET %s=%s`, `SET %s=`, `@FOR /f "tokens=*" %%i IN ('%s') DO @%%i`, "REM"},
}

// DetectShell guesses the user's shell from $SHELL.
func DetectShell() string {
	switch base := filepath.Base(os.Getenv("SHELL")); base {
	case "fish", "zsh", "tcsh", "bash":
		return base
	case "csh":
		return "tcsh"
	}
	return "bash"
}

// EnvVars are the docker CLI's variables `machine env` sets, in order.
var EnvVars = []string{"DOCKER_TLS_VERIFY", "DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_MACHINE_NAME"}

// EnvScript prints the lines that set (values, in EnvVars order) or, with
// nil values, unset the variables in shell's syntax, and the usual hint:
// self is the command that printed them.
func EnvScript(shell string, values []string, self string) (string, error) {
	syn, ok := shells[shell]
	if !ok {
		return "", fmt.Errorf("--shell %q: want bash, zsh, fish, powershell, cmd or tcsh", shell)
	}
	var b strings.Builder
	for i, v := range EnvVars {
		if values == nil {
			fmt.Fprintf(&b, syn.unset+"\n", v)
		} else {
			fmt.Fprintf(&b, syn.set+"\n", v, values[i])
		}
	}
	fmt.Fprintf(&b, "%s Run this command to configure your shell:\n%s "+syn.hint+"\n", syn.comment, syn.comment, self)
	return b.String(), nil
}
