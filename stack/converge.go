package stack

import (
	"cmp"
	"encoding/json"
	"reflect"

	"github.com/moby/moby/api/types/swarm"
)

// Status is how far a service is from running as its spec asks. For a job
// Running counts the tasks that completed.
type Status struct {
	Service          string
	Running, Desired int
	Done             bool
	Failed           *Failure
}

// Failure is why a service does not converge: a task that failed (or that
// swarm cannot place), or an update swarm paused or rolled back.
type Failure struct {
	Service, Node, Task, State, Err string // Node is the task's node ID
	ExitCode                        int
}

// Converged tells from a service's tasks whether it runs as its current
// spec asks: replicated, the replicas running; global, one task running on
// each of eligibleNodes; a job, its tasks of the current iteration
// completed. Only tasks made from the current spec count, so an update is
// done when its new tasks run. A task of the current spec that failed, was
// rejected or cannot be placed is a failure while the service has not
// converged; so is an update swarm paused or rolled back.
func Converged(svc swarm.Service, tasks []swarm.Task, eligibleNodes int) Status {
	st := counts(svc, tasks, eligibleNodes)
	if f := updateFailure(svc, tasks); f != nil {
		st.Failed, st.Done = f, false
	}
	return st
}

func counts(svc swarm.Service, tasks []swarm.Task, eligibleNodes int) Status {
	st := Status{Service: svc.Spec.Name}
	m := svc.Spec.Mode
	if m.ReplicatedJob != nil || m.GlobalJob != nil {
		return jobStatus(st, svc, tasks, eligibleNodes)
	}
	global := m.Global != nil
	st.Desired = desiredTasks(m, eligibleNodes)
	current := ofCurrentSpec(svc, tasks)
	running := map[string]bool{} // by slot, or node for global services
	for _, t := range current {
		if t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning {
			running[place(t, global)] = true
		}
	}
	st.Running = len(running)
	st.Done = st.Running >= st.Desired && !updating(svc) && !stopping(tasks)
	if !st.Done {
		st.Failed = taskFailure(st.Service, current, running, global, swarm.TaskStateRunning)
	}
	return st
}

// desiredTasks is how many tasks a service (not a job) runs when it has
// converged.
func desiredTasks(m swarm.ServiceMode, eligibleNodes int) int {
	switch {
	case m.Global != nil:
		return eligibleNodes
	case m.Replicated != nil && m.Replicated.Replicas != nil:
		return int(*m.Replicated.Replicas)
	}
	return 1
}

// ofCurrentSpec are the tasks made from the service's current spec.
func ofCurrentSpec(svc swarm.Service, tasks []swarm.Task) []swarm.Task {
	want := taskTree(svc.Spec.TaskTemplate)
	var current []swarm.Task
	for _, t := range tasks {
		if within(taskTree(t.Spec), want) {
			current = append(current, t)
		}
	}
	return current
}

// updating tells whether swarm is still rolling an update (or its rollback)
// through the service's tasks.
func updating(svc swarm.Service) bool {
	u := svc.UpdateStatus
	return u != nil && (u.State == swarm.UpdateStateUpdating || u.State == swarm.UpdateStateRollbackStarted)
}

// stopping tells whether a task swarm is taking down still runs (an old
// spec's, after a start-first update): until it stops, some requests
// still reach what the deploy replaced.
func stopping(tasks []swarm.Task) bool {
	for _, t := range tasks {
		if t.DesiredState != swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning {
			return true
		}
	}
	return false
}

// place is where a task belongs: its slot (a retry takes the slot of the
// task it replaces), or its node for a global service or job.
func place(t swarm.Task, byNode bool) string {
	if byNode {
		return "node " + t.NodeID
	}
	b, _ := json.Marshal(t.Slot)
	return string(b)
}

func jobStatus(st Status, svc swarm.Service, tasks []swarm.Task, eligibleNodes int) Status {
	global := svc.Spec.Mode.GlobalJob != nil
	st.Desired = jobCompletions(svc.Spec.Mode, eligibleNodes)
	current := ofCurrentIteration(svc, tasks)
	done := map[string]bool{}
	for _, t := range current {
		if t.Status.State == swarm.TaskStateComplete {
			done[place(t, global)] = true
		}
	}
	st.Running = len(done)
	st.Done = st.Running >= st.Desired
	if !st.Done {
		st.Failed = taskFailure(st.Service, current, done, global, swarm.TaskStateComplete)
	}
	return st
}

// jobCompletions is how many tasks of a job must complete: one per
// eligible node for a global job, the total completions (or the
// concurrency, or one) for a replicated job.
func jobCompletions(m swarm.ServiceMode, eligibleNodes int) int {
	if m.GlobalJob != nil {
		return eligibleNodes
	}
	j := m.ReplicatedJob
	return int(*cmp.Or(j.TotalCompletions, j.MaxConcurrent, new(uint64(1))))
}

// ofCurrentIteration are the tasks of the job's current run.
func ofCurrentIteration(svc swarm.Service, tasks []swarm.Task) []swarm.Task {
	if svc.JobStatus == nil {
		return tasks
	}
	var current []swarm.Task
	for _, t := range tasks {
		if t.JobIteration != nil && t.JobIteration.Index == svc.JobStatus.JobIteration.Index {
			current = append(current, t)
		}
	}
	return current
}

// taskFailure is the newest task that failed, was rejected or waits with an
// error (no suitable node, insufficient resources) in a place where no task
// reached the goal state.
func taskFailure(service string, tasks []swarm.Task, reached map[string]bool, byNode bool, goal swarm.TaskState) *Failure {
	var worst *swarm.Task
	for i, t := range tasks {
		failed := t.Status.State == swarm.TaskStateFailed || t.Status.State == swarm.TaskStateRejected
		stuck := t.Status.Err != "" && t.DesiredState == goal && t.Status.State == swarm.TaskStatePending
		if !failed && !stuck {
			continue
		}
		if reached[place(t, byNode)] {
			continue
		}
		if worst == nil || t.Status.Timestamp.After(worst.Status.Timestamp) {
			worst = &tasks[i]
		}
	}
	if worst == nil {
		return nil
	}
	return failureOf(service, *worst)
}

func failureOf(service string, t swarm.Task) *Failure {
	f := &Failure{Service: service, Node: t.NodeID, Task: t.ID, State: string(t.Status.State), Err: t.Status.Err}
	if f.Err == "" {
		f.Err = t.Status.Message
	}
	if cs := t.Status.ContainerStatus; cs != nil {
		f.ExitCode = cs.ExitCode
	}
	return f
}

// updateFailure is an update swarm paused or rolled back, with the newest
// failed task (of any spec: after a rollback the spec is the old one) as
// its reason.
func updateFailure(svc swarm.Service, tasks []swarm.Task) *Failure {
	u := svc.UpdateStatus
	if u == nil {
		return nil
	}
	switch u.State {
	case swarm.UpdateStatePaused, swarm.UpdateStateRollbackPaused, swarm.UpdateStateRollbackCompleted:
	default:
		return nil
	}
	f := &Failure{Service: svc.Spec.Name, State: "update " + string(u.State), Err: u.Message}
	var worst *swarm.Task
	for i, t := range tasks {
		if t.Status.State != swarm.TaskStateFailed && t.Status.State != swarm.TaskStateRejected {
			continue
		}
		if worst == nil || t.Status.Timestamp.After(worst.Status.Timestamp) {
			worst = &tasks[i]
		}
	}
	if worst != nil {
		tf := failureOf(svc.Spec.Name, *worst)
		f.Node, f.Task, f.ExitCode = tf.Node, tf.Task, tf.ExitCode
		if tf.Err != "" {
			f.Err += ": " + tf.Err
		}
	}
	return f
}

// within tells whether a task's spec is the service's: every value it has
// is the service's. A task's copy may lack fields the service's has (docker
// 20.10 leaves out the restart policy, stop grace period, DNS config and
// runtime), and an update that changes only those is told by the service's
// update status instead.
func within(task, svc any) bool {
	switch t := task.(type) {
	case map[string]any:
		s, ok := svc.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range t {
			if !within(v, s[k]) {
				return false
			}
		}
		return true
	case []any:
		s, ok := svc.([]any)
		if !ok || len(s) != len(t) {
			return false
		}
		for i := range t {
			if !within(t[i], s[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(task, svc)
}

// taskTree is a task spec as JSON values without empty ones, to compare a
// task's copy of the spec with the service's.
func taskTree(t swarm.TaskSpec) any {
	var tree any
	b, _ := json.Marshal(t)
	_ = json.Unmarshal(b, &tree)
	return prune(tree)
}
