package bootstrap

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/shoal-dev/shoal/internal/ui"
)

// A roll applies a change that restarts dockerd (a new engine version, a
// new TLS certificate under a new CA) to the nodes of a running swarm one
// batch at a time: drain, wait until the tasks run elsewhere, change,
// wait until the node is Ready, make it what it was, wait for the tasks.

// RollNode is one node that the roll may change.
type RollNode struct {
	Name string
	Role string // RoleManager or RoleWorker
	// Leader: the node leads the Raft group (rolled last of the managers,
	// so that the leadership moves once).
	Leader bool
	// Change: the node needs the change (a node already right is not
	// touched).
	Change bool
	// Why says what changes (e.g. "engine 20.10.24 -> 20.10.99").
	Why string
}

// RollPlan orders the roll: managers first, one at a time, the leader last
// of them; then workers in batches of maxUnavailable (at least 1), in name
// order. Nodes without a change are left out.
func RollPlan(nodes []RollNode, maxUnavailable int) [][]RollNode {
	if maxUnavailable < 1 {
		maxUnavailable = 1
	}
	var managers, workers []RollNode
	for _, n := range nodes {
		if !n.Change {
			continue
		}
		if n.Role == RoleManager {
			managers = append(managers, n)
		} else {
			workers = append(workers, n)
		}
	}
	sort.SliceStable(managers, func(i, j int) bool {
		if managers[i].Leader != managers[j].Leader {
			return !managers[i].Leader
		}
		return managers[i].Name < managers[j].Name
	})
	sort.SliceStable(workers, func(i, j int) bool { return workers[i].Name < workers[j].Name })
	var out [][]RollNode
	for _, m := range managers {
		out = append(out, []RollNode{m})
	}
	for i := 0; i < len(workers); i += maxUnavailable {
		end := min(i+maxUnavailable, len(workers))
		out = append(out, append([]RollNode(nil), workers[i:end]...))
	}
	return out
}

// RollOrder is the plan in words: "m1, then w1 w2, then w3".
func RollOrder(batches [][]RollNode) string {
	var parts []string
	for _, b := range batches {
		var names []string
		for _, n := range b {
			names = append(names, n.Name)
		}
		parts = append(parts, strings.Join(names, " "))
	}
	return strings.Join(parts, ", then ")
}

// RestartCheck tells whether the swarm keeps its Raft quorum while the
// manager with ID id restarts (its dockerd down for a while). With a
// single manager the swarm takes no changes while it restarts (a warning);
// with two, neither may restart without stopping Raft for that time (a
// warning too: it comes back); a restart that would lose the quorum
// because other managers are already unreachable is refused.
func RestartCheck(members []Member, id string) (warning string, err error) {
	var managers, reachable int
	isManager := false
	for _, m := range members {
		if m.Role != RoleManager {
			continue
		}
		managers++
		if m.Reachable {
			reachable++
		}
		if m.ID == id {
			isManager = true
		}
	}
	if !isManager {
		return "", nil
	}
	switch {
	case managers == 1:
		return "the swarm has one manager: it takes no changes (no new tasks, no rescheduling) while that manager's dockerd restarts", nil
	case reachable < managers:
		if need := managers/2 + 1; reachable-1 < need {
			return "", fmt.Errorf("restarting a manager now would lose the Raft quorum: %d of %d managers reachable, and %d are needed while it restarts. Bring the unreachable managers back first", reachable, managers, need)
		}
	case managers == 2:
		return "2 managers: the swarm takes no changes while either restarts; 3 managers tolerate one restart", nil
	}
	return "", nil
}

// RollStep is one step of a node's roll, for the message of a failure.
type RollStep string

const (
	StepDrain    RollStep = "drain"
	StepChange   RollStep = "change"
	StepReady    RollStep = "wait-ready"
	StepActivate RollStep = "activate"
	StepTasks    RollStep = "wait-tasks"
)

// RollError says which node failed at which step; the node stays drained
// (RollStep before StepActivate) and the resume hint says what to type.
type RollError struct {
	Node   string
	Step   RollStep
	Err    error
	Resume string
	// Untouched: the roll stopped before it drained the node.
	Untouched bool
}

func (e *RollError) Error() string {
	state := "it is left drained"
	switch {
	case e.Untouched:
		state = "nothing was changed on it"
	case e.Step == StepTasks:
		state = "it is active again"
	}
	return fmt.Sprintf("%s: roll stopped at step %s: %v\n%s; the nodes after it are not touched. Fix the cause, then run '%s' to resume", e.Node, e.Step, e.Err, state, e.Resume)
}

func (e *RollError) Unwrap() error { return e.Err }

// RollTarget is a node of a batch and the change to make on it.
type RollTarget struct {
	Node *Node
	// NodeID is its swarm node ID.
	NodeID string
	// Change installs or configures, and restarts dockerd; it returns when
	// dockerd answers again.
	Change func(ctx context.Context) error
	// Was is the availability to give back, when a stopped roll left the
	// node drained ("" reads it before draining).
	Was string
	// UnlockKey unlocks a manager that comes back locked (autolock) from
	// the restart the roll made ("" when there is none).
	UnlockKey string
}

// RollJournal remembers the availability a node had before the roll
// drained it, so that a roll stopped half-way is resumed and the node made
// what it was (it survives the process: a file in the store).
type RollJournal interface {
	Drained(name, was string) error
	Restored(name string) error
}

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
		s, err := m.State(ctx)
		if err != nil || !s.Active() || !s.Manager {
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

func (r *Reconciler) rollBatch(ctx context.Context, managers []*Node, batch []*RollTarget, j RollJournal, drainTimeout time.Duration, resume string) error {
	drained := false
	fail := func(t *RollTarget, step RollStep, err error) error {
		r.event(t.Node.Name, "roll-"+string(step), ui.Failed, "")
		return &RollError{Node: t.Node.Name, Step: step, Err: err, Resume: resume, Untouched: !drained}
	}
	mgr, err := through(ctx, managers, batch)
	if err != nil {
		return fail(batch[0], StepDrain, err)
	}
	if t, err := r.restartCheck(ctx, mgr, batch, true); err != nil {
		return fail(t, StepDrain, err)
	}
	was := map[string]string{}
	for _, t := range batch {
		n, _, err := mgr.API.NodeInspectWithRaw(ctx, t.NodeID)
		if err != nil {
			return fail(t, StepDrain, err)
		}
		was[t.NodeID] = string(n.Spec.Availability)
		if t.Was != "" {
			was[t.NodeID] = t.Was
		}
		if was[t.NodeID] == "" {
			was[t.NodeID] = string(swarm.NodeAvailabilityActive)
		}
	}
	// The services that run on the batch's nodes get their tasks spread
	// back once the nodes are active again.
	back := map[string]bool{}
	for _, t := range batch {
		on, err := mgr.API.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("node", t.NodeID), filters.Arg("desired-state", "running"))})
		if err != nil {
			return fail(t, StepDrain, err)
		}
		for _, task := range on {
			back[task.ServiceID] = true
		}
	}
	for _, t := range batch {
		r.event(t.Node.Name, "roll-drain", ui.Started, "")
		if err := j.Drained(t.Node.Name, was[t.NodeID]); err != nil {
			return fail(t, StepDrain, err)
		}
		drained = true
		if _, err := EnsureNode(ctx, mgr, t.NodeID, NodeWant{Availability: string(swarm.NodeAvailabilityDrain)}); err != nil {
			return fail(t, StepDrain, err)
		}
	}
	for _, t := range batch {
		if err := waitRollDrained(ctx, mgr, t.NodeID, t.Node.Hostname, back, drainTimeout); err != nil {
			return fail(t, StepDrain, err)
		}
		r.event(t.Node.Name, "roll-drain", ui.Changed, "its tasks run elsewhere")
	}
	// The manager's record of each node before the change: Ready counts
	// only once the node registered again after its restart.
	before := map[string]uint64{}
	for _, t := range batch {
		n, _, err := mgr.API.NodeInspectWithRaw(ctx, t.NodeID)
		if err != nil {
			return fail(t, StepChange, err)
		}
		before[t.NodeID] = n.Meta.Version.Index
	}
	// The drain took a while, and a manager may have gone down since the
	// check above: the restart is only made with the quorum kept now.
	if mgr, err = through(ctx, managers, batch); err != nil {
		return fail(batch[0], StepChange, err)
	}
	if t, err := r.restartCheck(ctx, mgr, batch, false); err != nil {
		return fail(t, StepChange, err)
	}
	err = forEach(ctx, len(batch), batch, func(ctx context.Context, t *RollTarget) error {
		r.event(t.Node.Name, "roll-change", ui.Started, "")
		if err := t.Change(ctx); err != nil {
			return fail(t, StepChange, err)
		}
		if t.UnlockKey != "" {
			if err := waitAndUnlock(ctx, t.Node, t.UnlockKey, r.Redactor.Redact, false); err != nil {
				return fail(t, StepChange, err)
			}
		}
		r.event(t.Node.Name, "roll-change", ui.Changed, "")
		return nil
	})
	if err != nil {
		return firstRollError(err)
	}
	// The manager acted through may have been in the batch: ask again.
	if mgr, err = through(ctx, managers, nil); err != nil {
		return fail(batch[0], StepReady, err)
	}
	for _, t := range batch {
		err := WaitNode(ctx, mgr, t.NodeID, r.readyTimeout(), func(n swarm.Node) bool {
			return n.Meta.Version.Index > before[t.NodeID] && n.Status.State == swarm.NodeStateReady &&
				(n.Spec.Role != swarm.NodeRoleManager || n.ManagerStatus != nil && n.ManagerStatus.Reachability == swarm.ReachabilityReachable)
		})
		if err != nil {
			return fail(t, StepReady, fmt.Errorf("the node is not Ready again after the change: %w", err))
		}
		r.event(t.Node.Name, "roll-ready", ui.Changed, "Ready")
	}
	for _, t := range batch {
		if _, err := EnsureNode(ctx, mgr, t.NodeID, NodeWant{Availability: was[t.NodeID]}); err != nil {
			return fail(t, StepActivate, err)
		}
		if err := j.Restored(t.Node.Name); err != nil {
			return fail(t, StepActivate, err)
		}
		r.event(t.Node.Name, "roll-activate", ui.Changed, was[t.NodeID])
	}
	if err := r.spreadBack(ctx, mgr, batch, back); err != nil {
		return fail(batch[len(batch)-1], StepTasks, err)
	}
	if err := WaitTasks(ctx, mgr, back, drainTimeout); err != nil {
		return fail(batch[len(batch)-1], StepTasks, err)
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
	ids := make([]string, 0, len(services))
	for id := range services {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		svc, _, err := mgr.API.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			continue // removed meanwhile
		}
		pinned := false
		for _, t := range batch {
			pinned = pinned || Pinned(svc.Spec, t.Node.Hostname, t.NodeID)
		}
		if pinned || svc.Spec.Mode.Replicated == nil {
			continue // global services run on every node by themselves
		}
		var prev *time.Time
		if svc.UpdateStatus != nil {
			prev = svc.UpdateStatus.StartedAt
		}
		spec := svc.Spec
		spec.TaskTemplate.ForceUpdate++
		if _, err := mgr.API.ServiceUpdate(ctx, id, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
			return fmt.Errorf("service %s: update to spread its tasks: %w", spec.Name, err)
		}
		r.event(batch[0].Node.Name, "roll-spread", ui.Changed, spec.Name)
		if err := waitServiceUpdated(ctx, mgr, id, prev, r.readyTimeout()); err != nil {
			return err
		}
	}
	return nil
}

// waitServiceUpdated waits until a service's update that started after
// prev (the start of the update before it, nil for none) is done.
func waitServiceUpdated(ctx context.Context, mgr *Node, id string, prev *time.Time, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		svc, _, err := mgr.API.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if u := svc.UpdateStatus; err == nil && u != nil && u.StartedAt != nil && (prev == nil || u.StartedAt.After(*prev)) {
			if u.State == swarm.UpdateStateCompleted {
				return nil
			}
			switch u.State {
			case swarm.UpdateStatePaused, swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
				return fmt.Errorf("service %s: its update stopped (%s): %s", svc.Spec.Name, svc.UpdateStatus.State, svc.UpdateStatus.Message)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s: its update did not finish within %s", Short(id), timeout)
		case <-time.After(pollInterval):
		}
	}
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
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		tasks, err := mgr.API.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
		if err == nil && allRunning(tasks, services) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the swarm's tasks are not all running within %s", timeout)
		case <-time.After(pollInterval):
		}
	}
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

// Pinned tells whether a service's placement ties it to one node (by
// hostname or node ID): its task cannot run elsewhere while that node is
// drained, so a roll does not wait for it (the registry is such a service).
func Pinned(spec swarm.ServiceSpec, hostname, id string) bool {
	if spec.TaskTemplate.Placement == nil {
		return false
	}
	for _, c := range spec.TaskTemplate.Placement.Constraints {
		k, v, ok := strings.Cut(strings.ReplaceAll(c, " ", ""), "==")
		if !ok {
			continue
		}
		if (k == "node.hostname" && hostname != "" && strings.EqualFold(v, hostname)) || (k == "node.id" && v == id) {
			return true
		}
	}
	return false
}

// rollDrained: no task runs on the node, and every task of the node's
// services (those that ran there) wanted running runs, except those of
// services pinned to the node. Other services' tasks, pending for reasons
// of their own, do not hold the roll up.
func rollDrained(tasks []swarm.Task, onNode []swarm.Task, id string, services map[string]bool, pinned func(serviceID string) bool) bool {
	for _, t := range tasks {
		if !services[t.ServiceID] {
			continue
		}
		if t.NodeID == id && t.Status.State == swarm.TaskStateRunning {
			return false
		}
		if t.Status.State != swarm.TaskStateRunning && !pinned(t.ServiceID) {
			return false
		}
	}
	return !anyRunning(onNode)
}

func waitRollDrained(ctx context.Context, mgr *Node, id, hostname string, services map[string]bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pinnedCache := map[string]bool{}
	pinned := func(sid string) bool {
		if p, ok := pinnedCache[sid]; ok {
			return p
		}
		svc, _, err := mgr.API.ServiceInspectWithRaw(ctx, sid, swarm.ServiceInspectOptions{})
		if err != nil {
			return false
		}
		pinnedCache[sid] = Pinned(svc.Spec, hostname, id)
		return pinnedCache[sid]
	}
	for {
		tasks, err := mgr.API.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
		if err == nil {
			onNode, err2 := mgr.API.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("node", id))})
			if err2 == nil && rollDrained(tasks, onNode, id, services, pinned) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("draining node %s: its tasks did not move within %s (raise --drain-timeout if they need longer)", Short(id), timeout)
		case <-time.After(pollInterval):
		}
	}
}

// allRunning: every task of the services (nil: all) wanted running runs.
func allRunning(tasks []swarm.Task, services map[string]bool) bool {
	for _, t := range tasks {
		if services != nil && !services[t.ServiceID] {
			continue
		}
		if t.Status.State != swarm.TaskStateRunning {
			return false
		}
	}
	return true
}
