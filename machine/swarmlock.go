package machine

import (
	"context"
	"fmt"

	"github.com/shoal-dev/shoal/bootstrap"
)

// LockSwarm takes, without waiting, the store's lock of the swarm that mgr
// (a manager) belongs to. Every command that restarts a node's dockerd in a
// swarm (a roll: cluster up, cluster upgrade, machine upgrade) or rotates
// the swarm's tokens or CA (cluster rotate) holds it for as long as it
// acts: two of them at once would each check the Raft quorum unaware of
// the other's restart, and together lose it. The key is the swarm's ID,
// which every such command can read from a manager before it changes
// anything, whether the machines are a cluster's or a --swarm-master's.
func (m *Manager) LockSwarm(ctx context.Context, mgr *bootstrap.Node) (unlock func(), err error) {
	sw, err := mgr.API.SwarmInspect(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: swarm inspect (the swarm's ID, for its lock): %w", mgr.Name, err)
	}
	unlock, err = m.Store.TryLock("swarm", sw.ID)
	if err != nil {
		return nil, fmt.Errorf("swarm %s: another roll, upgrade or rotate runs on it; try again when it is done (%v)", bootstrap.Short(sw.ID), err)
	}
	return unlock, nil
}

// lockSwarmOf takes the lock of the swarm the machine is a node of, for a
// command that may restart its dockerd (machine provision, regenerate-
// certs): through the machine itself when it manages, else through another
// manager of it shoal knows. A machine in no swarm, or one whose managers
// do not answer (no ID to lock by), gets a lock of nothing.
func (m *Manager) lockSwarmOf(ctx context.Context, mach *Machine, r bootstrap.Runner) (unlock func(), err error) {
	none := func() {}
	node, err := bootstrap.Open(mach.Name, mach.Hostname, mach.Address, r)
	if err != nil {
		return none, nil
	}
	defer node.Close()
	state, err := node.State(ctx)
	if err != nil || !state.Active() {
		return none, nil
	}
	if state.Manager {
		return m.LockSwarm(ctx, node)
	}
	root := mach.Name
	if master, err := m.RootMaster(mach.Machine); err == nil {
		root = master.Name
	}
	other, closeOther := m.otherManager(ctx, mach.Name, root, state)
	defer closeOther()
	if other == nil {
		return none, nil
	}
	return m.LockSwarm(ctx, other)
}
