package bootstrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/fanout"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/wait"
)

// Target is one node the reconciler puts where Want says.
type Target struct {
	Node *Node
	Want Want
	// Advertise is the address the swarm reaches the node on.
	Advertise string
}

// Reconciler acts on the decisions of Decide: it observes every node,
// decides, and only then changes anything.
type Reconciler struct {
	Event    func(node, step string, st ui.Status, detail string)
	Redactor *sshrun.Redactor
	// Parallel bounds how many nodes are worked on at once.
	Parallel int
	// ReadyTimeout bounds each wait for a node to be Ready.
	ReadyTimeout time.Duration
	// ManagerLock, when set, is held while a manager joins or leaves
	// (across processes that share a store).
	ManagerLock func(ctx context.Context) (func(), error)
}

// Request is one reconciliation.
type Request struct {
	Targets []*Target
	// Anchors are managers the targets join; never changed.
	Anchors []*Node
	Policy  Policy
	// UnlockKey unlocks locked managers when Policy.CanUnlock.
	UnlockKey string
	// Init are the settings a swarm made in this run gets; an existing
	// swarm whose settings differ is reported, never made again.
	Init InitOptions
	// Known are targets' states read since anything last changed them
	// (the early swarm's, by name): the first observation takes them
	// instead of asking those engines again.
	Known map[string]State
}

// Outcome is what Reconcile found and did.
type Outcome struct {
	Anchor    *Node
	ClusterID string
	// NodeIDs are the targets' swarm node IDs, by name.
	NodeIDs  map[string]string
	States   map[string]State
	Decision Decision
	Changed  bool
	Warnings []string
}

func (r *Reconciler) event(node, step string, st ui.Status, detail string) {
	if r.Event != nil {
		r.Event(node, step, st, detail)
	}
}

// electionWait bounds the wait for a swarm to elect a Raft leader.
func (r *Reconciler) electionWait() time.Duration {
	if r.ReadyTimeout > 0 && r.ReadyTimeout < 30*time.Second {
		return r.ReadyTimeout
	}
	return 30 * time.Second
}

func (r *Reconciler) readyTimeout() time.Duration {
	if r.ReadyTimeout > 0 {
		return r.ReadyTimeout
	}
	return 2 * time.Minute
}

// Plan observes the nodes and decides (with the pure Decide), changing
// nothing: the plan.
func (r *Reconciler) Plan(ctx context.Context, req Request) (*Outcome, []Member, error) {
	all := append(append([]*Node(nil), req.Anchors...), nodesOf(req.Targets)...)
	want := wantsOf(req.Targets)
	obs, anchor, err := r.findAnchor(ctx, req, all, want)
	if err != nil {
		return nil, nil, err
	}
	cid := ""
	if anchor != "" {
		cid = obs.States[anchor].ClusterID
		anchor = SteadyAnchor(want, obs, anchor, cid)
	}
	pol := req.Policy
	pol.CanUnlock = pol.CanUnlock && req.UnlockKey != ""
	if req.UnlockKey == "" {
		pol.Restarted = nil
	}
	d, err := Decide(want, obs, pol, anchor, cid)
	out := &Outcome{ClusterID: cid, Decision: d, States: obs.States, NodeIDs: map[string]string{}}
	if anchor != "" {
		out.Anchor = byName(all, anchor)
	}
	for n, s := range obs.States {
		out.NodeIDs[n] = s.NodeID
	}
	return out, obs.Members, err
}

// findAnchor observes the nodes and picks the manager whose node list it
// can read (obs.Members). A swarm that just lost its Raft leader (a manager
// gone or moved) elects another within seconds: meanwhile its managers
// answer without the swarm's ID, or cannot list its nodes. Wait for it,
// bounded, rather than take them for strangers.
func (r *Reconciler) findAnchor(ctx context.Context, req Request, all []*Node, want []Want) (obs Observed, anchor string, err error) {
	deadline := time.Now().Add(r.electionWait())
	first := true
	err = wait.Poll(ctx, time.Second, 0, func(ctx context.Context) (bool, error) {
		obs = observeKnown(ctx, r.Parallel, all, req.Known, first)
		first = false
		var listErrs []error
		anchor, listErrs = listThroughCandidate(ctx, all, want, &obs, req.Policy)
		if anchor != "" || (len(listErrs) == 0 && !Electing(obs)) {
			return true, nil
		}
		if time.Now().After(deadline) {
			if len(listErrs) > 0 {
				return false, fmt.Errorf("no manager of the swarm can list its nodes: %w", errors.Join(listErrs...))
			}
			return true, nil // Decide says which managers have no leader
		}
		r.event(req.Policy.Leader, "swarm", ui.Info, "waiting for the swarm to elect a leader")
		return false, nil
	})
	return obs, anchor, err
}

// listThroughCandidate reads the swarm's node list (into obs.Members)
// through the first anchor candidate that answers, and says which.
func listThroughCandidate(ctx context.Context, all []*Node, want []Want, obs *Observed, pol Policy) (string, []error) {
	var listErrs []error
	for _, c := range AnchorCandidates(want, *obs, pol) {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		members, err := Members(lctx, byName(all, c))
		cancel()
		if err != nil {
			listErrs = append(listErrs, err)
			continue
		}
		obs.Members = members
		return c, listErrs
	}
	return "", listErrs
}

func (r *Reconciler) withManagerLock(ctx context.Context, f func() error) error {
	if r.ManagerLock == nil {
		return f()
	}
	unlock, err := r.ManagerLock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return f()
}

func (r *Reconciler) leave(ctx context.Context, n *Node, why string) error {
	r.event(n.Name, "swarm-leave", ui.Started, why)
	if err := n.Leave(ctx, true); err != nil {
		r.event(n.Name, "swarm-leave", ui.Failed, "")
		return err
	}
	r.event(n.Name, "swarm-leave", ui.Changed, why)
	return nil
}

func otherManagerTarget(ts []*Target, not *Node) *Node {
	for _, t := range ts {
		if t.Node != not && t.Want.Role == RoleManager {
			return t.Node
		}
	}
	return nil
}

func nodesOf(ts []*Target) []*Node {
	out := make([]*Node, len(ts))
	for i, t := range ts {
		out[i] = t.Node
	}
	return out
}

func wantsOf(ts []*Target) []Want {
	out := make([]Want, len(ts))
	for i, t := range ts {
		out[i] = wantOf(t)
	}
	return out
}

// wantOf is the target's Want, with the address it is reached on.
func wantOf(t *Target) Want {
	w := t.Want
	w.Advertise = cmp.Or(w.Advertise, t.Advertise)
	return w
}

func byName(ns []*Node, name string) *Node {
	for _, n := range ns {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func targetOf(ts []*Target, name string) *Target {
	for _, t := range ts {
		if t.Want.Name == name {
			return t
		}
	}
	return nil
}

func nameOfHostname(ts []*Target, hostname string) string {
	for _, t := range ts {
		if t.Want.Hostname == hostname {
			return t.Want.Name
		}
	}
	return hostname
}

// forEach runs f for every item, at most n at once, and joins the errors.
func forEach[T any](ctx context.Context, n int, items []T, f func(context.Context, T) error) error {
	return fanout.Each(ctx, n, items, nil, f)
}

// initDiffers reports the init-only settings an existing swarm does not
// have as asked (see InitDiffers); nothing when none is asked.
func initDiffers(ctx context.Context, anchor *Node, o InitOptions) []string {
	if anchor == nil || (len(o.DefaultAddrPool) == 0 && o.DataPathPort == 0 && o.OverlayMTU == 0) {
		return nil
	}
	sw, err := anchor.API.SwarmInspect(ctx)
	if err != nil {
		return []string{fmt.Sprintf("%s: swarm inspect, to compare default_addr_pool and data_path_port: %v", anchor.Name, err)}
	}
	diffs := InitDiffers(sw.ClusterInfo, o)
	if o.OverlayMTU != 0 {
		ing, err := anchor.API.NetworkInspect(ctx, "ingress", client.NetworkInspectOptions{})
		if have := ing.Options[MTUOption]; err == nil && have != strconv.Itoa(o.OverlayMTU) {
			have = cmp.Or(have, "Docker's default")
			diffs = append(diffs, fmt.Sprintf("the ingress network's overlay_mtu is %s, not %d", have, o.OverlayMTU))
		}
	}
	var out []string
	for _, d := range diffs {
		out = append(out, fmt.Sprintf("swarm %s: %s; these are set when a swarm is made and shoal never makes one again over an existing swarm: "+
			"leave them out of the swarm block, or make the swarm anew yourself", Short(sw.ID), d))
	}
	return out
}
