package machine

import (
	"context"
	"fmt"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/provision"
)

// persistStep is the name the reboot-proofing has in reports and plans.
const persistStep = "persist"

// persist makes what provisioning set survive a reboot that rewrites the
// hostname or /etc/hosts (a container's runtime, cloud-init): the copies,
// the restore unit, cloud-init's own setting. It reports whether it
// changed anything; apply false only looks.
func persist(ctx context.Context, c *sshrun.Client, spec provision.Spec, apply bool) (bool, error) {
	res, err := c.Run(ctx, provision.PersistProbe())
	if err != nil {
		return false, fmt.Errorf("%s: read the restore unit: %w", persistStep, err)
	}
	write, enable, err := provision.PersistChanges(string(res.Stdout), spec.Hostname, spec.Hosts)
	if err != nil {
		return false, fmt.Errorf("%s: %w", persistStep, err)
	}
	if !apply || (len(write) == 0 && !enable) {
		return len(write) > 0 || enable, nil
	}
	if _, err := c.RunSudo(ctx, "install -d -m 0755 "+provision.PersistDir); err != nil {
		return false, fmt.Errorf("%s: %w", persistStep, err)
	}
	for _, f := range write {
		if err := c.WriteFile(ctx, f.Path, f.Data, f.Mode, ""); err != nil {
			return false, fmt.Errorf("%s: %w", persistStep, err)
		}
	}
	if enable {
		if _, err := c.RunSudo(ctx, provision.PersistEnable()); err != nil {
			return false, fmt.Errorf("%s: %w", persistStep, err)
		}
	}
	return true, nil
}
