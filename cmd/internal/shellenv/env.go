// Package shellenv renders the lines that set the docker CLI's variables in
// the user's shell, each value quoted for that shell (machine env, cluster
// env).
package shellenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// shellSyntax says how one shell sets and unsets a variable: set is
// called with the name and the value, and quotes the value itself.
type shellSyntax struct {
	set           func(name, value string) (string, error)
	unset         string
	hint, comment string
}

// Shells are the shells `machine env` speaks. Every value is quoted for its
// shell: a storage path with spaces, quotes or $(...) in it must come out of
// `eval` as the same string, never run.
var shells = map[string]shellSyntax{
	"bash": {posixSet, `unset %s`, `eval "$(%s)"`, "#"},
	"zsh":  {posixSet, `unset %s`, `eval "$(%s)"`, "#"},
	// The other POSIX shells read bash's lines, as docker-machine treats them.
	"sh":         {posixSet, `unset %s`, `eval "$(%s)"`, "#"},
	"ksh":        {posixSet, `unset %s`, `eval "$(%s)"`, "#"},
	"dash":       {posixSet, `unset %s`, `eval "$(%s)"`, "#"},
	"ash":        {posixSet, `unset %s`, `eval "$(%s)"`, "#"},
	"fish":       {fishSet, `set -e %s;`, `eval (%s)`, "#"},
	"tcsh":       {tcshSet, `unsetenv %s;`, "eval `%s`", "#"},
	"powershell": {powershellSet, `Remove-Item Env:\\%s`, `& %s | Invoke-Expression`, "#"},
	// cmd runs every line the FOR loop reads: its comments must be REM.
	"cmd":   {cmdSet, `SET %s=`, `@FOR /f "tokens=*" %%i IN ('%s') DO @%%i`, "REM"},
	"emacs": {emacsSet, `(setenv "%s" nil)`, `(with-temp-buffer (shell-command "%s" (current-buffer)) (eval-buffer))`, ";;"},
}

// ShellNames lists the shells --shell takes.
const ShellNames = "bash, zsh, fish, tcsh, powershell, cmd, emacs (sh, ksh, dash, ash: as bash)"

// escape puts a backslash (or esc) before each of the characters in special.
func escape(v, special, esc string) string {
	var b strings.Builder
	for _, r := range v {
		if strings.ContainsRune(special, r) {
			b.WriteString(esc)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// posixSet: inside double quotes only \ " $ and ` are special.
func posixSet(n, v string) (string, error) {
	return fmt.Sprintf(`export %s="%s"`, n, escape(v, "\\\"$`", `\`)), nil
}

// fishSet: fish expands $ (and, since 3.4, $(...)) inside double quotes.
func fishSet(n, v string) (string, error) {
	return fmt.Sprintf(`set -gx %s "%s";`, n, escape(v, "\\\"$", `\`)), nil
}

// tcshSet: csh cannot escape $ inside double quotes, so a value with
// anything special goes in single quotes ('\” for a quote, \! for !).
func tcshSet(n, v string) (string, error) {
	if strings.ContainsAny(v, "\n\r") {
		return "", fmt.Errorf("%s: tcsh cannot take a value with a line break", n)
	}
	if !strings.ContainsAny(v, "\"'$`\\!") {
		return fmt.Sprintf(`setenv %s "%s";`, n, v), nil
	}
	q := strings.ReplaceAll(v, `'`, `'\''`)
	q = strings.ReplaceAll(q, `!`, `\!`)
	return fmt.Sprintf(`setenv %s '%s';`, n, q), nil
}

// powershellSet: the backtick escapes $, ` and the quotes (PowerShell also
// takes typographic double quotes as quotes).
func powershellSet(n, v string) (string, error) {
	return fmt.Sprintf(`$Env:%s = "%s"`, n, escape(v, "`$\"\u201c\u201d\u201e", "`")), nil
}

// cmdSet: cmd has no reliable escape for % " and ! in a line a FOR loop
// runs, so those are refused; "SET "N=V"" keeps & | < > ^ ( ) literal.
func cmdSet(n, v string) (string, error) {
	if strings.ContainsAny(v, "%\"!\n\r") {
		return "", fmt.Errorf("%s: cmd cannot take a value with %%, \", ! or a line break: %q", n, v)
	}
	if strings.ContainsAny(v, "&|<>^()") {
		return fmt.Sprintf(`SET "%s=%s"`, n, v), nil
	}
	return fmt.Sprintf(`SET %s=%s`, n, v), nil
}

// emacsSet: an Emacs Lisp string escapes \ and ".
func emacsSet(n, v string) (string, error) {
	return fmt.Sprintf(`(setenv "%s" "%s")`, n, escape(v, "\\\"", `\`)), nil
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

// Var is one variable of an env script.
type Var struct{ Name, Value string }

// EnvScript prints the lines that set (values, in EnvVars order) or, with
// nil values, unset the variables in shell's syntax, and the usual hint:
// self is the command that printed them.
func EnvScript(shell string, values []string, self string) (string, error) {
	vars := make([]Var, len(EnvVars))
	for i, n := range EnvVars {
		vars[i].Name = n
		if values != nil {
			vars[i].Value = values[i]
		}
	}
	return Script(shell, vars, values == nil, self)
}

// Script prints the lines that set (or, with unset, unset) vars in shell's
// syntax, each value quoted for that shell, then the usual hint.
func Script(shell string, vars []Var, unset bool, self string) (string, error) {
	syn, ok := shells[shell]
	if !ok {
		return "", fmt.Errorf("--shell %q: want one of %s", shell, ShellNames)
	}
	var b strings.Builder
	for _, v := range vars {
		if unset {
			fmt.Fprintf(&b, syn.unset+"\n", v.Name)
			continue
		}
		line, err := syn.set(v.Name, v.Value)
		if err != nil {
			return "", err
		}
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "%s Run this command to configure your shell:\n%s "+syn.hint+"\n", syn.comment, syn.comment, self)
	return b.String(), nil
}

// NoProxy is the variable `env --no-proxy` sets and its value: the
// existing no_proxy (or else NO_PROXY) list with ip added once.
func NoProxy(getenv func(string) string, ip string) (name, value string) {
	name, value = "no_proxy", getenv("no_proxy")
	if value == "" {
		name, value = "NO_PROXY", getenv("NO_PROXY")
	}
	if value == "" {
		return name, ip
	}
	for _, e := range strings.Split(value, ",") {
		if strings.TrimSpace(e) == ip {
			return name, value
		}
	}
	return name, value + "," + ip
}

// UnsetScript prints the lines that unset EnvVars and, with noProxy, the
// proxy variable `env --no-proxy` set (no_proxy when it is set, else
// NO_PROXY, as docker-machine picks it), last, in docker-machine's order.
// docker-machine also pastes the variable's current value after its name
// (`unset no_proxy10.0.0.5`), which no shell reads as meant; not copied.
func UnsetScript(shell string, noProxy bool, getenv func(string) string, self string) (string, error) {
	vars := make([]Var, 0, len(EnvVars)+1)
	for _, n := range EnvVars {
		vars = append(vars, Var{Name: n})
	}
	if noProxy {
		n, _ := NoProxy(getenv, "")
		vars = append(vars, Var{Name: n})
	}
	return Script(shell, vars, true, self)
}
