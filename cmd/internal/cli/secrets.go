package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"
)

// ReadSecretFile reads a password from a file: its first line, without the
// line end. An empty one is an error.
func ReadSecretFile(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %s holds no password on its first line", what, path)
	}
	return b, nil
}

// TakeEnvSecret reads a secret from the environment and removes it there,
// so that no child process (the docker CLI, ssh) inherits it.
func TakeEnvSecret(name string) []byte {
	v, ok := os.LookupEnv(name)
	os.Unsetenv(name)
	if !ok || v == "" {
		return nil
	}
	return []byte(v)
}

// AskSecret prompts on the terminal (/dev/tty) without echo.
func AskSecret(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, errors.New("asking for a password needs a terminal (/dev/tty); give a file instead")
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, errors.New("asking for a password needs a terminal; give a file instead")
	}
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("no password given")
	}
	return b, nil
}

// SecretSource is where one password comes from: a file flag, an ask flag,
// else an environment variable.
type SecretSource struct {
	What    string // "SSH password"
	File    string // path from the flag
	FileArg string // the flag's name, for errors
	Ask     bool
	AskArg  string
	Env     string // environment variable name
}

// Read returns the password, nil when none was given. Two sources at once
// are refused.
func (s SecretSource) Read() ([]byte, error) {
	env := TakeEnvSecret(s.Env)
	if s.File != "" && s.Ask {
		return nil, fmt.Errorf("%s and %s: give the %s one way", s.FileArg, s.AskArg, s.What)
	}
	switch {
	case s.File != "":
		return ReadSecretFile(s.FileArg, s.File)
	case s.Ask:
		b, err := AskSecret(s.What + ": ")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.AskArg, err)
		}
		return b, nil
	}
	if strings.ContainsRune(string(env), 0) {
		return nil, fmt.Errorf("$%s holds a NUL byte", s.Env)
	}
	return env, nil
}
