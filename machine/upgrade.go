package machine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	mach, err := m.Load(name)
	if err != nil {
		return false, err
	}
	if set != nil {
		set(&mach.Engine)
		if errs := EngineErrors(mach.Engine); len(errs) > 0 {
			return false, errors.Join(errs...)
		}
		if err := m.Store.Save(mach.Machine); err != nil {
			return false, err
		}
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
	have, want, change, err := m.EngineChange(ctx, mach, client)
	if err != nil {
		return false, err
	}
	node, err := bootstrap.Open(mach.Name, mach.Hostname, mach.Address, client)
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
	var managers []*bootstrap.Node
	if state.Active() {
		root := mach.Name
		if master, err := m.RootMaster(mach.Machine); err == nil {
			root = master.Name
		}
		other, closeOther := m.otherManager(ctx, mach.Name, root, state)
		defer closeOther()
		if other != nil {
			managers = append(managers, other)
		}
		if state.Manager {
			managers = append(managers, node)
		}
	}
	r := &bootstrap.Reconciler{Event: m.Progress.Event, Redactor: m.Redactor, Parallel: 1}
	if !change {
		m.Progress.Event(name, "docker-install", ui.Unchanged, "Docker "+have)
		// A roll stopped after the install left the node drained.
		if was, ok := journal.Was[name]; ok && len(managers) > 0 {
			unlock, err := m.LockSwarm(ctx, managers[0])
			if err != nil {
				return false, err
			}
			defer unlock()
			return false, r.Restore(ctx, managers[0], map[string]string{name: state.NodeID}, map[string]string{name: was}, journal)
		}
		return false, nil
	}
	if want == "" {
		want = "the newest"
	}
	m.Progress.Event(name, "roll", ui.Info, fmt.Sprintf("engine %s -> %s", have, want))
	upgrade := func(ctx context.Context) error {
		_, err := m.ProvisionWith(ctx, mach, client)
		return err
	}
	if !state.Active() {
		return true, upgrade(ctx)
	}
	if len(managers) == 0 {
		return false, fmt.Errorf("%s is in a swarm but no manager of it answers: its tasks cannot be moved first, so its engine is not changed", name)
	}
	if resume == "" {
		resume = "machine upgrade " + shell.Word(name)
	}
	unlockSwarm, err := m.LockSwarm(ctx, managers[0])
	if err != nil {
		return false, err
	}
	defer unlockSwarm()
	t := &bootstrap.RollTarget{Node: node, NodeID: state.NodeID, Was: journal.Was[name], Change: upgrade}
	if mach.Cluster != "" {
		if b, err := os.ReadFile(m.Store.Cluster(mach.Cluster).UnlockKeyPath()); err == nil {
			t.UnlockKey = strings.TrimSpace(string(b))
			m.Redactor.Add(t.UnlockKey)
		}
	}
	return true, r.Roll(ctx, managers, [][]*bootstrap.RollTarget{{t}}, journal, drainTimeout, resume)
}

// Hold decides, from the provisioning steps that would change the host and
// its engine versions, whether changes that restart dockerd (a new engine,
// new TLS files) wait for a roll; it says why.
type Hold func(ctx context.Context, steps []string, have, want string) (hold bool, why string, err error)

// ProvisionHolding provisions the machine over an open connection with one
// facts probe, as ProvisionWith does, but keeps its engine and TLS files as
// they are when hold says so (then held is true).
//
// probes ride the facts probe's round trip (their answers in Report.Facts).
func (m *Manager) ProvisionHolding(ctx context.Context, mach *Machine, client *sshrun.Client, hold Hold, probes ...provision.Probe) (rep *provision.Report, held bool, why string, err error) {
	if fp := sshrun.Fingerprint(client.HostKey()); fp != mach.SSH.HostKeyFingerprint {
		if old := mach.SSH.HostKeyFingerprint; old != "" {
			m.Progress.Event(mach.Name, "host-key", ui.Changed, fmt.Sprintf("pinned %s (was %s)", fp, old))
		}
		mach.SSH.HostKeyFingerprint = fp
		if err := m.Store.Save(mach.Machine); err != nil {
			return nil, false, "", err
		}
	}
	spec, err := m.provisionSpec(mach)
	if err != nil {
		return nil, false, "", err
	}
	spec.Probes = append(append([]provision.Probe(nil), probes...), persistProbe())
	if mach.Daemon != nil {
		spec.KnownDaemon = provision.RunningDaemon(*mach.Daemon)
	}
	progress := func(step string, st ui.Status, detail string) { m.Progress.Event(mach.Name, step, st, detail) }
	progress("facts", ui.Started, "")
	h, err := provision.Prepare(ctx, client, spec)
	if err != nil {
		progress("facts", ui.Failed, err.Error())
		return nil, false, "", err
	}
	progress("facts", ui.Unchanged, h.OS.PrettyName)
	steps, err := provision.Plan(ctx, h)
	if err != nil {
		return nil, false, "", err
	}
	have, want, _, err := provision.EngineChange(h)
	if err != nil {
		return nil, false, "", err
	}
	if hold != nil {
		if held, why, err = hold(ctx, steps, have, want); err != nil {
			return nil, false, "", err
		}
	}
	if held {
		h.Spec.Install.Mode = "skip"
		h.Spec.TLS = nil
	}
	// What is set must survive a reboot that rewrites it (persist.go). The
	// copies are written first: the restore unit runs when dockerd starts,
	// and a restart in this run must put back the new /etc/hosts block, not
	// the last run's. Provisioning writes them (with its own steps, in one
	// session where it can) and reports them.
	files, enable, err := persist(ctx, client, spec, h.Facts.Section(persistProbeName))
	if err != nil {
		progress(persistStep, ui.Failed, err.Error())
		return nil, held, why, fmt.Errorf("%s: %w", mach.Name, err)
	}
	h.WriteFirst(persistStep, files)
	if enable {
		h.EnableUnit(provision.PersistUnitName)
	}
	rep, err = provision.Apply(ctx, h, progress)
	if err != nil || LoginOutdated(rep) {
		// The login's groups are those of its start: a new docker group
		// member is one only on a new login, so the next run makes one
		// (or this one does: EngineLogin).
		client.Forget()
	}
	if err != nil {
		return rep, held, why, err
	}
	if err := m.keepDaemon(mach, rep.Daemon); err != nil {
		return rep, held, why, err
	}
	if len(files) == 0 {
		// Only enabled again (by the docker-service step), or nothing.
		progress(persistStep, status(enable), "")
		if enable {
			rep.Changed = append(rep.Changed, persistStep)
		}
	}
	return rep, held, why, nil
}

// LoginOutdated tells whether provisioning changed the docker user's
// groups, which a login made before it does not have.
func LoginOutdated(rep *provision.Report) bool {
	return rep != nil && slices.Contains(rep.Changed, provision.UserStepName)
}

// keepDaemon records the daemon a provisioning left running (none: it was
// restarted, or not seen) in the machine's config, when that changed.
func (m *Manager) keepDaemon(mach *Machine, d provision.RunningDaemon) error {
	var have provision.RunningDaemon
	if mach.Daemon != nil {
		have = provision.RunningDaemon(*mach.Daemon)
	}
	if m.ReadOnly || d == have {
		return nil
	}
	mach.Daemon = nil
	if d != (provision.RunningDaemon{}) {
		sd := store.Daemon(d)
		mach.Daemon = &sd
	}
	return m.Store.Save(mach.Machine)
}
