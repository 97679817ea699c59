package provision

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/shell"
)

type serviceStep struct{}

func (serviceStep) Name() StepName { return StepService }
func (serviceStep) Check(_ context.Context, h *Host) (bool, error) {
	return h.restart || h.reload || h.Facts.Section("enabled") != "enabled" || h.Facts.Section("active") != "active", nil
}
func (serviceStep) Apply(ctx context.Context, h *Host) error {
	h.dockerdStarted = true
	var cmds []string
	if h.reload {
		cmds = append(cmds, "systemctl daemon-reload")
	}
	for _, u := range h.reenable {
		cmds = append(cmds, "systemctl reenable "+shell.Quote(u))
	}
	if h.Facts.Section("enabled") != "enabled" {
		cmds = append(cmds, "systemctl enable docker")
	}
	if h.restart && h.restartSocket {
		// The socket moves to docker.socket's: it listens on the path
		// again once the old dockerd, which unlinks it, has stopped.
		cmds = append(cmds, "systemctl stop docker", "systemctl restart docker.socket", "systemctl start docker")
	} else if h.restart {
		// restart, not start: a dockerd still "activating" (a host that just
		// booted) would keep its old configuration after a start.
		cmds = append(cmds, "systemctl restart docker")
	} else {
		cmds = append(cmds, "systemctl start docker")
	}
	_, err := h.R.RunSudo(ctx, strings.Join(cmds, " && "))
	return serviceFailed(ctx, h, err)
}

// dockerdWhyCmd prints the unit's state and the journal's tail: dockerd
// says there why it did not start (status's own lines are of the newest
// attempt only, often just systemd's "Failed to start").
const dockerdWhyCmd = "systemctl status docker --no-pager -n 0 2>&1 | head -n 8; journalctl -u docker.service --no-pager -n 10 -o cat 2>&1 | tail -n 10"

// serviceFailed sees to a failed docker-service command (err nil: it did
// not fail): a restart refused by systemd's start limit (docker.service: 3
// starts a minute, which a roll or a renewal right after another counts)
// is tried once more with the counter reset; an error carries the unit's
// own words on why dockerd did not come up, and when this run replaced
// daemon.json the old file goes back and dockerd starts again with it.
func serviceFailed(ctx context.Context, h *Host, err error) error {
	if err != nil && h.restart && strings.Contains(err.Error(), "attempted too often") {
		_, err = h.R.RunSudo(ctx, "systemctl reset-failed docker.service docker.socket; systemctl restart docker")
	}
	if err == nil {
		return nil
	}
	if st, _ := h.R.RunSudo(ctx, dockerdWhyCmd); len(st.Stdout) > 0 {
		err = fmt.Errorf("%w\nsystemctl status docker, and dockerd's last words (journal):\n%s", err, st.Stdout)
	}
	if !h.daemonJSON {
		return err
	}
	// This run's daemon.json may be why: the host's old one goes back, and
	// dockerd with it.
	if _, rerr := h.R.RunSudo(ctx, restoreDaemonJSONCmd); rerr != nil {
		return fmt.Errorf("%w\n%s is as it was before this run, and dockerd did not start with it either: %v", err, daemonJSONPath, rerr)
	}
	h.daemonJSON = false
	return fmt.Errorf("%w\n%s was put back as it was before this run, and dockerd runs with it again", err, daemonJSONPath)
}

// dockerVersionCmd prints the running daemon's version, and fails while
// no daemon answers. Where curl is, from /_ping (pingVersionFunc, the
// facts probe's way too: a fifth of the docker CLI's cost to the host,
// which counts when many hosts share a few cores); else, or when the
// answer is not Docker's, from `docker info`.
const dockerVersionCmd = pingVersionFunc + `
if command -v curl >/dev/null; then
  shoal_ping_version 10
  case $? in 0) exit 0 ;; 1) exit 1 ;; esac
fi
docker info --format '{{.ServerVersion}}'`

// WaitDocker waits until the Docker daemon answers on the host, and
// returns its version.
func WaitDocker(ctx context.Context, r Runner, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		res, err := r.RunSudo(ctx, dockerVersionCmd)
		if err == nil {
			return strings.TrimSpace(string(res.Stdout)), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the Docker daemon does not answer on %s: %w", r.Host(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
