package machine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
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

// Upgrade applies the machine's engine settings (after set changes them):
// a machine in a swarm gets its new engine as a roll of one node (drain,
// install, restart, Ready, active again, its tasks spread back); one in no
// swarm is provisioned at once. It says whether the engine changed.
// resume is the command that runs it again, for the hint of a stopped roll
// ("": machine upgrade NAME).
func (m *Manager) Upgrade(ctx context.Context, name string, set func(*store.Engine), drainTimeout time.Duration, resume string) (bool, error) {
	unlock, err := m.Store.Lock(ctx, "machine", name)
	if err != nil {
		return false, err
	}
	defer unlock()
	mach, err := m.loadSet(name, set)
	if err != nil {
		return false, err
	}
	logf, err := m.OpenLog(mach)
	if err != nil {
		return false, err
	}
	defer logf.Close()
	client, err := m.Connect(ctx, mach, logf)
	if err != nil {
		return false, err
	}
	defer client.Close()
	if resume == "" {
		resume = "machine upgrade " + shell.Word(name)
	}
	return m.upgradeConnected(ctx, mach, client, drainTimeout, resume)
}

// upgradeConnected is Upgrade on the machine's connection: it reads the
// engine change and the node's swarm state, and then changes the engine
// or gives back what a stopped roll left drained.
func (m *Manager) upgradeConnected(ctx context.Context, mach *Machine, client *sshrun.Client, drainTimeout time.Duration, resume string) (bool, error) {
	have, want, change, err := m.EngineChange(ctx, mach, client)
	if err != nil {
		return false, err
	}
	node, err := mach.Node(client)
	if err != nil {
		return false, err
	}
	defer node.Close()
	state, err := node.State(ctx)
	if err != nil {
		return false, err
	}
	journal, err := bootstrap.LoadJournal(filepath.Join(mach.Dir, "roll.json"))
	if err != nil {
		return false, err
	}
	managers, closeManagers := m.upgradeManagers(ctx, mach, node, state)
	defer closeManagers()
	r := &bootstrap.Reconciler{Event: m.Progress.Event, Redactor: m.Redactor, Parallel: 1}
	if !change {
		m.Progress.Event(mach.Name, "docker-install", ui.Unchanged, "Docker "+have)
		return false, m.restoreStopped(ctx, r, mach.Name, state, managers, journal)
	}
	want = cmp.Or(want, "the newest")
	m.Progress.Event(mach.Name, "roll", ui.Info, fmt.Sprintf("engine %s -> %s", have, want))
	upgrade := func(ctx context.Context) error {
		_, err := m.ProvisionWith(ctx, mach, client)
		return err
	}
	if !state.Active() {
		return true, upgrade(ctx)
	}
	if len(managers) == 0 {
		return false, fmt.Errorf("%s is in a swarm but no manager of it answers: its tasks cannot be moved first, so its engine is not changed", mach.Name)
	}
	unlockSwarm, err := m.LockSwarm(ctx, managers[0])
	if err != nil {
		return false, err
	}
	defer unlockSwarm()
	t := &bootstrap.RollTarget{Node: node, NodeID: state.NodeID, Was: journal.Was[mach.Name], Change: upgrade, UnlockKey: m.unlockKey(mach)}
	return true, r.Roll(ctx, managers, [][]*bootstrap.RollTarget{{t}}, journal, drainTimeout, resume)
}

// loadSet loads the machine and, when set is given, changes its engine
// settings with it and saves them (once they are valid).
func (m *Manager) loadSet(name string, set func(*store.Engine)) (*Machine, error) {
	mach, err := m.Load(name)
	if err != nil || set == nil {
		return mach, err
	}
	set(&mach.Engine)
	if errs := EngineErrors(mach.Engine); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return mach, m.Store.Save(mach.Machine)
}

// upgradeManagers are the managers that answer for a machine in a swarm
// while its engine changes: another one first, then itself when it is
// one (none when it is in no swarm).
func (m *Manager) upgradeManagers(ctx context.Context, mach *Machine, node *bootstrap.Node, state bootstrap.State) ([]*bootstrap.Node, func()) {
	if !state.Active() {
		return nil, func() {}
	}
	var managers []*bootstrap.Node
	root := m.rootName(mach)
	other, closeOther := m.otherManager(ctx, mach.Name, root, state)
	if other != nil {
		managers = append(managers, other)
	}
	if state.Manager {
		managers = append(managers, node)
	}
	return managers, closeOther
}

// restoreStopped gives a node that a roll stopped after the install left
// drained its availability back.
func (m *Manager) restoreStopped(ctx context.Context, r *bootstrap.Reconciler, name string, state bootstrap.State, managers []*bootstrap.Node, journal *bootstrap.FileJournal) error {
	was, ok := journal.Was[name]
	if !ok || len(managers) == 0 {
		return nil
	}
	unlock, err := m.LockSwarm(ctx, managers[0])
	if err != nil {
		return err
	}
	defer unlock()
	return r.Restore(ctx, managers[0], map[string]string{name: state.NodeID}, map[string]string{name: was}, journal)
}

// unlockKey is the machine's cluster's autolock key, when the store has it
// ("" else): a manager the roll restarts comes back locked.
func (m *Manager) unlockKey(mach *Machine) string {
	if mach.Cluster == "" {
		return ""
	}
	b, err := os.ReadFile(m.Store.Cluster(mach.Cluster).UnlockKeyPath())
	if err != nil {
		return ""
	}
	key := strings.TrimSpace(string(b))
	m.Redactor.Add(key)
	return key
}
