package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
)

// SudoTTYRunner is an optional capability of a Runner, checked with a type
// assertion: sudo through a pseudo-terminal, which old sudoers files with
// `Defaults requiretty` (CentOS 7, RHEL 7) demand. Provisioning turns it on
// only after sudo refused to run without a terminal.
type SudoTTYRunner interface {
	// SetSudoTTY makes the runner's later root commands (RunSudo, and the
	// root half of WriteFile) request a pty for their session. The pty
	// should have echo and output CRLF translation off (ssh.ECHO=0,
	// ssh.ONLCR=0) so that stdout comes back byte for byte; stderr arrives
	// merged into stdout, so a *RunError should carry stdout's tail.
	SetSudoTTY(on bool)
}

// requireTTY tells whether err is sudo refusing to run without a terminal.
func requireTTY(err error) bool {
	var re *sshrun.RunError
	return errors.As(err, &re) && strings.Contains(re.Stderr, "must have a tty")
}

// requireTTYError explains what to do when sudo wants a terminal and the
// runner cannot give it one.
func requireTTYError(r Runner, err error) error {
	file := "/etc/sudoers.d/90-shoal-requiretty"
	fix := "echo " + shell.Quote("Defaults:"+r.User()+" !requiretty") + " > " + file + " && chmod 0440 " + file
	return fmt.Errorf("sudo on %s requires a terminal (`Defaults requiretty` in /etc/sudoers, as on CentOS 7) and this connection cannot give it one. "+
		"As root on %s, run:\n    %s\nor connect as root.\n%w",
		r.Host(), r.Host(), fix, err)
}

// gatherFactsSudo is GatherFacts that switches the runner to sudo with a pty
// when, and only when, sudo asks for one. It returns whether it did.
func gatherFactsSudo(ctx context.Context, r Runner, dockerUser, addr string, known RunningDaemon, extra ...Probe) (*Facts, bool, error) {
	f, err := GatherFacts(ctx, r, dockerUser, addr, known, extra...)
	if err == nil || !requireTTY(err) {
		return f, false, err
	}
	t, ok := r.(SudoTTYRunner)
	if !ok {
		return nil, false, requireTTYError(r, err)
	}
	t.SetSudoTTY(true)
	f, err = GatherFacts(ctx, r, dockerUser, addr, known, extra...)
	if requireTTY(err) {
		return nil, true, requireTTYError(r, err)
	}
	return f, true, err
}
