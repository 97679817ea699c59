package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/ui"
)

// registryGate is the registry's part of the pipeline: when its node has
// its images (the other hosts load theirs after, so that the registry, on
// the run's critical path, does not share the machines' CPU and the
// uplink with every other host's archives), when its service is made, and
// from which hosts it answered.
type registryGate struct {
	node *host // the registry's node (nil without a registry)
	port int
	mark func(stage string)

	// images: the registry's node has its images, or failed.
	images *event
	// up: the registry answered from its own node (answers) or will not
	// be seen to in the pipeline; the other hosts then check it from
	// where they are.
	up *event
	// made: the registry's node has seen to the registry service
	// (madeOK), or failed, or left it to the swarm pass.
	made *event
	// first: the registry's node is the leader, so in a new swarm its
	// service is made before the other managers join (registryFirstWait).
	first bool

	// mu is the pipeline's lock: it guards the hosts' changed too.
	mu      *sync.Mutex
	upSaid  bool
	answers bool
	madeOK  bool
	// created: the registry service was created or corrected early.
	created bool
	// checked names the hosts the registry answered from in the pipeline
	// (the checks, under checkCtx).
	checked    map[string]bool
	checks     sync.WaitGroup
	checkCtx   context.Context
	stopChecks context.CancelFunc
}

func newRegistryGate(node *host, port int, first bool, mu *sync.Mutex, mark func(string)) *registryGate {
	g := &registryGate{node: node, port: port, first: first, mu: mu, mark: mark,
		images: newEvent(), up: newEvent(), made: newEvent(), checked: map[string]bool{}}
	if node == nil {
		g.images.done()
		g.sayUp(false)
	}
	return g
}

// sayUp records whether the registry answered from its own node, once:
// the first word stands.
func (g *registryGate) sayUp(answers bool) {
	g.mu.Lock()
	if !g.upSaid {
		g.upSaid, g.answers = true, answers
	}
	g.mu.Unlock()
	g.up.done()
}

// madeEarly records that the registry's node saw to the service
// (created: it was created or corrected).
func (g *registryGate) madeEarly(created bool) {
	g.mu.Lock()
	g.madeOK = true
	g.created = g.created || created
	g.mu.Unlock()
	g.made.done()
}

// registryFirstWait bounds how long the managers' joins wait for the
// registry's service, when its node is the leader: made in the
// one-member swarm, its task is assigned and starts at once, while a
// manager that joins stops Raft from committing anything else until it
// has caught up (so a registry made during the joins waited for them). An
// image archive that takes longer to load does not hold the joins up
// longer: the registry is then made during them.
const registryFirstWait = 1500 * time.Millisecond

// waitFirst waits, at most registryFirstWait, for the registry's service
// to be made, when its node is the leader of a swarm started just now
// (swarmNew; where it is yet to be made).
func (g *registryGate) waitFirst(ctx context.Context, swarmNew bool) error {
	if !g.first || !swarmNew {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, registryFirstWait)
	defer cancel()
	if err := g.made.wait(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// ask asks, beside the facts probe (a channel on the same connection),
// whether the registry answers from the host at its node's address: a
// name the host cannot resolve yet (a first run) must not wait for DNS;
// whether the name is right is the /etc/hosts step's business. Where it
// answered and nothing changed since, no final check asks again. A host
// whose sshd forwards no TCP is not asked here: its final check asks with
// curl. The returned func waits for the answer.
func (g *registryGate) ask(ctx context.Context, h *host) func() bool {
	rh := g.node
	if rh == nil || rh.mach == nil {
		return func() bool { return false }
	}
	answered := make(chan bool, 1)
	go func() {
		answered <- bootstrap.AskRegistry(ctx, h.client, rh.mach.Hostname, g.port, rh.mach.Address, 3*time.Second) == nil
	}()
	return func() bool { return <-answered }
}

// pipelineCheckWait bounds the registry's check in the pipeline; a
// registry that does not answer by then is waited for, and reported, by
// the final check.
const pipelineCheckWait = 30 * time.Second

// startChecks sets the context the checks run under: the run's, until
// stop.
func (g *registryGate) startChecks(ctx context.Context) {
	g.checkCtx, g.stopChecks = context.WithCancel(ctx)
}

// goCheck checks the registry from the host on its own: the swarm pass
// waits for it only at its final check.
func (g *registryGate) goCheck(h *host) {
	g.checks.Add(1)
	go func() {
		defer g.checks.Done()
		g.check(g.checkCtx, h)
	}()
}

func (g *registryGate) setChecked(h *host) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checked[h.spec.Name] = true
}

// checkedHosts waits for the pipeline's registry checks and names the
// hosts the registry answered from.
func (g *registryGate) checkedHosts() map[string]bool {
	g.checks.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]bool, len(g.checked))
	for name := range g.checked {
		out[name] = true
	}
	return out
}

// stop ends the registry checks still running (a failed run) and waits
// for them: they use the hosts' connections, which close next.
func (g *registryGate) stop() {
	if g.stopChecks != nil {
		g.stopChecks()
	}
	g.checks.Wait()
}

// check asks the registry from the host as soon as it answers on its own
// node: the final check then asks again only where something changed
// since (the swarm pass's roll or a new registry service).
func (g *registryGate) check(ctx context.Context, h *host) {
	rh := g.node
	if rh == h {
		g.checkOwn(ctx, h)
		return
	}
	if g.up.wait(ctx) != nil {
		return
	}
	g.mu.Lock()
	up := g.answers
	g.mu.Unlock()
	if !up || h.held || h.node == nil || h.regAnswered {
		return // the final check sees to it (or it answered already)
	}
	if err := bootstrap.WaitRegistry(ctx, h.node, rh.mach.Hostname, g.port, pipelineCheckWait); err == nil {
		g.setChecked(h)
		g.mark("check")
	}
}

// checkOwn asks the registry on its own node first, once the service is
// made: the other hosts ask once it answers there, and do not poll while
// its task starts. When it answered as the host was provisioned and
// nothing changed since, it is not asked again.
func (g *registryGate) checkOwn(ctx context.Context, h *host) {
	answers := false
	defer func() { g.sayUp(answers) }()
	if g.made.wait(ctx) != nil {
		return
	}
	g.mu.Lock()
	made, probed := g.madeOK, !g.created && !h.changed && h.regAnswered
	g.mu.Unlock()
	switch {
	case !made:
	case probed:
		answers = true
	default:
		if err := bootstrap.WaitRegistry(ctx, h.node, h.mach.Hostname, g.port, pipelineCheckWait); err == nil {
			g.setChecked(h)
			g.mark("registry-up")
			answers = true
		}
	}
}

// registryHost is the registry's node (nil without a registry).
func (p *pipeline) registryHost() *host {
	if !p.spec.Registry.Enabled {
		return nil
	}
	for _, h := range p.hosts {
		if h.spec.Name == p.spec.Registry.Node {
			return h
		}
	}
	return nil
}

// registry creates (or corrects) the registry service as soon as its node
// has its images and the swarm has started early; Reconcile's pass does it
// otherwise.
func (p *pipeline) registry(ctx context.Context, h *host) error {
	anchor := p.early.Anchor()
	if anchor == nil || h.held {
		// No early swarm, or the node's engine changes in the roll, which
		// comes first: the swarm pass sees to the registry.
		p.reg.made.done()
		return nil
	}
	p.mu.Lock()
	fresh := h.changed
	p.mu.Unlock()
	reg := bootstrap.Registry{Hostname: h.mach.Hostname, Port: p.spec.Registry.Port, Image: p.spec.Registry.Image, Path: p.spec.Registry.Path, FreshNode: fresh}
	made, err := bootstrap.EnsureRegistry(ctx, anchor, h.client, reg)
	if err != nil {
		p.c.Machines.Progress.Event(h.spec.Name, "registry", ui.Failed, err.Error())
		return err
	}
	if made {
		p.c.Machines.Progress.Event(h.spec.Name, "registry", ui.Changed, fmt.Sprintf("%s:%d", reg.Hostname, p.spec.Registry.Port))
	}
	p.mark("registry")
	p.reg.madeEarly(made)
	return nil
}

// swarmChecks tells the swarm pass what the pipeline already knows: the
// registry made early, and which hosts the registry answered from as they
// were provisioned (nothing on the host or the registry's node changed
// since): no final check for them.
func (p *pipeline) swarmChecks() swarmChecks {
	p.mu.Lock()
	defer p.mu.Unlock()
	sc := swarmChecks{registryMade: p.reg.created, answered: map[string]bool{}, checked: p.reg.checkedHosts, mark: p.mark, known: p.early.States()}
	rh := p.registryHost()
	if rh == nil || p.reg.created || rh.changed {
		return sc
	}
	for _, h := range p.hosts {
		if h.regAnswered && !h.changed {
			sc.answered[h.spec.Name] = true
		}
	}
	return sc
}
