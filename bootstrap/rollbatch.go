package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/wait"
)

// Roll rolls the batches through the swarm's managers (any manager that
// answers; one outside the batch when there is one). The first failure
// stops it with a *RollError.
func (r *Reconciler) Roll(ctx context.Context, managers []*Node, batches [][]*RollTarget, j RollJournal, drainTimeout time.Duration, resume string) error {
	for _, batch := range batches {
		if err := r.rollBatch(ctx, managers, batch, j, drainTimeout, resume); err != nil {
			return err
		}
	}
	return nil
}

// through picks a manager to act through: one not in the batch when one
// answers, else one in it.
func through(ctx context.Context, managers []*Node, batch []*RollTarget) (*Node, error) {
	in := map[*Node]bool{}
	for _, t := range batch {
		in[t.Node] = true
	}
	var inBatch *Node
	var errs []string
	for _, m := range managers {
		if ok, err := activeManager(ctx, m); !ok {
			if err != nil {
				errs = append(errs, err.Error())
			}
			continue
		}
		if !in[m] {
			return m, nil
		}
		inBatch = m
	}
	if inBatch != nil {
		return inBatch, nil
	}
	return nil, fmt.Errorf("no swarm manager answers: %s", strings.Join(errs, "; "))
}

// activeManager tells whether m answers as an active manager; err is why
// it does not answer.
func activeManager(ctx context.Context, m *Node) (bool, error) {
	s, err := m.State(ctx)
	return err == nil && s.Active() && s.Manager, err
}

// batchRoll is what the phases of one batch's roll share.
type batchRoll struct {
	r            *Reconciler
	managers     []*Node
	batch        []*RollTarget
	j            RollJournal
	drainTimeout time.Duration
	resume       string
	// mgr is the manager acted through.
	mgr *Node
	// drained: some node of the batch was drained (a failure leaves it so).
	drained bool
	// was is each node's availability before the roll, by node ID.
	was map[string]string
	// back are the services whose tasks ran on the batch's nodes: they get
	// their tasks spread back once the nodes are active again.
	back map[string]bool
	// before is the manager's record (version index) of each node before
	// the change: Ready counts only once the node registered again.
	before map[string]uint64
}

func (r *Reconciler) rollBatch(ctx context.Context, managers []*Node, batch []*RollTarget, j RollJournal, drainTimeout time.Duration, resume string) error {
	b := &batchRoll{r: r, managers: managers, batch: batch, j: j, drainTimeout: drainTimeout, resume: resume,
		was: map[string]string{}, back: map[string]bool{}, before: map[string]uint64{}}
	for _, phase := range []func(context.Context) error{
		b.checkQuorum,
		b.readAvailability,
		b.readServices,
		b.drain,
		b.readRecords,
		b.recheckQuorum,
		b.change,
		b.waitReady,
		b.activate,
		b.spreadBack,
	} {
		if err := phase(ctx); err != nil {
			return err
		}
	}
	return nil
}

// fail says the node failed at the step, as a *RollError.
func (b *batchRoll) fail(t *RollTarget, step RollStep, err error) error {
	b.r.event(t.Node.Name, "roll-"+string(step), ui.Failed, "")
	return &RollError{Node: t.Node.Name, Step: step, Err: err, Resume: b.resume, Untouched: !b.drained}
}

// checkQuorum picks the manager to act through and checks that every node
// of the batch may restart with the quorum kept (saying the warnings).
func (b *batchRoll) checkQuorum(ctx context.Context) error {
	return b.quorumFor(ctx, StepDrain, true)
}

// quorumFor picks the manager to act through and checks the quorum, the
// failure counted to step.
func (b *batchRoll) quorumFor(ctx context.Context, step RollStep, warn bool) error {
	var err error
	if b.mgr, err = through(ctx, b.managers, b.batch); err != nil {
		return b.fail(b.batch[0], step, err)
	}
	if t, err := b.r.restartCheck(ctx, b.mgr, b.batch, warn); err != nil {
		return b.fail(t, step, err)
	}
	return nil
}

// readAvailability reads what each node is to be made again (the
// journal's record first, when a stopped roll left it drained).
func (b *batchRoll) readAvailability(ctx context.Context) error {
	for _, t := range b.batch {
		n, _, err := b.mgr.API.NodeInspectWithRaw(ctx, t.NodeID)
		if err != nil {
			return b.fail(t, StepDrain, err)
		}
		b.was[t.NodeID] = string(n.Spec.Availability)
		if t.Was != "" {
			b.was[t.NodeID] = t.Was
		}
		if b.was[t.NodeID] == "" {
			b.was[t.NodeID] = string(swarm.NodeAvailabilityActive)
		}
	}
	return nil
}

// readServices notes the services that run on the batch's nodes.
func (b *batchRoll) readServices(ctx context.Context) error {
	for _, t := range b.batch {
		on, err := b.mgr.API.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("node", t.NodeID).Add("desired-state", "running")})
		if err != nil {
			return b.fail(t, StepDrain, err)
		}
		for _, task := range on {
			b.back[task.ServiceID] = true
		}
	}
	return nil
}

// drain drains the batch's nodes (the journal first remembers what they
// were) and waits until their tasks run elsewhere.
func (b *batchRoll) drain(ctx context.Context) error {
	for _, t := range b.batch {
		b.r.event(t.Node.Name, "roll-drain", ui.Started, "")
		if err := b.j.Drained(t.Node.Name, b.was[t.NodeID]); err != nil {
			return b.fail(t, StepDrain, err)
		}
		b.drained = true
		if _, err := EnsureNode(ctx, b.mgr, t.NodeID, NodeWant{Availability: string(swarm.NodeAvailabilityDrain)}); err != nil {
			return b.fail(t, StepDrain, err)
		}
	}
	for _, t := range b.batch {
		if err := waitRollDrained(ctx, b.mgr, t.NodeID, t.Node.Hostname, b.back, b.drainTimeout); err != nil {
			return b.fail(t, StepDrain, err)
		}
		b.r.event(t.Node.Name, "roll-drain", ui.Changed, "its tasks run elsewhere")
	}
	return nil
}

// readRecords notes the manager's record of each node before the change.
func (b *batchRoll) readRecords(ctx context.Context) error {
	for _, t := range b.batch {
		n, _, err := b.mgr.API.NodeInspectWithRaw(ctx, t.NodeID)
		if err != nil {
			return b.fail(t, StepChange, err)
		}
		b.before[t.NodeID] = n.Meta.Version.Index
	}
	return nil
}

// recheckQuorum: the drain took a while, and a manager may have gone down
// since the first check: the restart is only made with the quorum kept now.
func (b *batchRoll) recheckQuorum(ctx context.Context) error {
	return b.quorumFor(ctx, StepChange, false)
}

// change makes the change on the batch's nodes at once (unlocking a
// manager that comes back locked).
func (b *batchRoll) change(ctx context.Context) error {
	err := forEach(ctx, len(b.batch), b.batch, func(ctx context.Context, t *RollTarget) error {
		b.r.event(t.Node.Name, "roll-change", ui.Started, "")
		if err := t.Change(ctx); err != nil {
			return b.fail(t, StepChange, err)
		}
		if t.UnlockKey != "" {
			if err := waitAndUnlock(ctx, t.Node, t.UnlockKey, b.r.Redactor.Redact, false); err != nil {
				return b.fail(t, StepChange, err)
			}
		}
		b.r.event(t.Node.Name, "roll-change", ui.Changed, "")
		return nil
	})
	if err != nil {
		return firstRollError(err)
	}
	return nil
}

// waitReady waits until each node registered again after its restart and
// is Ready (a manager reachable), through a manager asked again (the one
// acted through may have been in the batch).
func (b *batchRoll) waitReady(ctx context.Context) error {
	var err error
	if b.mgr, err = through(ctx, b.managers, nil); err != nil {
		return b.fail(b.batch[0], StepReady, err)
	}
	for _, t := range b.batch {
		err := WaitNode(ctx, b.mgr, t.NodeID, b.r.readyTimeout(), func(n swarm.Node) bool {
			return n.Meta.Version.Index > b.before[t.NodeID] && nodeReady(n)
		})
		if err != nil {
			return b.fail(t, StepReady, fmt.Errorf("the node is not Ready again after the change: %w", err))
		}
		b.r.event(t.Node.Name, "roll-ready", ui.Changed, "Ready")
	}
	return nil
}

// activate makes each node what it was, and the journal forget it.
func (b *batchRoll) activate(ctx context.Context) error {
	for _, t := range b.batch {
		if _, err := EnsureNode(ctx, b.mgr, t.NodeID, NodeWant{Availability: b.was[t.NodeID]}); err != nil {
			return b.fail(t, StepActivate, err)
		}
		if err := b.j.Restored(t.Node.Name); err != nil {
			return b.fail(t, StepActivate, err)
		}
		b.r.event(t.Node.Name, "roll-activate", ui.Changed, b.was[t.NodeID])
	}
	return nil
}

// spreadBack spreads the services' tasks back and waits until they run.
func (b *batchRoll) spreadBack(ctx context.Context) error {
	last := b.batch[len(b.batch)-1]
	if err := b.r.spreadBack(ctx, b.mgr, b.batch, b.back); err != nil {
		return b.fail(last, StepTasks, err)
	}
	if err := WaitTasks(ctx, b.mgr, b.back, b.drainTimeout); err != nil {
		return b.fail(last, StepTasks, err)
	}
	return nil
}

// restartCheck asks mgr for the swarm's members and tells whether each
// node of the batch may restart with the Raft quorum kept (RestartCheck);
// it returns the node refused. warn: say RestartCheck's warnings.
func (r *Reconciler) restartCheck(ctx context.Context, mgr *Node, batch []*RollTarget, warn bool) (*RollTarget, error) {
	members, err := Members(ctx, mgr)
	if err != nil {
		return batch[0], err
	}
	for _, t := range batch {
		w, err := RestartCheck(members, t.NodeID)
		if err != nil {
			return t, err
		}
		if warn && w != "" {
			r.event(t.Node.Name, "roll", ui.Info, w)
		}
	}
	return nil, nil
}

// spreadBack gives the nodes their share of the services that ran on them:
// Swarm does not move tasks to a node that comes back, so each such service
// (except those pinned to the node, which return on their own) gets a
// forced update, which replaces its tasks by its own update_config and
// places them spread over the nodes. Without it the next drain would take
// down all the tasks that piled up on one node.
func (r *Reconciler) spreadBack(ctx context.Context, mgr *Node, batch []*RollTarget, services map[string]bool) error {
	for _, id := range slices.Sorted(maps.Keys(services)) {
		svc, _, err := mgr.API.ServiceInspectWithRaw(ctx, id, client.ServiceInspectOptions{})
		if err != nil {
			continue // removed meanwhile
		}
		// Global services run on every node by themselves.
		if pinnedToBatch(svc.Spec, batch) || svc.Spec.Mode.Replicated == nil {
			continue
		}
		if err := r.forceUpdate(ctx, mgr, batch[0].Node.Name, id, svc); err != nil {
			return err
		}
	}
	return nil
}

// pinnedToBatch tells a service pinned to one of the batch's nodes.
func pinnedToBatch(spec swarm.ServiceSpec, batch []*RollTarget) bool {
	return slices.ContainsFunc(batch, func(t *RollTarget) bool { return Pinned(spec, t.Node.Hostname, t.NodeID) })
}

// forceUpdate replaces the tasks of service id (svc as inspected) by its
// own update_config and waits until they are replaced; node names the
// event.
func (r *Reconciler) forceUpdate(ctx context.Context, mgr *Node, node, id string, svc swarm.Service) error {
	var prev *time.Time
	if svc.UpdateStatus != nil {
		prev = svc.UpdateStatus.StartedAt
	}
	spec := svc.Spec
	spec.TaskTemplate.ForceUpdate++
	if _, err := mgr.API.ServiceUpdate(ctx, id, svc.Version, spec); err != nil {
		return fmt.Errorf("service %s: update to spread its tasks: %w", spec.Name, err)
	}
	r.event(node, "roll-spread", ui.Changed, spec.Name)
	return waitServiceUpdated(ctx, mgr, id, prev, r.readyTimeout())
}

// waitServiceUpdated waits until a service's update that started after
// prev (the start of the update before it, nil for none) is done.
func waitServiceUpdated(ctx context.Context, mgr *Node, id string, prev *time.Time, timeout time.Duration) error {
	err := wait.Poll(ctx, pollInterval, timeout, func(ctx context.Context) (bool, error) {
		svc, _, err := mgr.API.ServiceInspectWithRaw(ctx, id, client.ServiceInspectOptions{})
		if err != nil {
			return false, nil
		}
		return updateDone(svc, prev)
	})
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("service %s: its update did not finish within %s", Short(id), timeout)
	}
	return err
}

// updateDone tells whether the service's update that started after prev
// completed; one that stopped is an error.
func updateDone(svc swarm.Service, prev *time.Time) (bool, error) {
	u := svc.UpdateStatus
	if u == nil || u.StartedAt == nil || (prev != nil && !u.StartedAt.After(*prev)) {
		return false, nil
	}
	switch u.State {
	case swarm.UpdateStateCompleted:
		return true, nil
	case swarm.UpdateStatePaused, swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
		return false, fmt.Errorf("service %s: its update stopped (%s): %s", svc.Spec.Name, u.State, u.Message)
	}
	return false, nil
}

// firstRollError picks the *RollError out of joined errors.
func firstRollError(err error) error {
	type multi interface{ Unwrap() []error }
	if m, ok := err.(multi); ok {
		for _, e := range m.Unwrap() {
			if re, ok := e.(*RollError); ok {
				return re
			}
		}
	}
	return err
}

// WaitTasks waits until every task of the services (nil: of every service)
// that the swarm wants running runs.
func WaitTasks(ctx context.Context, mgr *Node, services map[string]bool, timeout time.Duration) error {
	err := wait.Poll(ctx, pollInterval, timeout, func(ctx context.Context) (bool, error) {
		tasks, err := mgr.API.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("desired-state", "running")})
		return err == nil && allRunning(tasks, services), nil
	})
	if err != nil {
		return fmt.Errorf("the swarm's tasks are not all running within %s", timeout)
	}
	return nil
}

// Restore makes nodes that a stopped roll left drained what they were
// (names to the availability they had), through a manager.
func (r *Reconciler) Restore(ctx context.Context, mgr *Node, ids map[string]string, was map[string]string, j RollJournal) error {
	names := make([]string, 0, len(was))
	for n := range was {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		id := ids[name]
		if id == "" {
			continue
		}
		if err := WaitReady(ctx, mgr, id, r.readyTimeout()); err != nil {
			return fmt.Errorf("%s: left drained by a stopped roll: %w", name, err)
		}
		if _, err := EnsureNode(ctx, mgr, id, NodeWant{Availability: was[name]}); err != nil {
			return err
		}
		if err := j.Restored(name); err != nil {
			return err
		}
		r.event(name, "roll-activate", ui.Changed, was[name]+" (left drained by a stopped roll)")
	}
	return nil
}
