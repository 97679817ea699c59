package cluster

import (
	"context"
	"github.com/shoal-dev/shoal/internal/validate"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/provision"
	"github.com/shoal-dev/shoal/stack/deploy"
)

// MachinePlan is what `cluster up` would do to one machine.
type MachinePlan struct {
	Name    string        `json:"name"`
	Role    validate.Role `json:"role"`
	Actions []string      `json:"actions"`
}

// PlanResult is the whole plan: the file's machines, the machines that
// leave, and what up would refuse to do.
type PlanResult struct {
	Cluster  string        `json:"cluster"`
	Machines []MachinePlan `json:"machines"`
	Leaving  []MachinePlan `json:"leaving"`
	Refusals []string      `json:"refusals"`
	Warnings []string      `json:"warnings"`
	// Roll is the order in which engine changes go through the swarm's
	// nodes: "m1, then w1, then w2" ("" when none).
	Roll string `json:"roll,omitempty"`
	// SSHKeyRotates: up makes the cluster's SSH key anew and replaces it
	// on every node that stays (a machine that held it leaves or left).
	SSHKeyRotates bool `json:"sshKeyRotates,omitempty"`
	// Stacks are what up would do to each stack (none before the swarm
	// exists: then each is deployed whole).
	Stacks []*deploy.Result `json:"stacks,omitempty"`
}

// Changes counts the machines that would change.
func (p *PlanResult) Changes() int {
	n := len(p.Leaving)
	for _, s := range p.Stacks {
		if s.Changed() {
			n++
		}
	}
	for _, m := range p.Machines {
		if len(m.Actions) > 0 {
			n++
		}
	}
	return n
}

// Plan reads the real state of every machine and lists what `cluster up`
// would change; it changes nothing on any host. Its phases: each machine
// as it is (planHost), the swarm's decisions (planSwarm), the engine
// changes held for the roll (planRoll), the certificates, the machines
// that leave, and the registry.
func (c *Converger) Plan(ctx context.Context, spec *Spec) (*PlanResult, error) {
	c.UseSecrets(spec)
	res := &PlanResult{Cluster: spec.Name, Machines: make([]MachinePlan, len(spec.Machines)), Leaving: []MachinePlan{}, Refusals: []string{}, Warnings: []string{}}
	hosts := make([]*host, len(spec.Machines))
	for i, m := range spec.Machines {
		hosts[i] = &host{spec: m}
		res.Machines[i] = MachinePlan{Name: m.Name, Role: m.Role, Actions: []string{}}
	}
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	err := parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		return c.planHost(ctx, h, &res.Machines[indexOf(hosts, h)])
	})
	if err != nil {
		return nil, err
	}
	// The swarm: the reconciler's own decisions, on the machines that
	// exist; the others join once made.
	var existing []*host
	for _, h := range hosts {
		if h.node != nil {
			existing = append(existing, h)
		}
	}
	plan := func(h *host) *MachinePlan { return &res.Machines[indexOf(hosts, h)] }
	anchor, err := c.planSwarm(ctx, spec, existing, res, plan)
	if err != nil {
		return nil, err
	}
	res.Roll = planRoll(ctx, spec, existing, anchor, plan)
	res.Warnings = append(res.Warnings, c.certWarnings()...)
	if err := c.planLeaving(ctx, spec, res); err != nil {
		return nil, err
	}
	planRegistry(ctx, spec, anchor, res.Machines)
	if res.Stacks, err = c.planStacks(ctx, spec, anchor); err != nil {
		return nil, err
	}
	return res, nil
}

// planHost lists what up would do to one machine as it is now: make it,
// start it, or the provisioning steps it lacks. A running machine is left
// connected, its node open, for the swarm's phase.
func (c *Converger) planHost(ctx context.Context, h *host, p *MachinePlan) error {
	if !c.Machines.Store.Exists(h.spec.Name) {
		p.Actions = append(p.Actions, "create ("+h.spec.Driver+")", "provision (all steps)", "join as "+string(h.spec.Role))
		return nil
	}
	mach, err := c.Machines.Load(h.spec.Name)
	if err != nil {
		return err
	}
	st, err := mach.Driver.State(ctx)
	if err != nil || st == drivers.NotFound {
		p.Actions = append(p.Actions, "create ("+h.spec.Driver+"): the host is gone", "provision (all steps)", "join as "+string(h.spec.Role)+" (the old node entry is removed)")
		return nil
	}
	if st != drivers.Running {
		p.Actions = append(p.Actions, "start")
		return nil
	}
	// The plan is of the file's engine settings, not the stored ones.
	e := &mach.Engine
	e.Install, e.Version, e.RepoURL = h.spec.Engine.Install, h.spec.Engine.Version, h.spec.Engine.RepoURL
	h.mach = mach
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h.client, err = c.Machines.Connect(cctx, mach, io.Discard)
	if err != nil {
		return err
	}
	steps, err := c.Machines.PlanProvision(ctx, mach, h.client)
	if err != nil {
		return err
	}
	for _, s := range steps.Steps {
		p.Actions = append(p.Actions, "provision: "+s.String())
	}
	h.restarts = provision.NeedsRestart(steps)
	h.node, err = mach.Node(h.client)
	return err
}

// planSwarm adds the reconciler's decisions for the machines that exist
// (their refusals to res) and returns the swarm's anchor (nil without
// one).
func (c *Converger) planSwarm(ctx context.Context, spec *Spec, existing []*host, res *PlanResult, plan func(*host) *MachinePlan) (*bootstrap.Node, error) {
	if len(existing) == 0 {
		return nil, nil
	}
	leader := spec.Managers()[0].Name
	prev, _ := LoadState(c.Machines.Store, spec.Name)
	req := c.swarmRequest(spec, existing, leader, prev)
	if !hasHost(existing, leader) {
		req.Policy.Leader = existing[0].spec.Name
	}
	out, _, derr := c.reconciler().Plan(ctx, req)
	if out == nil {
		return nil, derr
	}
	if derr != nil {
		res.Refusals = append(res.Refusals, strings.Split(derr.Error(), "\n")...)
	}
	for _, h := range existing {
		p := plan(h)
		h.state = out.States[h.spec.Name]
		if h.state.LocalNodeState == bootstrap.StateLocked {
			p.Actions = append(p.Actions, "locked: unlock with 'cluster unlock "+spec.Name+"'")
		}
		p.Actions = append(p.Actions, membershipActions(ctx, out.Decision.Of(h.spec.Name), out.Anchor, h)...)
	}
	return out.Anchor, nil
}

// membershipActions words the reconciler's decision for one node.
func membershipActions(ctx context.Context, dec bootstrap.NodeDecision, anchor *bootstrap.Node, h *host) []string {
	switch dec.Membership {
	case bootstrap.Init:
		return []string{"swarm init"}
	case bootstrap.Join:
		return []string{"join as " + string(h.spec.Role)}
	case bootstrap.Rejoin:
		return []string{"leave (" + dec.Reason + "), join as " + string(h.spec.Role)}
	case bootstrap.Readdress:
		return []string{"readdress: " + dec.Reason + " (leave, join again at the new address)"}
	case bootstrap.Unlock:
		return []string{"unlock (auto_unlock)"}
	case bootstrap.Keep:
		if anchor != nil {
			return nodeChanges(ctx, anchor, h)
		}
	}
	return nil
}

// planRoll marks the engine changes of the swarm's active nodes as going
// in the roll, one batch at a time, and returns the roll's order.
func planRoll(ctx context.Context, spec *Spec, existing []*host, anchor *bootstrap.Node, plan func(*host) *MachinePlan) string {
	for _, h := range existing {
		p := plan(h)
		for _, w := range h.restarts {
			if i := slices.Index(p.Actions, "provision: "+w.Change.String()); i >= 0 && h.state.Active() {
				h.held = true
				p.Actions[i] += " in the roll (drain, change, restart dockerd, Ready, active again)"
			}
		}
	}
	if anchor == nil {
		return ""
	}
	for _, h := range existing {
		if h.node == anchor {
			return bootstrap.RollOrder(bootstrap.RollPlan(rollNodes(existing, raftLeader(ctx, h, existing)), spec.MaxUnavailable))
		}
	}
	return ""
}

// hasHost reports whether a host of that name is among hosts.
func hasHost(hosts []*host, name string) bool {
	for _, h := range hosts {
		if h.spec.Name == name {
			return true
		}
	}
	return false
}

// certWarnings says what up does about certificates that expire soon.
func (c *Converger) certWarnings() []string {
	due, err := certs.DueIn(c.Machines.Store.CertsDir(), time.Now())
	switch {
	case err != nil:
		return nil
	case due.CA:
		return []string{"the CA expires within 30 days: up makes a new one, issues every server certificate again and restarts dockerd one node at a time"}
	case due.Client:
		return []string{"the client certificate expires within 30 days: up issues a new one"}
	}
	return nil
}

// planLeaving lists the machines that leave the cluster, and refuses
// their removal where up would.
func (c *Converger) planLeaving(ctx context.Context, spec *Spec, res *PlanResult) error {
	leaving, err := c.leaving(spec)
	if err != nil {
		return err
	}
	prev, _ := LoadState(c.Machines.Store, spec.Name)
	if res.SSHKeyRotates, err = c.keyRotates(spec, prev); err != nil {
		return err
	}
	for _, n := range leaving {
		mach, err := c.Machines.Load(n)
		if err != nil {
			return err
		}
		res.Leaving = append(res.Leaving, MachinePlan{Name: n, Role: roleOf(mach), Actions: []string{"drain", "leave", removalVerb(mach)}})
	}
	if err := c.checkRemovals(ctx, spec, leaving); err != nil {
		res.Refusals = append(res.Refusals, err.Error())
	}
	return nil
}

// planRegistry adds the registry service to its node's plan when the
// swarm has none yet.
func planRegistry(ctx context.Context, spec *Spec, anchor *bootstrap.Node, plans []MachinePlan) {
	if !spec.Registry.Enabled {
		return
	}
	for i := range plans {
		if plans[i].Name != spec.Registry.Node {
			continue
		}
		if anchor == nil {
			plans[i].Actions = append(plans[i].Actions, "registry service")
		} else if _, _, err := anchor.API.ServiceInspectWithRaw(ctx, "registry", client.ServiceInspectOptions{}); err != nil {
			plans[i].Actions = append(plans[i].Actions, "registry service")
		}
	}
}

func indexOf(hosts []*host, h *host) int {
	for i := range hosts {
		if hosts[i] == h {
			return i
		}
	}
	return -1
}

// nodeChanges lists role, label and availability changes for a node in
// the swarm.
func nodeChanges(ctx context.Context, leader *bootstrap.Node, h *host) []string {
	n, _, err := leader.API.NodeInspectWithRaw(ctx, h.state.NodeID)
	if err != nil {
		return []string{"inspect failed: " + err.Error()}
	}
	var out []string
	if validate.Role(n.Spec.Role) != h.spec.Role {
		verb := "promote to manager"
		if h.spec.Role == bootstrap.RoleWorker {
			verb = "demote to worker"
		}
		out = append(out, verb)
	}
	if h.spec.Availability != "" && string(n.Spec.Availability) != h.spec.Availability {
		out = append(out, "availability "+h.spec.Availability)
	}
	for k, v := range h.spec.Labels {
		if n.Spec.Labels[k] != v {
			out = append(out, "label "+k+"="+v)
		}
	}
	return out
}

// machinesOf lists the stored machines of a cluster.
func machinesOf(st *store.Store, name string) ([]string, error) {
	all, err := st.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range all {
		// Only the head of each config is read: every one holds the
		// cluster's host list.
		if c, err := st.ClusterOf(n); err == nil && c == name {
			out = append(out, n)
		}
	}
	return out, nil
}
