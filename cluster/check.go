package cluster

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/bootstrap/dataplane"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
)

// DefaultCheckTimeout bounds a whole data-plane check.
const DefaultCheckTimeout = 60 * time.Second

// CheckOptions tune the data-plane check.
type CheckOptions struct {
	Timeout    time.Duration
	Image      string
	OverlayMTU int
	// ImageOptional: a node without the probe's image is a warning, not a
	// fault (the check at the end of 'cluster up').
	ImageOptional bool
}

// removeCheckLeftovers removes what a killed data-plane check left (its
// labelled service and network) through the leader's engine: two list
// calls when there is nothing, so a no-op run does not slow down.
func removeCheckLeftovers(ctx context.Context, leader *host) {
	m, ok := leader.node.API.(dataplane.Manager)
	if !ok {
		return // an engine without networks (tests' in-memory swarm)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_ = dataplane.Cleanup(cctx, m) // best effort: the next check retries
}

// checkNodes returns the machines of cluster name, or of the swarm whose
// master (machine create --swarm-master) is called name.
func (c *Converger) checkNodes(name string) ([]string, error) {
	if err := store.ValidateName(name); err != nil {
		return nil, err
	}
	st := c.Machines.Store
	names, err := machinesOf(st, name)
	if err != nil || len(names) > 0 {
		return names, err
	}
	if m, err := st.Load(name); err == nil && m.Swarm != nil && m.Swarm.Master {
		return c.swarmOf(name)
	}
	return nil, fmt.Errorf("no cluster %q here, nor a swarm master of that name (see 'cluster ls', 'machine ls')", name)
}

// swarmOf returns the machines whose swarm's master is the machine
// master.
func (c *Converger) swarmOf(master string) ([]string, error) {
	st := c.Machines.Store
	all, err := st.List()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range all {
		if o, err := st.Load(n); err == nil && o.Swarm != nil {
			if r, err := c.Machines.RootMaster(o); err == nil && r.Name == master {
				names = append(names, n)
			}
		}
	}
	return names, nil
}

// Check tests the data plane of cluster (or swarm master) name: every
// node's facts, then the cross-node probe, then the verdict.
func (c *Converger) Check(ctx context.Context, name string, o CheckOptions) (*dataplane.Report, error) {
	started := time.Now()
	if o.Timeout <= 0 {
		o.Timeout = DefaultCheckTimeout
	}
	// Connections, facts and up to two probes (see probeTwice), each
	// with its tasks' start.
	ctx, cancel := context.WithTimeout(ctx, 4*o.Timeout+30*time.Second)
	defer cancel()
	names, err := c.checkNodes(name)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	c.checkStarted(names)
	hosts := make([]*host, len(names))
	for i, n := range names {
		hosts[i] = &host{spec: Node{Name: n}}
	}
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	if err := parallel(ctx, 16, hosts, c.openForCheck); err != nil {
		return nil, err
	}
	mgr, members, err := checkManager(ctx, hosts)
	if err != nil {
		return nil, err
	}
	in := dataplane.Input{Nodes: names, Addrs: map[string]string{}, Managers: map[string]bool{}, Facts: map[string]dataplane.Facts{}, OverlayMTU: o.OverlayMTU, ImageOptional: o.ImageOptional}
	nodeIDs, err := checkMembers(&in, hosts, members, mgr)
	if err != nil {
		return nil, err
	}
	in.Advertised = advertisedAddrs(ctx, hosts)
	if err := swarmPools(ctx, &in, mgr); err != nil {
		return nil, err
	}
	// The facts are read while the probe's tasks start (each node's SSH
	// connection carries both).
	facts := make(chan map[string]dataplane.Facts, 1)
	go func(in dataplane.Input) {
		fctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		facts <- c.readFacts(fctx, hosts, in)
	}(in)
	p, err := newProbe(mgr, hosts, nodeIDs, o)
	if err != nil {
		<-facts
		return nil, err
	}
	// VIPs and the routing mesh need IP_VS: tested where every kernel has
	// it (the facts say which lack it, as a limit or a fault).
	p.Mesh, p.HostAddrs = allHaveIPVS(ctx, hosts), in.Addrs
	var runs []dataplane.RunTiming
	mx, err := probeTwice(ctx, p, hosts, o, &runs)
	in.Facts = <-facts
	if err != nil {
		return nil, err
	}
	readGossip(ctx, hosts, in.Facts, time.Since(started))
	in.Matrix = mx
	rep := dataplane.Verdict(in)
	rep.Runs = runs
	c.checkEvents(names, rep)
	return rep, nil
}

// checkMembers notes in in each host's swarm address and role, and
// returns their node IDs; a host that is not in the swarm is an error.
func checkMembers(in *dataplane.Input, hosts []*host, members []bootstrap.Member, mgr *host) (map[string]string, error) {
	nodeIDs := map[string]string{}
	for _, h := range hosts {
		m, ok := bootstrap.MemberOf(members, "", h.mach.Hostname)
		if !ok {
			return nil, fmt.Errorf("%s is not a node of the swarm %s manages: run 'cluster up' first", h.spec.Name, mgr.spec.Name)
		}
		nodeIDs[h.spec.Name] = m.ID
		in.Addrs[h.spec.Name] = m.Addr
		in.Managers[h.spec.Name] = m.Role == bootstrap.RoleManager
	}
	return nodeIDs, nil
}

// swarmPools notes in in the swarm's address pools (Docker's default
// when it names none) and data path port.
func swarmPools(ctx context.Context, in *dataplane.Input, mgr *host) error {
	sw, err := mgr.node.API.SwarmInspect(ctx)
	if err != nil {
		return fmt.Errorf("%s: swarm inspect: %w", mgr.spec.Name, err)
	}
	in.Pools, in.DataPathPort = bootstrap.PoolStrings(sw.DefaultAddrPool), int(sw.DataPathPort)
	if len(in.Pools) == 0 {
		in.Pools = []string{"10.0.0.0/8"} // Docker's default
	}
	return nil
}

// probeTwice runs the probe (its tasks' start and then the run each
// bounded by o.Timeout; where their time went added to runs), and once
// more when the first saw a failure: a swarm just changed may still be
// converging (its gossip not yet carrying every task's name and VXLAN
// endpoint); what fails twice is a fault.
func probeTwice(ctx context.Context, p *dataplane.Probe, hosts []*host, o CheckOptions, runs *[]dataplane.RunTiming) (dataplane.Matrix, error) {
	var names []string
	for _, h := range hosts {
		names = append(names, h.spec.Name)
	}
	var mx dataplane.Matrix
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 2*o.Timeout) // the tasks' start, then the probe
		mx, err = p.Run(actx, names)
		cancel()
		*runs = append(*runs, mx.Run)
		if err != nil || dataplane.Clean(mx) {
			break
		}
	}
	return mx, err
}

// allHaveIPVS tells whether every host's kernel has IP_VS loaded (one
// short command each, at once).
func allHaveIPVS(ctx context.Context, hosts []*host) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := parallel(ctx, 16, hosts, func(ctx context.Context, h *host) error {
		_, err := h.client.Run(ctx, "test -e /proc/net/ip_vs")
		return err
	})
	return err == nil
}

// checkStarted shows the check starting on each node.
func (c *Converger) checkStarted(names []string) {
	p := c.Machines.Progress
	if p == nil {
		return
	}
	for _, n := range names {
		p.Event(n, "data-plane check", ui.Started, "")
	}
}

// checkEvents shows each node's part of the verdict in the progress.
func (c *Converger) checkEvents(names []string, rep *dataplane.Report) {
	p := c.Machines.Progress
	if p == nil {
		return
	}
	faults := map[string]int{}
	for _, f := range rep.Findings {
		if f.Kind == dataplane.Fault {
			faults[f.Node]++
		}
	}
	for _, n := range names {
		if faults[n] > 0 {
			p.Event(n, "data-plane check", ui.Failed, fmt.Sprintf("%d fault(s), see the report", faults[n]))
		} else {
			p.Event(n, "data-plane check", ui.Unchanged, "")
		}
	}
}

// readTimeout bounds the connection of a command that only reads (check,
// deploy's search for a manager).
const readTimeout = 20 * time.Second

func (c *Converger) openForCheck(ctx context.Context, h *host) error {
	return c.openNode(ctx, h, readTimeout)
}

// openNode connects to h's machine (loaded from the store unless the
// caller has it) and opens its engine: the one way the cluster's commands
// that read or deploy reach a node outside up's pipeline.
func (c *Converger) openNode(ctx context.Context, h *host, connectTimeout time.Duration) error {
	if h.mach == nil {
		mach, err := c.Machines.Load(h.spec.Name)
		if err != nil {
			return err
		}
		h.mach = mach
	}
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var err error
	if h.client, err = c.Machines.Connect(cctx, h.mach, io.Discard); err != nil {
		return err
	}
	h.node, err = h.mach.Node(h.client)
	return err
}

// advertisedAddrs reads the address each node's engine advertises; a node
// whose engine does not say is left out.
func advertisedAddrs(ctx context.Context, hosts []*host) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	addrs := make([]string, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s, err := h.node.State(ctx); err == nil {
				addrs[i] = s.NodeAddr
			}
		}()
	}
	wg.Wait()
	out := map[string]string{}
	for i, h := range hosts {
		out[h.spec.Name] = addrs[i]
	}
	return out
}

// isActiveManager says whether h's engine answers as an active manager.
func isActiveManager(ctx context.Context, h *host) bool {
	s, err := h.node.State(ctx)
	return err == nil && s.Active() && s.Manager
}

// checkManager finds an active manager among the hosts.
func checkManager(ctx context.Context, hosts []*host) (*host, []bootstrap.Member, error) {
	for _, h := range hosts {
		if !isActiveManager(ctx, h) {
			continue
		}
		members, err := bootstrap.Members(ctx, h.node)
		if err != nil {
			return nil, nil, err
		}
		return h, members, nil
	}
	return nil, nil, fmt.Errorf("no node answers as an active swarm manager: run 'cluster up' (or 'cluster status' to see why)")
}

// readFacts runs the facts script on every node at once; a node whose
// facts cannot be read is left out of the reasoning on facts.
func (c *Converger) readFacts(ctx context.Context, hosts []*host, in dataplane.Input) map[string]dataplane.Facts {
	out := make([]dataplane.Facts, len(hosts))
	_ = parallel(ctx, 16, hosts, func(ctx context.Context, h *host) error {
		var targets []dataplane.Target
		for _, n := range in.Nodes {
			if n == h.spec.Name || in.Addrs[n] == "" {
				continue
			}
			targets = append(targets, dataplane.Target{Addr: in.Addrs[n], Port: 7946})
			if in.Managers[n] {
				targets = append(targets, dataplane.Target{Addr: in.Addrs[n], Port: 2377})
			}
		}
		res, err := h.client.RunSudo(ctx, dataplane.FactsScript(in.Addrs[h.spec.Name], targets))
		i := indexOf(hosts, h)
		if err != nil {
			out[i] = dataplane.Facts{Node: h.spec.Name}
			return nil
		}
		out[i] = dataplane.ParseFacts(h.spec.Name, string(res.Stdout))
		return nil
	})
	m := map[string]dataplane.Facts{}
	for _, f := range out {
		m[f.Node] = f
	}
	return m
}

// readGossip notes in facts each node's gossip complaints of the last
// since (peers reached over TCP only), and, when there are some, every
// node's own name in the gossip (to tell who the peers are).
func readGossip(ctx context.Context, hosts []*host, facts map[string]dataplane.Facts, since time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	each := func(script string, note func(f *dataplane.Facts, got dataplane.Facts)) {
		_ = parallel(ctx, 16, hosts, func(ctx context.Context, h *host) error {
			res, err := h.client.RunSudo(ctx, script)
			mu.Lock()
			defer mu.Unlock()
			if f, ok := facts[h.spec.Name]; ok && f.Read && err == nil {
				note(&f, dataplane.ParseFacts(h.spec.Name, string(res.Stdout)))
				facts[h.spec.Name] = f
			}
			return nil
		})
	}
	each(dataplane.GossipComplaintsScript(since), func(f *dataplane.Facts, got dataplane.Facts) { f.GossipUDPTo = got.GossipUDPTo })
	var all []dataplane.Facts
	for _, f := range facts {
		all = append(all, f)
	}
	if dataplane.NeedGossipIDs(all) {
		each(dataplane.GossipIDScript, func(f *dataplane.Facts, got dataplane.Facts) { f.GossipID = got.GossipID })
	}
}

// newProbe is the probe over the manager's and each node's engine.
func newProbe(mgr *host, hosts []*host, nodeIDs map[string]string, o CheckOptions) (*dataplane.Probe, error) {
	m, ok := mgr.node.API.(dataplane.Manager)
	if !ok {
		return nil, fmt.Errorf("%s: its engine client cannot run the probe", mgr.spec.Name)
	}
	// A quarter of a probe run's bound for the VIP and the mesh to settle:
	// a longer --check-timeout gives slow hosts longer.
	p := &dataplane.Probe{Manager: m, Workers: map[string]dataplane.Worker{}, NodeIDs: nodeIDs, Image: o.Image, OverlayMTU: o.OverlayMTU, Settle: o.Timeout / 4, Bound: o.Timeout}
	for _, h := range hosts {
		w, ok := h.node.API.(dataplane.Worker)
		if !ok {
			return nil, fmt.Errorf("%s: its engine client cannot run the probe", h.spec.Name)
		}
		p.Workers[h.spec.Name] = w
	}
	return p, nil
}
