package main

import (
	"errors"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// accessFlags are the passwords of a run. They are read before anything is
// made and only ever kept in memory.
type accessFlags struct {
	passwordFile, sudoPasswordFile string
	askPassword, askSudoPassword   bool
}

func (a *accessFlags) bind(fs *pflag.FlagSet, login bool) {
	if login {
		fs.StringVar(&a.passwordFile, "ssh-password-file", "", "log in once with the password in this file (first line; else $SSHPASS), install the machine's key, then use the key only. The password goes to whatever answers unless --ssh-host-key pins its key first")
		fs.BoolVar(&a.askPassword, "ssh-ask-password", false, "ask for the SSH password on the terminal")
	}
	fs.StringVar(&a.sudoPasswordFile, "sudo-password-file", "", "sudo's password for the SSH user, in this file (first line; else $SHOAL_SUDO_PASSWORD); given to sudo on its stdin")
	fs.BoolVar(&a.askSudoPassword, "sudo-ask-password", false, "ask for sudo's password on the terminal")
}

// secrets reads the passwords; every error is invalid input.
func (a *accessFlags) secrets() (machine.Secrets, error) {
	var s machine.Secrets
	var errs []error
	var err error
	s.Password, err = cli.SecretSource{What: "SSH password", File: a.passwordFile, FileArg: "--ssh-password-file",
		Ask: a.askPassword, AskArg: "--ssh-ask-password", Env: "SSHPASS"}.Read()
	errs = append(errs, err)
	s.SudoPassword, err = cli.SecretSource{What: "sudo password", File: a.sudoPasswordFile, FileArg: "--sudo-password-file",
		Ask: a.askSudoPassword, AskArg: "--sudo-ask-password", Env: "SHOAL_SUDO_PASSWORD"}.Read()
	errs = append(errs, err)
	if len(s.SudoPassword) > 0 && containsNewline(s.SudoPassword) {
		errs = append(errs, errors.New("the sudo password may not hold a line break"))
	}
	return s, errors.Join(errs...)
}

// manager reads the passwords (bad ones are invalid input, before the store
// is opened) and returns the run's manager holding them. Every command
// that may need root on a host (sudo) opens its manager this way.
func (a *accessFlags) manager(g *globals, cmd *cobra.Command) (*machine.Manager, error) {
	secrets, err := a.secrets()
	if err != nil {
		return nil, cli.Invalid(err)
	}
	m, err := g.manager(cmd)
	if err != nil {
		return nil, err
	}
	m.Secrets = secrets
	return m, nil
}

func containsNewline(b []byte) bool {
	for _, c := range b {
		if c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}
