package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/wait"
	"github.com/shoal-dev/shoal/stack"
)

// DefaultTimeout bounds the wait for a stack's services to converge.
const DefaultTimeout = 5 * time.Minute

// failGrace is how long a task's failure must last, with the service not
// converged, to fail the deploy: swarm may place a rejected task on another
// node that has what it needs.
const failGrace = 5 * time.Second

// Failed is a stack whose service failed to converge: the first failure,
// with the last lines of its task's log.
type Failed struct {
	Stack   string
	Failure stack.Failure
	Log     []string
}

func (f *Failed) Error() string {
	x := f.Failure
	msg := fmt.Sprintf("stack %s: service %s: task %s", f.Stack, x.Service, x.State)
	if x.Node != "" {
		msg += " on " + x.Node
	}
	if x.Err != "" {
		msg += ": " + x.Err
	}
	if x.ExitCode != 0 {
		msg += fmt.Sprintf(" (exit code %d)", x.ExitCode)
	}
	if len(f.Log) > 0 {
		msg += "; its log ends: " + strings.Join(f.Log, " | ")
	}
	return msg
}

// Converge waits until every service of d runs what it was asked to, a task
// fails, or timeout passes; it returns each service's last status.
func Converge(ctx context.Context, api *client.Client, d *stack.Desired, timeout time.Duration) ([]stack.Status, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var last []stack.Status
	var failed *Failed
	var failingSince time.Time
	err := wait.Poll(ctx, time.Second, timeout, func(ctx context.Context) (bool, error) {
		var err error
		last, failed, err = statuses(ctx, api, d)
		if err != nil {
			return false, err
		}
		if failed == nil {
			failingSince = time.Time{}
			return allDone(last), nil
		}
		// Swarm retries a failed task, elsewhere too: a failure that
		// lasts is the deploy's.
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		return time.Since(failingSince) >= failGrace, nil
	})
	switch {
	case failed != nil && (err == nil || errors.Is(err, context.DeadlineExceeded)):
		failed.Log = taskLog(ctx, api, failed.Failure.Task)
		return last, failed
	case errors.Is(err, context.DeadlineExceeded):
		return last, fmt.Errorf("stack %s: not converged after %s: %s", d.Name, timeout, pending(last))
	}
	return last, err
}

// statuses is every service's status now, and the first failure.
func statuses(ctx context.Context, api *client.Client, d *stack.Desired) ([]stack.Status, *Failed, error) {
	eligible, nodes, err := eligibleNodes(ctx, api)
	if err != nil {
		return nil, nil, fmt.Errorf("stack %s: %w", d.Name, err)
	}
	names := make([]string, 0, len(d.Services))
	for name := range d.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []stack.Status
	for _, name := range names {
		st, err := serviceStatus(ctx, api, name, eligible)
		if err != nil {
			return nil, nil, fmt.Errorf("stack %s: %w", d.Name, err)
		}
		out = append(out, st)
		if st.Failed != nil {
			f := *st.Failed
			f.Node = nodeName(nodes, f.Node)
			return out, &Failed{Stack: d.Name, Failure: f}, nil
		}
	}
	return out, nil, nil
}

// eligibleNodes counts the nodes a global service runs a task on: ready
// and active (placement constraints aside).
func eligibleNodes(ctx context.Context, api *client.Client) (int, []swarm.Node, error) {
	nodes, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return 0, nil, fmt.Errorf("list nodes: %w", err)
	}
	eligible := 0
	for _, n := range nodes.Items {
		if n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive {
			eligible++
		}
	}
	return eligible, nodes.Items, nil
}

func serviceStatus(ctx context.Context, api *client.Client, name string, eligible int) (stack.Status, error) {
	svc, err := api.ServiceInspect(ctx, name, client.ServiceInspectOptions{})
	if err != nil {
		return stack.Status{}, fmt.Errorf("inspect service %s: %w", name, err)
	}
	tasks, err := api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", svc.Service.ID)})
	if err != nil {
		return stack.Status{}, fmt.Errorf("tasks of service %s: %w", name, err)
	}
	return stack.Converged(svc.Service, tasks.Items, eligible), nil
}

// nodeName is a node's hostname, for a failure's message.
func nodeName(nodes []swarm.Node, id string) string {
	for _, n := range nodes {
		if n.ID == id {
			return n.Description.Hostname
		}
	}
	return id
}

func allDone(sts []stack.Status) bool {
	for _, s := range sts {
		if !s.Done {
			return false
		}
	}
	return true
}

// pending says which services are not there yet, as running/desired.
func pending(sts []stack.Status) string {
	var out []string
	for _, s := range sts {
		if !s.Done {
			out = append(out, fmt.Sprintf("%s %d/%d", s.Service, s.Running, s.Desired))
		}
	}
	return strings.Join(out, ", ")
}

// taskLog is the last lines a failed task wrote (none when its node
// cannot say: a task that never started has no log).
func taskLog(ctx context.Context, api *client.Client, task string) []string {
	if task == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := api.TaskLogs(ctx, task, client.TaskLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "5"})
	if err != nil {
		return nil
	}
	defer r.Close()
	return logLines(r)
}

// logLines demultiplexes a task's log stream (stdout and stderr frames)
// into its last lines, each bounded.
func logLines(r io.Reader) []string {
	var buf bytes.Buffer
	lim := &limitWriter{w: &buf, n: 64 << 10}
	if _, err := stdcopy.StdCopy(lim, lim, r); err != nil && buf.Len() == 0 {
		return nil
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 200 {
				l = l[:200] + "..."
			}
			out = append(out, l)
		}
	}
	if len(out) > 5 {
		out = out[len(out)-5:]
	}
	return out
}

// limitWriter keeps the first n bytes and drops the rest, without error.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if k := min(len(p), l.n); k > 0 {
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

// StackStatus is how a stack's services run now ('cluster status').
type StackStatus struct {
	Stack    string         `json:"stack"`
	Services []stack.Status `json:"services"`
	Error    string         `json:"error,omitempty"`
}

// Status reads each service of stack name: tasks running and desired, and
// the failure of its current spec, if any.
func Status(ctx context.Context, api *client.Client, name string) StackStatus {
	out := StackStatus{Stack: name}
	cur, err := Current(ctx, api, name)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	eligible, _, err := eligibleNodes(ctx, api)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	for _, svc := range cur.Services {
		st, err := serviceStatus(ctx, api, svc.Spec.Name, eligible)
		if err != nil {
			out.Error = err.Error()
			return out
		}
		out.Services = append(out.Services, st)
	}
	sort.Slice(out.Services, func(i, j int) bool { return out.Services[i].Service < out.Services[j].Service })
	return out
}
