package machine

import (
	"context"
	"fmt"
	"time"

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
	endTurn, err := m.swarmTurn(ctx, sw.ID)
	if err != nil {
		return nil, fmt.Errorf("swarm %s: waiting for this command's other work on it: %w", bootstrap.Short(sw.ID), err)
	}
	release, err := m.Store.TryLock("swarm", sw.ID)
	if err != nil {
		endTurn()
		return nil, fmt.Errorf("swarm %s: another roll, upgrade or rotate runs on it; try again when it is done (%v)", bootstrap.Short(sw.ID), err)
	}
	return func() { release(); endTurn() }, nil
}

// swarmTurnWait bounds the wait for this process's own other holder of a
// swarm's lock (a provisioning, with Docker's install, can take minutes).
const swarmTurnWait = 30 * time.Minute

// swarmTurn waits for this process's turn at a swarm: the machines of one
// command in one swarm ('machine provision m1 w1 m2') take its lock one
// after another, so their dockerd restarts never overlap, instead of
// refusing each other as another process is refused.
func (m *Manager) swarmTurn(ctx context.Context, id string) (func(), error) {
	m.turnsMu.Lock()
	if m.turns == nil {
		m.turns = map[string]chan struct{}{}
	}
	turn, ok := m.turns[id]
	if !ok {
		turn = make(chan struct{}, 1)
		m.turns[id] = turn
	}
	m.turnsMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, swarmTurnWait)
	defer cancel()
	select {
	case turn <- struct{}{}:
		return func() { <-turn }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lockSwarmOf takes the lock of the swarm the machine is a node of, for a
// command that may restart its dockerd (machine provision, regenerate-
// certs): through the machine itself when it manages, else through another
// manager of it shoal knows. A machine in no swarm, or one whose managers
// do not answer (no ID to lock by), gets a lock of nothing.
func (m *Manager) lockSwarmOf(ctx context.Context, mach *Machine, r bootstrap.Runner) (unlock func(), err error) {
	none := func() {}
	node, err := mach.Node(r)
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
	root := m.rootName(mach)
	other, closeOther := m.otherManager(ctx, mach.Name, root, state)
	defer closeOther()
	if other == nil {
		return none, nil
	}
	return m.LockSwarm(ctx, other)
}
