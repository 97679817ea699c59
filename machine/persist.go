package machine

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/provision"
)

// persistStep is the name the reboot-proofing has in reports and plans.
const persistStep = "persist"

// persistProbeName is the facts section that carries the restore unit's
// probe (provision.PersistProbe): it costs no session of its own.
const persistProbeName = "shoal-persist"

func persistProbe() provision.Probe {
	return provision.Probe{Name: persistProbeName, Cmd: provision.PersistProbe()}
}

// persist says what makes what provisioning set survive a reboot that
// rewrites the hostname or /etc/hosts (a container's runtime, cloud-init):
// the copies, the restore unit, cloud-init's own setting. It returns the
// files to write and whether the restore unit must be enabled; it writes
// nothing (provisioning does, first: provision.Host.WriteFirst and
// EnableUnit). probed is the probe's answer when the facts probe carried it
// (persistProbe), "" to ask the host now.
func persist(ctx context.Context, c *sshrun.Client, spec provision.Spec, probed string) (files []sshrun.File, enable bool, err error) {
	if !strings.Contains(probed, "@@enabled") {
		res, err := c.Run(ctx, provision.PersistProbe())
		if err != nil {
			return nil, false, fmt.Errorf("%s: read the restore unit: %w", persistStep, err)
		}
		probed = string(res.Stdout)
	}
	write, enable, err := provision.PersistChanges(probed, spec.Hostname, spec.Hosts)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", persistStep, err)
	}
	files = make([]sshrun.File, len(write))
	for i, f := range write {
		files[i] = sshrun.File{Path: f.Path, Data: f.Data, Mode: f.Mode}
		if path.Dir(f.Path) == provision.PersistDir {
			files[i].DirMode = 0o755
		}
	}
	return files, enable, nil
}
