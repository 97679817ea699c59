package machine

import "context"

// leaveSwarm takes the machine out of its swarm before it is removed.
func (m *Manager) leaveSwarm(ctx context.Context, mach *Machine) error {
	return nil
}

// swarmColumn is the SWARM column of `machine ls`.
func (m *Manager) swarmColumn(ctx context.Context, mach *Machine, c interface{}) string {
	return ""
}
