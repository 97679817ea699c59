package cluster

import (
	"context"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/fanout"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/provision"
	"github.com/shoal-dev/shoal/stack/deploy"
)

// Converger makes the real machines what a Spec says.
type Converger struct {
	// Machines does each host's work: create, provision, connect.
	Machines *machine.Manager
	// Parallel bounds how many hosts are worked on at once.
	Parallel int
	// Force lets nodes of another swarm leave it and join this one.
	Force bool
	// DrainTimeout bounds the wait for a leaving node's tasks to move.
	DrainTimeout time.Duration
	// CommandLine renders the command the user runs for verb ("up",
	// "upgrade") on the file, for hints: the one they ran, with their --var
	// and --var-file (sensitive values elided). nil: "cluster VERB FILE".
	CommandLine func(verb string) string
	// AfterUp, when set, runs at the end of a successful 'cluster up'
	// while the run still holds its machines' locks (the data-plane
	// check: no 'machine provision' may restart a node's dockerd under it).
	AfterUp func(ctx context.Context, res *Result)
	// Stacks are how the run treats the file's stacks.
	Stacks StackOptions
	// restore, during Restore, is the backup the swarm comes from.
	restore *Backup
}

// NodeResult is one row of the summary.
type NodeResult struct {
	Name          string        `json:"name"`
	Role          validate.Role `json:"role"`
	Address       string        `json:"address"`
	Hostname      string        `json:"hostname"`
	NodeID        string        `json:"nodeID"`
	Ready         bool          `json:"ready"`
	DockerVersion string        `json:"dockerVersion"`
}

// Result says what `cluster up` did.
type Result struct {
	Cluster  string                   `json:"cluster"`
	Changed  bool                     `json:"changed"`
	Nodes    []NodeResult             `json:"nodes"`
	Leader   string                   `json:"leader"`
	Registry string                   `json:"registry,omitempty"`
	Stages   map[string]time.Duration `json:"stages"`
	// Stacks are what the run did to each stack.
	Stacks   []*deploy.Result `json:"stacks,omitempty"`
	Sessions int64            `json:"sshSessions"`
	Elapsed  time.Duration    `json:"elapsed"`
}

// host is one machine during a run: its config, connection and node.
type host struct {
	spec   Node
	mach   *machine.Machine
	client *sshrun.Client
	// relogin is a second login made in the run that put the login user
	// in the docker group: the engine's API goes over it (see
	// pipeline.engineClient).
	relogin *sshrun.Client
	node    *bootstrap.Node
	state   bootstrap.State
	log     io.WriteCloser
	changed bool
	// held: the host is a swarm node whose engine changes; provisioning
	// kept its engine and the roll installs the new one.
	held    bool
	heldWhy string
	// restarts: what the plan's provisioning would restart dockerd for
	// (those changes go in the roll on a swarm node).
	restarts []provision.Why
	// restarted: provisioning restarted dockerd in this run.
	restarted bool
	// facts are what provisioning's probe found (with the cluster's own
	// probes).
	facts *provision.Facts
	// regAnswered: the registry answered from the host as it was
	// provisioned (askRegistry).
	regAnswered bool
	// created and connected are done when the host's create, and its
	// connection, are (or failed: then mach or client is nil).
	created, connected *event
	// unlock releases the machine's lock, held from its create to the end
	// of the run so that no other command works on it meanwhile.
	unlock func()
}

func (h *host) close() {
	if h.unlock != nil {
		defer h.unlock()
		h.unlock = nil
	}
	if h.node != nil {
		h.node.Close()
	}
	if h.relogin != nil {
		h.relogin.Close()
	}
	if h.client != nil {
		h.client.Close()
	}
	if h.log != nil {
		h.log.Close()
	}
}

// parallel runs f for every host, at most n at once, and joins the errors;
// a bug met on one host fails that host alone.
func parallel(ctx context.Context, n int, hosts []*host, f func(context.Context, *host) error) error {
	return fanout.Each(ctx, n, hosts, func(h *host) string { return h.spec.Name }, f)
}

// clusterKey returns the cluster's SSH key pair, made once (and again when
// rotated): the docker users of the nodes log in to each other with it.
func clusterKey(st *store.Store, name string) (priv []byte, pub string, err error) {
	priv, err = os.ReadFile(st.Cluster(name).KeyPath())
	if errors.Is(err, fs.ErrNotExist) {
		return newClusterKey(st, name)
	}
	if err != nil {
		return nil, "", err
	}
	pub, err = publicOf(priv, name)
	return priv, pub, err
}

// upKey is the cluster key for this run of 'cluster up': a new one when a
// machine that held the old one leaves (or left) the cluster.
func (c *Converger) upKey(spec *Spec, prev *State) (priv []byte, pub string, err error) {
	due, err := c.keyRotates(spec, prev)
	if err != nil {
		return nil, "", err
	}
	if due {
		return newClusterKey(c.Machines.Store, spec.Name)
	}
	return clusterKey(c.Machines.Store, spec.Name)
}

// keyRotates tells whether a run of 'cluster up' makes the cluster key
// anew: a machine that held it is not in the file any more.
func (c *Converger) keyRotates(spec *Spec, prev *State) (bool, error) {
	holders, err := machinesOf(c.Machines.Store, spec.Name)
	if err != nil {
		return false, err
	}
	if prev != nil {
		holders = append(holders, prev.Machines...)
	}
	keep := make([]string, len(spec.Machines))
	for i, m := range spec.Machines {
		keep[i] = m.Name
	}
	return keyRotationDue(holders, keep), nil
}

// Up converges the cluster: machines made or adopted, provisioned, one
// swarm with its registry. A second run with nothing to do changes nothing.
func (c *Converger) Up(ctx context.Context, spec *Spec) (*Result, error) {
	start := time.Now()
	c.UseSecrets(spec)
	st := c.Machines.Store
	unlock, err := lockCluster(st, spec.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return c.up(ctx, spec, start)
}

// lockCluster takes the cluster's lock, or says who holds it.
func lockCluster(st *store.Store, name string) (func(), error) {
	unlock, err := st.TryLock("cluster", name)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: another 'cluster up' or 'cluster down' is running (%v)", name, err)
	}
	return unlock, nil
}

// up is Up with the cluster's lock held. During a restore the state it
// starts from is the backup's (restoreState), nothing leaves, and the
// store gets the backup's files only once the swarm state is in place.
func (c *Converger) up(ctx context.Context, spec *Spec, start time.Time) (*Result, error) {
	if c.restore != nil {
		if err := writeKeyPair(c.Machines.Store, spec.Name, c.restore); err != nil {
			return nil, err
		}
	}
	res := &Result{Cluster: spec.Name, Stages: map[string]time.Duration{}}
	leader := spec.Managers()[0].Name
	prev, leaving, priv, pub, err := c.upBefore(ctx, spec)
	if err != nil {
		return res, err
	}
	hosts := make([]*host, len(spec.Machines))
	for i, m := range spec.Machines {
		hosts[i] = &host{spec: m}
	}
	defer func() { res.Sessions += closeHosts(hosts) }()
	// The pipeline: each host goes through its steps as fast as it can and
	// waits only for what needs another host (see pipeline).
	p := c.newPipeline(spec, hosts, leader, prev, priv, pub, start)
	defer p.reg.stop() // before the hosts' connections close (deferred above)
	if err := p.run(ctx); err != nil {
		res.Stages = p.stages
		return res, err
	}

	changed, leaderHost, clusterID, err := c.swarmPhase(ctx, spec, hosts, leader, prev, leaving, p)
	res.Stages = p.stages
	if err != nil {
		return res, err
	}
	removeCheckLeftovers(ctx, leaderHost)
	res.Changed = changed || p.early.Changed()
	state, err := c.upResult(spec, hosts, leaderHost, clusterID, res, start, stacksBefore(prev, spec))
	if err != nil {
		return res, err
	}
	if c.AfterUp != nil {
		c.AfterUp(ctx, res)
	}
	err = c.stacksPhase(ctx, spec, leaderHost, prev, state, res)
	res.Elapsed = time.Since(start)
	return res, err
}

// swarmPhase is the swarm over every node (from a backup, when restoring):
// what the early swarm left, the order rules, labels, autolock, the roll,
// the registry, the machines that leave and the final check.
func (c *Converger) swarmPhase(ctx context.Context, spec *Spec, hosts []*host, leader string, prev *State, leaving []string, p *pipeline) (changed bool, leaderHost *host, clusterID string, err error) {
	if c.restore != nil {
		if err := c.restoreSwarm(ctx, hosts, leader); err != nil {
			return false, nil, "", err
		}
		if err := c.restored(spec); err != nil {
			return false, nil, "", err
		}
	}
	defer p.mark("swarm")
	changed, leaderHost, clusterID, err = c.swarmWith(ctx, spec, hosts, leader, prev, p.swarmChecks())
	if err == nil && len(leaving) > 0 {
		err = c.retire(ctx, leaderHost, leaving)
		changed = true
	}
	if err == nil && c.restore != nil {
		err = c.labelsBack(ctx, leaderHost)
	}
	return changed, leaderHost, clusterID, err
}

// StacksError is a run that made the swarm (the result says it whole) but
// whose stacks did not all deploy.
type StacksError struct{ Err error }

func (e *StacksError) Error() string { return e.Err.Error() }
func (e *StacksError) Unwrap() error { return e.Err }

// stacksPhase is the apps, on the swarm that is ready; the state then keeps
// the stacks the swarm may hold.
func (c *Converger) stacksPhase(ctx context.Context, spec *Spec, leaderHost *host, prev, state *State, res *Result) error {
	begin := time.Now()
	kept, err := c.deployStacks(ctx, spec, leaderHost, prev, res)
	if len(spec.Stacks) > 0 || len(state.Stacks) > 0 {
		res.Stages["stacks"] = time.Since(begin)
	}
	if !slices.Equal(kept, state.Stacks) {
		state.Stacks = kept
		if serr := saveState(c.Machines.Store, state); err == nil {
			return serr
		}
	}
	if err != nil {
		return &StacksError{Err: err}
	}
	return nil
}

// upBefore is what up decides before it changes anything: the state of
// the last run (or the backup's), the machines that leave (checked
// against the quorum) and the cluster's key.
func (c *Converger) upBefore(ctx context.Context, spec *Spec) (prev *State, leaving []string, priv []byte, pub string, err error) {
	prev, _ = LoadState(c.Machines.Store, spec.Name)
	if c.restore != nil {
		prev = restoreState(spec, c.restore)
	} else if leaving, err = c.leaving(spec); err != nil {
		return nil, nil, nil, "", err
	}
	// Removals are checked against the quorum before anything changes.
	if err := c.checkRemovals(ctx, spec, leaving); err != nil {
		return nil, nil, nil, "", err
	}
	// A machine that leaves keeps the key it holds: the key is made anew,
	// and the pipeline replaces the old one on every node that stays.
	priv, pub, err = c.upKey(spec, prev)
	return prev, leaving, priv, pub, err
}

// closeHosts closes the hosts' connections and counts the SSH sessions
// they opened.
func closeHosts(hosts []*host) (sessions int64) {
	for _, h := range hosts {
		if h.client != nil {
			sessions += h.client.Sessions()
		}
		if h.relogin != nil {
			sessions += h.relogin.Sessions()
		}
		h.close()
	}
	return sessions
}

// upResult fills the run's result in and saves the cluster's state.
// stacks are the stacks the state records: those the swarm may hold.
func (c *Converger) upResult(spec *Spec, hosts []*host, leaderHost *host, clusterID string, res *Result, start time.Time, stacks []string) (*State, error) {
	leader := leaderHost.spec.Name
	for _, h := range hosts {
		res.Changed = res.Changed || h.changed
		res.Nodes = append(res.Nodes, NodeResult{Name: h.mach.Name, Role: h.spec.Role, Address: h.mach.Address, Hostname: h.mach.Hostname,
			NodeID: h.state.NodeID, Ready: true, DockerVersion: h.state.DockerVersion})
	}
	res.Leader = leader
	if spec.Registry.Enabled {
		for _, h := range hosts {
			if h.mach.Name == spec.Registry.Node {
				res.Registry = fmt.Sprintf("%s:%d", h.mach.Hostname, spec.Registry.Port)
			}
		}
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.mach.Name
	}
	res.Elapsed = time.Since(start)
	state := &State{Name: spec.Name, File: spec.File, Machines: names, Leader: leader, Registry: res.Registry, ClusterID: clusterID, Stacks: stacks}
	return state, saveState(c.Machines.Store, state)
}

// stacksBefore is every stack the swarm may hold as a run begins: the file's
// and those an earlier run deployed (until they are removed).
func stacksBefore(prev *State, spec *Spec) []string {
	out := stackNames(spec)
	if prev != nil {
		for _, name := range prev.Stacks {
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

func labelList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// commandLine is what the user types to run verb on the file again.
func (c *Converger) commandLine(spec *Spec, verb string) string {
	if c.CommandLine != nil {
		return c.CommandLine(verb)
	}
	return "cluster " + verb + " " + shell.Word(spec.File)
}
