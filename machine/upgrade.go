package machine

import (
	"context"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/provision"
)

// EngineChange tells whether provisioning the machine would install
// another Docker engine over the one it runs (have and want are the
// versions; want "" is the newest of the source).
func (m *Manager) EngineChange(ctx context.Context, mach *Machine, client *sshrun.Client) (have, want string, change bool, err error) {
	spec, err := m.provisionSpec(mach)
	if err != nil {
		return "", "", false, err
	}
	h, err := provision.Prepare(ctx, client, spec)
	if err != nil {
		return "", "", false, err
	}
	return provision.EngineChange(h)
}

// ProvisionHeld provisions the machine but keeps the engine and the TLS
// files it has: the new ones come in a roll, one node at a time.
func (m *Manager) ProvisionHeld(ctx context.Context, mach *Machine, client *sshrun.Client) (*provision.Report, error) {
	spec, err := m.provisionSpec(mach)
	if err != nil {
		return nil, err
	}
	spec.Install.Mode = "skip"
	spec.TLS = nil // the TLS files on the host stay as they are
	progress := func(step string, st ui.Status, detail string) { m.Progress.Event(mach.Name, step, st, detail) }
	return provision.Provision(ctx, client, spec, progress)
}
