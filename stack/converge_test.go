package stack

import (
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

var (
	specV1 = swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "app:1"}, ForceUpdate: 1}
	specV2 = swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "app:2"}, ForceUpdate: 1}
	t0     = time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)
)

func task(id string, slot int, node string, spec swarm.TaskSpec, desired, state swarm.TaskState) swarm.Task {
	return swarm.Task{ID: id, Slot: slot, NodeID: node, Spec: spec, DesiredState: desired,
		Status: swarm.TaskStatus{State: state, Timestamp: t0}}
}

func run(id string, slot int, spec swarm.TaskSpec) swarm.Task {
	return task(id, slot, "n1", spec, swarm.TaskStateRunning, swarm.TaskStateRunning)
}

func failed(id string, slot int, node, err string, code int, at time.Duration) swarm.Task {
	tk := task(id, slot, node, specV2, swarm.TaskStateShutdown, swarm.TaskStateFailed)
	tk.Status.Err, tk.Status.Timestamp = err, t0.Add(at)
	tk.Status.ContainerStatus = &swarm.ContainerStatus{ExitCode: code}
	return tk
}

func replicated(n uint64, spec swarm.TaskSpec) swarm.Service {
	return swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "s_web"},
		TaskTemplate: spec, Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}}}}
}

func withUpdate(s swarm.Service, state swarm.UpdateState, msg string) swarm.Service {
	s.UpdateStatus = &swarm.UpdateStatus{State: state, Message: msg}
	return s
}

func job(global bool, iteration uint64) swarm.Service {
	s := swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "s_job"}, TaskTemplate: specV2},
		JobStatus: &swarm.JobStatus{JobIteration: swarm.Version{Index: iteration}}}
	if global {
		s.Spec.Mode.GlobalJob = &swarm.GlobalJob{}
	} else {
		s.Spec.Mode.ReplicatedJob = &swarm.ReplicatedJob{TotalCompletions: new(uint64(2)), MaxConcurrent: new(uint64(2))}
	}
	return s
}

func jobTask(id string, slot int, node string, state swarm.TaskState, iteration uint64) swarm.Task {
	tk := task(id, slot, node, specV2, swarm.TaskStateComplete, state)
	tk.JobIteration = &swarm.Version{Index: iteration}
	return tk
}

// withRuntime is the spec as a service holds it: its tasks' copies leave
// the runtime out.
func withRuntime(s swarm.TaskSpec) swarm.TaskSpec {
	s.Runtime = swarm.RuntimeContainer
	return s
}

type convergeCase struct {
	name  string
	svc   swarm.Service
	tasks []swarm.Task
	nodes int
	want  Status
}

func checkConverged(t *testing.T, tests []convergeCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Converged(tt.svc, tt.tasks, tt.nodes)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("\n got %+v %+v\nwant %+v %+v", got, got.Failed, tt.want, tt.want.Failed)
			}
		})
	}
}

func TestConvergedReplicated(t *testing.T) {
	checkConverged(t, []convergeCase{
		{"replicated all running", replicated(2, specV2), []swarm.Task{run("a", 1, specV2), run("b", 2, specV2)}, 3,
			Status{Service: "s_web", Running: 2, Desired: 2, Done: true}},
		{"replicas default to one", swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "s_web"},
			TaskTemplate: specV2}}, []swarm.Task{run("a", 1, specV2)}, 3, Status{Service: "s_web", Running: 1, Desired: 1, Done: true}},
		{"a task's copy without what docker 20.10 leaves out counts", replicated(1, swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "app:2", StopGracePeriod: new(10 * time.Second), DNSConfig: &swarm.DNSConfig{Search: []string{"lab"}}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}, Runtime: swarm.RuntimeContainer, ForceUpdate: 1}),
			[]swarm.Task{run("a", 1, specV2)}, 3, Status{Service: "s_web", Running: 1, Desired: 1, Done: true}},
		{"a task with a value the service has not is another spec's", replicated(1, specV2), []swarm.Task{run("a", 1,
			swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "app:2", Args: []string{"x"}}, ForceUpdate: 1})}, 3,
			Status{Service: "s_web", Running: 0, Desired: 1}},
		{"old spec does not count", replicated(2, specV2), []swarm.Task{run("a", 1, specV1), run("b", 2, specV2)}, 3,
			Status{Service: "s_web", Running: 1, Desired: 2}},
		{"starting", replicated(1, specV2), []swarm.Task{task("a", 1, "n1", specV2, swarm.TaskStateRunning, swarm.TaskStateStarting)}, 3,
			Status{Service: "s_web", Running: 0, Desired: 1}},
		{"an old task still stopping after a start-first update", replicated(1, specV2), []swarm.Task{run("b", 1, specV2),
			task("a", 1, "n1", specV1, swarm.TaskStateShutdown, swarm.TaskStateRunning)}, 3,
			Status{Service: "s_web", Running: 1, Desired: 1}},
		{"running but shutting down", replicated(1, specV2), []swarm.Task{task("a", 1, "n1", specV2, swarm.TaskStateShutdown, swarm.TaskStateRunning)}, 3,
			Status{Service: "s_web", Desired: 1}},
		{"update still in progress", withUpdate(replicated(1, specV2), swarm.UpdateStateUpdating, "update in progress"),
			[]swarm.Task{run("a", 1, specV2)}, 3, Status{Service: "s_web", Running: 1, Desired: 1}},
		{"update completed", withUpdate(replicated(1, specV2), swarm.UpdateStateCompleted, "update completed"),
			[]swarm.Task{run("a", 1, specV2)}, 3, Status{Service: "s_web", Running: 1, Desired: 1, Done: true}},
	})
}

func TestConvergedFailures(t *testing.T) {
	pendingNoNode := task("p1", 1, "", specV2, swarm.TaskStateRunning, swarm.TaskStatePending)
	pendingNoNode.Status.Err = "no suitable node (scheduling constraints not satisfied on 3 nodes)"
	rejected := task("r1", 1, "n2", specV2, swarm.TaskStateShutdown, swarm.TaskStateRejected)
	rejected.Status.Err = "No such image: app:2"
	checkConverged(t, []convergeCase{
		{"task failed with exit code", replicated(2, specV2), []swarm.Task{run("a", 1, specV2),
			failed("f1", 2, "n2", "task: non-zero exit (1)", 1, time.Second), failed("f0", 2, "n2", "older", 2, 0)}, 3,
			Status{Service: "s_web", Running: 1, Desired: 2, Failed: &Failure{Service: "s_web", Node: "n2", Task: "f1",
				State: "failed", Err: "task: non-zero exit (1)", ExitCode: 1}}},
		{"old failure in a slot that runs now is no failure", replicated(2, specV2), []swarm.Task{run("a", 1, specV2),
			failed("f1", 1, "n1", "boom", 1, 0)}, 3, Status{Service: "s_web", Running: 1, Desired: 2}},
		{"old failure while converged", replicated(1, specV2), []swarm.Task{run("a", 1, specV2), failed("f1", 1, "n1", "boom", 1, 0)}, 3,
			Status{Service: "s_web", Running: 1, Desired: 1, Done: true}},
		{"failure of the old spec is not this deploy's", replicated(1, specV1), []swarm.Task{failed("f1", 1, "n1", "boom", 1, 0)}, 3,
			Status{Service: "s_web", Desired: 1}},
		{"no such image", replicated(1, withRuntime(specV2)), []swarm.Task{rejected}, 3, Status{Service: "s_web", Desired: 1,
			Failed: &Failure{Service: "s_web", Node: "n2", Task: "r1", State: "rejected", Err: "No such image: app:2"}}},
		{"no suitable node", replicated(1, specV2), []swarm.Task{pendingNoNode}, 3, Status{Service: "s_web", Desired: 1,
			Failed: &Failure{Service: "s_web", Task: "p1", State: "pending", Err: pendingNoNode.Status.Err}}},
		{"update rolled back", withUpdate(replicated(1, specV1), swarm.UpdateStateRollbackCompleted, "rollback completed"),
			[]swarm.Task{run("a", 1, specV1), failed("f1", 1, "n3", "task: non-zero exit (3)", 3, 0)}, 3,
			Status{Service: "s_web", Running: 1, Desired: 1, Failed: &Failure{Service: "s_web", Node: "n3", Task: "f1", State: "update rollback_completed",
				Err: "rollback completed: task: non-zero exit (3)", ExitCode: 3}}},
		{"update paused", withUpdate(replicated(1, specV2), swarm.UpdateStatePaused, "update paused due to failure"), nil, 3,
			Status{Service: "s_web", Desired: 1, Failed: &Failure{Service: "s_web", State: "update paused", Err: "update paused due to failure"}}},
	})
}

func TestConvergedGlobalAndJobs(t *testing.T) {
	global := swarm.Service{Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "s_web"},
		TaskTemplate: specV2, Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}}}}
	checkConverged(t, []convergeCase{
		{"global one per node", global, []swarm.Task{
			task("a", 0, "n1", specV2, swarm.TaskStateRunning, swarm.TaskStateRunning),
			task("b", 0, "n2", specV2, swarm.TaskStateRunning, swarm.TaskStateRunning)}, 2,
			Status{Service: "s_web", Running: 2, Desired: 2, Done: true}},
		{"global missing a node", global, []swarm.Task{
			task("a", 0, "n1", specV2, swarm.TaskStateRunning, swarm.TaskStateRunning),
			task("b", 0, "n2", specV2, swarm.TaskStateRunning, swarm.TaskStatePreparing)}, 2,
			Status{Service: "s_web", Running: 1, Desired: 2}},
		{"replicated job done", job(false, 7), []swarm.Task{jobTask("a", 1, "n1", swarm.TaskStateComplete, 7),
			jobTask("b", 2, "n2", swarm.TaskStateComplete, 7)}, 3, Status{Service: "s_job", Running: 2, Desired: 2, Done: true}},
		{"replicated job of an old iteration", job(false, 8), []swarm.Task{jobTask("a", 1, "n1", swarm.TaskStateComplete, 7),
			jobTask("b", 2, "n2", swarm.TaskStateRunning, 8)}, 3, Status{Service: "s_job", Running: 0, Desired: 2}},
		{"replicated job failed", job(false, 7), []swarm.Task{jobTask("a", 1, "n1", swarm.TaskStateComplete, 7),
			jobTask("b", 2, "n2", swarm.TaskStateFailed, 7)}, 3, Status{Service: "s_job", Running: 1, Desired: 2,
			Failed: &Failure{Service: "s_job", Node: "n2", Task: "b", State: "failed"}}},
		{"global job done on every node", job(true, 1), []swarm.Task{jobTask("a", 0, "n1", swarm.TaskStateComplete, 1),
			jobTask("b", 0, "n2", swarm.TaskStateComplete, 1)}, 2, Status{Service: "s_job", Running: 2, Desired: 2, Done: true}},
		{"global job still running", job(true, 1), []swarm.Task{jobTask("a", 0, "n1", swarm.TaskStateComplete, 1),
			jobTask("b", 0, "n2", swarm.TaskStateRunning, 1)}, 2, Status{Service: "s_job", Running: 1, Desired: 2}},
	})
}
