package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/stack"
	"github.com/shoal-dev/shoal/stack/deploy"
)

// StackOptions are how 'cluster up' and 'cluster deploy' treat stacks.
type StackOptions struct {
	// NoPrune keeps what left a stack's files, and stacks that left the
	// cluster file.
	NoPrune bool
	// DeployTimeout bounds the wait for each stack's services (0:
	// deploy.DefaultTimeout).
	DeployTimeout time.Duration
	// Only, when set, deploys that stack alone (and removes none).
	Only string
	// OverlayMTU is the file's overlay_mtu (set by Up and Deploy).
	OverlayMTU int
}

// removesGone tells whether a run removes the stacks that left the file:
// not with --no-prune, nor when it deploys one stack alone.
func (o StackOptions) removesGone() bool { return !o.NoPrune && o.Only == "" }

// deployStacks deploys the file's stacks in file order through the leader's
// engine, once the swarm and its registry are ready, and removes those that
// left the file (when pruning). It returns the stacks the swarm may still
// hold, for the state.
func (c *Converger) deployStacks(ctx context.Context, spec *Spec, leader *host, prev *State, res *Result) ([]string, error) {
	c.Stacks.OverlayMTU = spec.OverlayMTU
	kept, gone := stackNames(spec), goneStacks(prev, spec)
	if !c.Stacks.removesGone() {
		kept, gone = append(kept, gone...), nil
	}
	if len(spec.Stacks) == 0 && len(gone) == 0 {
		return kept, nil
	}
	api, err := leader.node.Client(ctx)
	if err != nil {
		return append(kept, gone...), err
	}
	for _, s := range c.selected(spec.Stacks) {
		if err := c.deployStack(ctx, api, s, res); err != nil {
			return append(kept, gone...), err
		}
	}
	for i, name := range gone {
		if err := c.removeGoneStack(ctx, api, name, res); err != nil {
			return append(kept, gone[i:]...), err
		}
	}
	return kept, nil
}

// selected are the stacks this run deploys: all, or the one --stack names.
func (c *Converger) selected(stacks []Stack) []Stack {
	if c.Stacks.Only == "" {
		return stacks
	}
	return slices.DeleteFunc(slices.Clone(stacks), func(s Stack) bool { return s.Name != c.Stacks.Only })
}

// goneStacks are the stacks an earlier run deployed that left the file.
func goneStacks(prev *State, spec *Spec) []string {
	if prev == nil {
		return nil
	}
	kept := stackNames(spec)
	var gone []string
	for _, name := range prev.Stacks {
		if !slices.Contains(kept, name) {
			gone = append(gone, name)
		}
	}
	return gone
}

func (c *Converger) deployStack(ctx context.Context, api *client.Client, s Stack, res *Result) error {
	c.Machines.Progress.Event("stack "+s.Name, "deploy", ui.Started, "")
	r, err := deploy.Deploy(ctx, api, stack.Source{Name: s.Name, Compose: s.Compose, Env: s.Env},
		deploy.Options{Registry: res.Registry, Prune: !c.Stacks.NoPrune, Timeout: c.Stacks.DeployTimeout, OverlayMTU: c.Stacks.OverlayMTU})
	res.Stacks = append(res.Stacks, r)
	res.Changed = res.Changed || r.Changed()
	for _, w := range r.Warnings {
		c.Machines.Progress.Event("stack "+s.Name, "deploy", ui.Info, w)
	}
	if err != nil {
		c.Machines.Progress.Event("stack "+s.Name, "deploy", ui.Failed, err.Error())
		return err
	}
	c.Machines.Progress.Event("stack "+s.Name, "deploy", stackStatus(r), r.Summary())
	return nil
}

func (c *Converger) removeGoneStack(ctx context.Context, api *client.Client, name string, res *Result) error {
	r, err := deploy.Remove(ctx, api, name)
	res.Stacks = append(res.Stacks, r)
	res.Changed = true
	if err != nil {
		return fmt.Errorf("stack %s left the file: %w", name, err)
	}
	c.Machines.Progress.Event("stack "+name, "remove", ui.Changed, "it left the cluster file")
	return nil
}

func stackStatus(r *deploy.Result) ui.Status {
	if r.Changed() {
		return ui.Changed
	}
	return ui.Unchanged
}

func stackNames(spec *Spec) []string {
	var out []string
	for _, s := range spec.Stacks {
		out = append(out, s.Name)
	}
	return out
}

// Deploy is the stack part of 'cluster up' alone, on the swarm the last run
// made: no host is touched. It holds the cluster's lock, as up does.
func (c *Converger) Deploy(ctx context.Context, spec *Spec) (*Result, error) {
	start := time.Now()
	c.UseSecrets(spec)
	unlock, err := lockCluster(c.Machines.Store, spec.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	prev, err := LoadState(c.Machines.Store, spec.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: run 'cluster up' first", err)
	}
	if c.Stacks.Only != "" && !slices.Contains(stackNames(spec), c.Stacks.Only) {
		return nil, fmt.Errorf("the cluster file has no stack %q (it has: %v)", c.Stacks.Only, stackNames(spec))
	}
	mgr, err := c.activeManager(ctx, spec, prev.Leader)
	if err != nil {
		return nil, err
	}
	defer mgr.close()
	res := &Result{Cluster: spec.Name, Leader: mgr.spec.Name, Registry: prev.Registry, Stages: map[string]time.Duration{}}
	kept, err := c.deployStacks(ctx, spec, mgr, prev, res)
	res.Stages["stacks"] = time.Since(start)
	res.Elapsed = time.Since(start)
	if !slices.Equal(kept, prev.Stacks) {
		prev.Stacks = kept
		if serr := saveState(c.Machines.Store, prev); err == nil {
			err = serr
		}
	}
	return res, err
}

// activeManager connects to the file's managers, the last leader first,
// until one answers as an active manager of the swarm.
func (c *Converger) activeManager(ctx context.Context, spec *Spec, leader string) (*host, error) {
	managers := spec.Managers()
	slices.SortStableFunc(managers, func(a, b Node) int {
		if a.Name == leader {
			return -1
		}
		if b.Name == leader {
			return 1
		}
		return 0
	})
	var errs []error
	for _, m := range managers {
		h := &host{spec: m}
		if err := c.openNode(ctx, h, readTimeout); err != nil {
			h.close()
			errs = append(errs, err)
			continue
		}
		if isActiveManager(ctx, h) {
			return h, nil
		}
		h.close()
		errs = append(errs, fmt.Errorf("%s is not an active swarm manager", m.Name))
	}
	return nil, fmt.Errorf("no manager of cluster %s answers (run 'cluster status'): %w", spec.Name, errors.Join(errs...))
}

// removeStacks removes the stacks shoal deployed before 'cluster down'
// takes the swarm apart, as 'docker stack rm' would (their services stop
// in order, their networks, secrets and configs go). A stack that cannot be
// removed is said and left to the swarm's end.
func (c *Converger) removeStacks(ctx context.Context, name string, hosts []*host, leader string) {
	prev, err := LoadState(c.Machines.Store, name)
	if err != nil || len(prev.Stacks) == 0 {
		return
	}
	i := slices.IndexFunc(hosts, func(h *host) bool { return h.mach.Name == leader })
	if i < 0 {
		return
	}
	api, closeAPI, err := c.engineOf(ctx, hosts[i])
	if err != nil {
		c.Machines.Progress.Event(leader, "remove stacks", ui.Failed, err.Error())
		return
	}
	defer closeAPI()
	for _, s := range prev.Stacks {
		if _, err := deploy.Remove(ctx, api, s); err != nil {
			c.Machines.Progress.Event("stack "+s, "remove", ui.Failed, err.Error())
			continue
		}
		c.Machines.Progress.Event("stack "+s, "remove", ui.Changed, "")
	}
}

// engineOf opens a connection of its own to h's engine (the caller's later
// steps connect on their own), and what closes it.
func (c *Converger) engineOf(ctx context.Context, h *host) (*client.Client, func(), error) {
	own := &host{spec: h.spec, mach: h.mach}
	if err := c.openNode(ctx, own, time.Minute); err != nil {
		own.close()
		return nil, nil, err
	}
	api, err := own.node.Client(ctx)
	if err != nil {
		own.close()
		return nil, nil, err
	}
	return api, own.close, nil
}

// planStacks is what up would do to each stack of the file, read through
// the swarm's anchor (nothing is built or changed). Without a swarm, every
// stack would be deployed whole.
func (c *Converger) planStacks(ctx context.Context, spec *Spec, anchor *bootstrap.Node) ([]*deploy.Result, error) {
	if len(spec.Stacks) == 0 {
		return nil, nil
	}
	var out []*deploy.Result
	if anchor == nil {
		for _, s := range spec.Stacks {
			out = append(out, &deploy.Result{Stack: s.Name, WouldBuild: []string{"(every image: the swarm is not made yet)"}})
		}
		return out, nil
	}
	api, err := anchor.Client(ctx)
	if err != nil {
		return nil, err
	}
	registry := ""
	if prev, err := LoadState(c.Machines.Store, spec.Name); err == nil {
		registry = prev.Registry
	}
	for _, s := range spec.Stacks {
		r, err := deploy.Deploy(ctx, api, stack.Source{Name: s.Name, Compose: s.Compose, Env: s.Env},
			deploy.Options{Registry: registry, Prune: !c.Stacks.NoPrune, DryRun: true})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// stackStatus reads the stacks the cluster's state records through the
// first active manager among hosts; none when no manager answers.
func (c *Converger) stackStatus(ctx context.Context, name string, nodes []NodeStatus, hosts []*host) []deploy.StackStatus {
	prev, err := LoadState(c.Machines.Store, name)
	if err != nil || len(prev.Stacks) == 0 {
		return nil
	}
	for i, h := range hosts {
		if h.node == nil || nodes[i].Role != bootstrap.RoleManager || nodes[i].Swarm != "active" {
			continue
		}
		api, err := h.node.Client(ctx)
		if err != nil {
			continue
		}
		var out []deploy.StackStatus
		for _, s := range prev.Stacks {
			out = append(out, deploy.Status(ctx, api, s))
		}
		return out
	}
	return nil
}
