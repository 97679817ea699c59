package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/provision"
)

// pipeline is one `cluster up` run's host work: every host goes through
// create, connect, provision, the early swarm, its image archives and its
// peer-SSH files as fast as it can, each in its own goroutine. A host waits
// for another only where it needs it:
//   - provisioning waits for every host's address (/etc/hosts names them);
//   - a join waits for the leader to start the swarm (bootstrap.Early;
//     managers one at a time);
//   - the registry service waits for its own node's images, and in a new
//     swarm whose leader is its node the other managers wait for it, a
//     little (registryFirstWait);
//   - the peer-SSH files wait for every host's key.
//
// At most Parallel hosts do work at once; a host that waits gives its slot
// back. The swarm over every node (Reconcile and what follows) runs after.
type pipeline struct {
	c      *Converger
	spec   *Spec
	hosts  []*host
	leader string
	prev   *State
	priv   []byte
	pub    string
	start  time.Time
	sem    chan struct{}
	early  *bootstrap.Early

	// anchorReady: the leader tried to start the swarm, or failed before.
	anchorReady *event
	// managersJoined: every manager but the leader has tried its early
	// join (managersLeft counts them down, each host once: managerOnce).
	// Workers, and the registry unless its node is the leader (regFirst),
	// wait for it, as Raft takes a new manager in while it commits nothing
	// else (every write waits for the new member to catch up).
	managersJoined *event
	managersLeft   int
	managerOnce    map[string]*sync.Once
	// regImages: the registry's node has its images, or failed. The other
	// hosts load theirs after, so that the registry, on the run's critical
	// path, does not share the machines' CPU and the uplink with every
	// other host's archives.
	regImages *event
	// regUp: the registry answered from its own node (regAnswers) or will
	// not be seen to in the pipeline; the other hosts then check it from
	// where they are.
	regUp      *event
	regUpSaid  bool
	regAnswers bool
	// regMade: the registry's node has seen to the registry service
	// (regMadeOK), or failed, or left it to the swarm pass.
	regMade   *event
	regMadeOK bool
	// regFirst: the registry's node is the leader, so in a new swarm its
	// service is made before the other managers join (registryFirstWait).
	regFirst bool

	mu     sync.Mutex
	stages map[string]time.Duration
	// registryMade: the registry service was created or corrected early.
	registryMade bool
	// checked names the hosts the registry answered from in the pipeline
	// (the checks: p.checks, under checkCtx).
	checked    map[string]bool
	checks     sync.WaitGroup
	checkCtx   context.Context
	stopChecks context.CancelFunc

	// tags caches each image archive's tags (ArchiveTags reads the whole
	// archive).
	tagsMu sync.Mutex
	tags   map[string][]string

	renewOnce sync.Once
	renewErr  error

	entriesOnce sync.Once
	entries     []store.HostEntry
	peerOnce    sync.Once
	peer        *peerFiles
}

// errWaiting is a host's error when a host it waits for failed: that
// host's own error says why, so this one is not shown.
var errWaiting = errors.New("waits for a host that failed")

func (c *Converger) newPipeline(spec *Spec, hosts []*host, leader string, prev *State, priv []byte, pub string, start time.Time) *pipeline {
	n := c.Parallel
	if n < 1 {
		n = 1
	}
	p := &pipeline{c: c, spec: spec, hosts: hosts, leader: leader, prev: prev, priv: priv, pub: pub, start: start,
		sem: make(chan struct{}, n), anchorReady: newEvent(), regImages: newEvent(), regUp: newEvent(),
		regMade: newEvent(), stages: map[string]time.Duration{}, checked: map[string]bool{}}
	for _, h := range hosts {
		h.created, h.connected = newEvent(), newEvent()
	}
	if p.registryHost() == nil {
		p.regImages.done()
		p.registryUp(false)
	}
	p.managersJoined, p.managerOnce = newEvent(), map[string]*sync.Once{}
	for _, h := range hosts {
		if h.spec.Role == bootstrap.RoleManager && h.spec.Name != leader {
			p.managersLeft++
			p.managerOnce[h.spec.Name] = &sync.Once{}
		}
	}
	if p.managersLeft == 0 {
		p.managersJoined.done()
	}
	if rh := p.registryHost(); rh != nil && rh.spec.Name == leader && c.restore == nil {
		p.regFirst = true
	}
	r := c.reconciler()
	req := c.swarmRequest(spec, nil, leader, prev)
	p.early = &bootstrap.Early{R: r, Policy: req.Policy, Init: req.Init}
	return p
}

// mark records that a host finished a stage: the stage's figure is when
// its last host finished it, counted from the run's start (the stages
// overlap).
func (p *pipeline) mark(stage string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := time.Since(p.start); d > p.stages[stage] {
		p.stages[stage] = d
	}
}

// slot runs f holding one of the Parallel slots.
func (p *pipeline) slot(ctx context.Context, f func() error) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.sem }()
	return f()
}

// waitAll waits until ev(h) is done for every host and ok(h) holds.
func (p *pipeline) waitAll(ctx context.Context, ev func(*host) *event, ok func(*host) bool) error {
	for _, o := range p.hosts {
		if err := ev(o).wait(ctx); err != nil {
			return err
		}
		if !ok(o) {
			return errWaiting
		}
	}
	return nil
}

// managerDone counts a manager's early join as tried (once a host).
func (p *pipeline) managerDone(h *host) {
	once := p.managerOnce[h.spec.Name]
	if once == nil {
		return
	}
	once.Do(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.managersLeft--; p.managersLeft == 0 {
			p.managersJoined.done()
		}
	})
}

// registryUp records whether the registry answered from its own node,
// once: the first word stands.
func (p *pipeline) registryUp(answers bool) {
	p.mu.Lock()
	if !p.regUpSaid {
		p.regUpSaid, p.regAnswers = true, answers
	}
	p.mu.Unlock()
	p.regUp.done()
}

// run works on every host and joins their errors. The registry checks it
// starts may outlive it (until stop), under the run's context.
func (p *pipeline) run(ctx context.Context) error {
	p.checkCtx, p.stopChecks = context.WithCancel(ctx)
	errs := make([]error, len(p.hosts))
	var wg sync.WaitGroup
	for i, h := range p.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A bug met on one host fails that host, not the whole run.
			defer func() {
				if r := recover(); r != nil {
					errs[i] = fmt.Errorf("%s: internal error (a bug in shoal, please report it): %v", h.spec.Name, r)
				}
			}()
			errs[i] = p.host(ctx, h)
		}()
	}
	wg.Wait()
	return joinErrs(errs)
}

// host is one host's way through the pipeline.
func (p *pipeline) host(ctx context.Context, h *host) error {
	c := p.c
	isLeader := h.spec.Name == p.leader
	if p.registryHost() == h {
		defer p.regImages.done()
		defer p.regMade.done()
	}
	defer h.created.done()
	defer h.connected.done()
	if isLeader {
		// Done here too when the leader fails before the swarm: the
		// others then leave it to the reconciler's pass.
		defer p.anchorReady.done()
	}
	defer p.managerDone(h) // a manager that failed before its join

	ev := func(step string, s ui.Status, detail string) { c.Machines.Progress.Event(h.spec.Name, step, s, detail) }

	// Made or adopted.
	if err := p.slot(ctx, func() error { return p.create(ctx, h) }); err != nil {
		return err
	}
	h.created.done()
	p.mark("create")

	// Every node's /etc/hosts names every node: provisioning waits for
	// every address.
	if err := p.waitAll(ctx, func(o *host) *event { return o.created }, func(o *host) bool { return o.mach != nil }); err != nil {
		return err
	}
	h.mach.Hosts = p.hostEntries()
	if err := c.Machines.Store.Save(h.mach.Machine); err != nil {
		return err
	}
	// Certificates that expire soon are renewed before anything uses them.
	if err := p.renewCerts(); err != nil {
		return err
	}

	// Connected and provisioned, on one connection.
	err := p.slot(ctx, func() error {
		log, err := c.Machines.OpenLog(h.mach)
		if err != nil {
			return err
		}
		h.log = log
		ev("ssh", ui.Started, "")
		h.client, err = c.Machines.Connect(ctx, h.mach, log)
		if err != nil {
			ev("ssh", ui.Failed, "")
			return err
		}
		h.connected.done()
		ev("ssh", ui.Unchanged, h.client.User()+"@"+h.client.Host())
		asked := p.askRegistry(ctx, h)
		rep, held, why, err := c.Machines.ProvisionHolding(ctx, h.mach, h.client, c.holdFor(h), p.probes(h)...)
		h.regAnswered = asked()
		if err != nil {
			return fmt.Errorf("%s: %w", h.spec.Name, err) // the error names the address
		}
		h.held, h.heldWhy = held, why
		if len(rep.Changed) > 0 {
			h.changed = true
		}
		h.restarted = rep.DockerRestarted
		h.facts = rep.Facts
		h.node, err = bootstrap.Open(h.mach.Name, h.mach.Hostname, h.mach.Address, p.engineClient(ctx, h, rep, log))
		return err
	})
	if err != nil {
		return err
	}
	p.mark("provision")

	// The registry's check from this host runs on its own: the swarm pass
	// waits for it only at its final check.
	p.checks.Add(1)
	go func() {
		defer p.checks.Done()
		p.checkRegistry(p.checkCtx, h)
	}()

	// Three branches on the host's one connection, side by side: the
	// early swarm, the image archives (then the registry on its node), the
	// SSH mesh.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, f := range []func() error{
		func() error { return p.swarm(ctx, h, isLeader) },
		func() error { return p.images(ctx, h) },
		func() error { return p.peerSSH(ctx, h) },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[i] = fmt.Errorf("%s: internal error (a bug in shoal, please report it): %v", h.spec.Name, r)
				}
			}()
			errs[i] = f()
		}()
	}
	wg.Wait()
	return joinErrs(errs)
}

// joinErrs joins errs, leaving out errWaiting when there is a real error:
// errWaiting only stands for another host's failure.
func joinErrs(errs []error) error {
	var real []error
	waiting := false
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, errWaiting):
			waiting = true
		default:
			real = append(real, err)
		}
	}
	if len(real) == 0 && waiting {
		return errWaiting
	}
	return errors.Join(real...)
}

// swarm is the host's part of the early swarm: the leader starts it; the
// others join as soon as it has.
func (p *pipeline) swarm(ctx context.Context, h *host, isLeader bool) error {
	if isLeader {
		// Whatever happens here: the registry's branch and the other hosts
		// wait for it.
		defer p.anchorReady.done()
	}
	if p.c.restore != nil {
		// The swarm comes from a backup (restoreSwarm), after the
		// pipeline.
		return nil
	}
	t := p.c.swarmRequest(p.spec, []*host{h}, p.leader, p.prev).Targets[0]
	if isLeader {
		if _, err := p.early.Start(ctx, t); err != nil {
			return err
		}
	} else {
		defer p.managerDone(h)
		if err := p.anchorReady.wait(ctx); err != nil {
			return err
		}
		// What a join must come after; a node already in the swarm waits
		// for nothing.
		ready := p.managersJoined.wait
		if h.spec.Role == bootstrap.RoleManager {
			ready = p.registryFirst
		}
		if _, err := p.early.Join(ctx, t, ready); err != nil {
			return err
		}
	}
	p.mark("swarm-join")
	return nil
}

// images loads the host's image archives; on the registry's node the
// registry follows (it waits only for its own node's images).
func (p *pipeline) images(ctx context.Context, h *host) error {
	isReg := p.registryHost() == h
	if !isReg && len(h.spec.ImageArchives) > 0 {
		if err := p.regImages.wait(ctx); err != nil {
			return err
		}
	}
	err := p.slot(ctx, func() error {
		for _, a := range h.spec.ImageArchives {
			tags, err := p.archiveTags(a)
			if err != nil {
				p.c.Machines.Progress.Event(h.spec.Name, "images", ui.Failed, err.Error())
				return err
			}
			loaded, err := bootstrap.LoadImagesTagged(ctx, h.node, a, tags)
			if err != nil {
				p.c.Machines.Progress.Event(h.spec.Name, "images", ui.Failed, err.Error())
				return err
			}
			if loaded {
				p.mu.Lock()
				h.changed = true
				p.mu.Unlock()
				p.c.Machines.Progress.Event(h.spec.Name, "images", ui.Changed, filepath.Base(a))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.mark("images")
	if !isReg {
		return nil
	}
	p.regImages.done()
	waits := []*event{p.anchorReady, p.managersJoined}
	if p.regFirst {
		waits = waits[:1]
	}
	for _, ev := range waits {
		if err := ev.wait(ctx); err != nil {
			return err
		}
	}
	return p.registry(ctx, h)
}

// registryFirstWait bounds how long the managers' joins wait for the
// registry's service, when its node is the leader: made in the
// one-member swarm, its task is assigned and starts at once, while a
// manager that joins stops Raft from committing anything else until it
// has caught up (so a registry made during the joins waited for them). An
// image archive that takes longer to load does not hold the joins up
// longer: the registry is then made during them.
const registryFirstWait = 1500 * time.Millisecond

// registryFirst waits, at most registryFirstWait, for the registry's
// service to be made, when its node is the leader of a swarm started just
// now (where it is yet to be made).
func (p *pipeline) registryFirst(ctx context.Context) error {
	if !p.regFirst || !p.early.Changed() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, registryFirstWait)
	defer cancel()
	if err := p.regMade.wait(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// engineClient is the connection the host's engine API goes over
// (machine.Manager.EngineLogin): a second login, kept in h.relogin, when
// provisioning just put the login user in the docker group.
func (p *pipeline) engineClient(ctx context.Context, h *host, rep *provision.Report, transcript io.Writer) *sshrun.Client {
	c := p.c.Machines.EngineLogin(ctx, h.mach, h.client, rep, transcript)
	if c != h.client {
		h.relogin = c
	}
	return c
}

// peerSSH writes the host's SSH mesh files once every host's key is known.
func (p *pipeline) peerSSH(ctx context.Context, h *host) error {
	if err := p.waitAll(ctx, func(o *host) *event { return o.connected }, func(o *host) bool { return o.client != nil }); err != nil {
		return err
	}
	pf := p.peerFiles()
	if err := p.slot(ctx, func() error { return p.c.peerSSHHost(ctx, h, pf, &p.mu) }); err != nil {
		return err
	}
	p.mark("peer-ssh")
	return nil
}

// archiveTags reads an image archive's tags once for the run.
func (p *pipeline) archiveTags(path string) ([]string, error) {
	p.tagsMu.Lock()
	defer p.tagsMu.Unlock()
	if t, ok := p.tags[path]; ok {
		return t, nil
	}
	t, err := bootstrap.ArchiveTags(path)
	if err != nil {
		return nil, err
	}
	if p.tags == nil {
		p.tags = map[string][]string{}
	}
	p.tags[path] = t
	return t, nil
}

// create makes or adopts the host's machine.
func (p *pipeline) create(ctx context.Context, h *host) error {
	m, spec := h.spec, p.spec
	sw := &store.Swarm{Join: p.leader, Manager: m.Role == "manager", Labels: labelList(m.Labels), Availability: m.Availability, ImageArchives: m.ImageArchives}
	if m.Name == p.leader {
		sw = &store.Swarm{Master: true, Labels: sw.Labels, Availability: sw.Availability, ImageArchives: sw.ImageArchives,
			Registry: spec.Registry.Enabled, RegistryPort: spec.Registry.Port, RegistryImage: spec.Registry.Image,
			RegistryPath: spec.Registry.Path, RegistryNode: spec.Registry.Node}
	}
	sw.DataPathPort = spec.DataPathPort
	setup := m.Setup
	setup.Swarm, setup.Cluster, setup.AuthorizedKeys = sw, spec.Name, []string{p.pub}
	mach, unlock, err := p.c.Machines.EnsureHostLocked(ctx, machine.CreateOptions{Name: m.Name, Driver: m.Driver, DriverConfig: m.DriverConfig, Setup: setup})
	if err != nil {
		return err
	}
	if m.AdvertiseAddr != "" && mach.Address != m.AdvertiseAddr {
		mach.Address = m.AdvertiseAddr // the other nodes reach it there
		if err := p.c.Machines.Store.Save(mach.Machine); err != nil {
			unlock()
			return err
		}
	}
	h.mach, h.unlock = mach, unlock
	h.changed = mach.JustCreated
	return nil
}

// renewCerts renews the certificates that expire soon, once for the run,
// before any host is provisioned with them.
func (p *pipeline) renewCerts() error {
	p.renewOnce.Do(func() { _, p.renewErr = p.c.Machines.RenewCerts(time.Now()) })
	return p.renewErr
}

// hostEntries is the cluster block of every node's /etc/hosts, in the
// file's order.
func (p *pipeline) hostEntries() []store.HostEntry {
	p.entriesOnce.Do(func() {
		for _, h := range p.hosts {
			names := []string{h.mach.Hostname}
			if h.mach.Name != h.mach.Hostname {
				names = append(names, h.mach.Name)
			}
			p.entries = append(p.entries, store.HostEntry{IP: h.mach.Address, Names: names})
		}
	})
	return p.entries
}

func (p *pipeline) peerFiles() *peerFiles {
	p.peerOnce.Do(func() { p.peer = newPeerFiles(p.hosts, p.priv, p.pub, p.spec.Name) })
	return p.peer
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

// probes are the cluster's own read-only probes, answered with the facts:
// the docker user's ~/.ssh.
func (p *pipeline) probes(h *host) []provision.Probe {
	return []provision.Probe{peerProbe(h.mach.DockerUser, p.spec.Name)}
}

// askRegistry asks, beside the facts probe (a channel on the same
// connection), whether the registry answers from the host at its node's
// address: a name the host cannot resolve yet (a first run) must not wait
// for DNS; whether the name is right is the /etc/hosts step's business.
// Where it answered and nothing changed since, no final check asks again.
// A host whose sshd forwards no TCP is not asked here: its final check
// asks with curl. The returned func waits for the answer.
func (p *pipeline) askRegistry(ctx context.Context, h *host) func() bool {
	rh := p.registryHost()
	if rh == nil || rh.mach == nil {
		return func() bool { return false }
	}
	answered := make(chan bool, 1)
	go func() {
		answered <- bootstrap.AskRegistry(ctx, h.client, rh.mach.Hostname, p.spec.Registry.Port, rh.mach.Address, 3*time.Second) == nil
	}()
	return func() bool { return <-answered }
}

// registry creates (or corrects) the registry service as soon as its node
// has its images and the swarm has started early; Reconcile's pass does it
// otherwise.
func (p *pipeline) registry(ctx context.Context, h *host) error {
	anchor := p.early.Anchor()
	if anchor == nil || h.held {
		// No early swarm, or the node's engine changes in the roll, which
		// comes first: the swarm pass sees to the registry.
		p.regMade.done()
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
		p.mu.Lock()
		p.registryMade = true
		p.mu.Unlock()
		p.c.Machines.Progress.Event(h.spec.Name, "registry", ui.Changed, fmt.Sprintf("%s:%d", reg.Hostname, p.spec.Registry.Port))
	}
	p.mark("registry")
	p.mu.Lock()
	p.regMadeOK = true
	p.mu.Unlock()
	p.regMade.done()
	return nil
}

// pipelineCheckWait bounds the registry's check in the pipeline; a
// registry that does not answer by then is waited for, and reported, by
// the final check.
const pipelineCheckWait = 30 * time.Second

func (p *pipeline) setChecked(h *host) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checked[h.spec.Name] = true
}

// checkedHosts waits for the pipeline's registry checks and names the
// hosts the registry answered from.
func (p *pipeline) checkedHosts() map[string]bool {
	p.checks.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]bool, len(p.checked))
	for name := range p.checked {
		out[name] = true
	}
	return out
}

// stop ends the registry checks still running (a failed run) and waits
// for them: they use the hosts' connections, which close next.
func (p *pipeline) stop() {
	if p.stopChecks != nil {
		p.stopChecks()
	}
	p.checks.Wait()
}

// checkRegistry asks the registry from the host as soon as it answers on
// its own node: the final check then asks again only where something
// changed since (the swarm pass's roll or a new registry service).
func (p *pipeline) checkRegistry(ctx context.Context, h *host) {
	rh := p.registryHost()
	if rh == h {
		p.checkOwnRegistry(ctx, h)
		return
	}
	if p.regUp.wait(ctx) != nil {
		return
	}
	p.mu.Lock()
	up := p.regAnswers
	p.mu.Unlock()
	if !up || h.held || h.node == nil || h.regAnswered {
		return // the final check sees to it (or it answered already)
	}
	if err := bootstrap.WaitRegistry(ctx, h.node, rh.mach.Hostname, p.spec.Registry.Port, pipelineCheckWait); err == nil {
		p.setChecked(h)
		p.mark("check")
	}
}

// checkOwnRegistry asks the registry on its own node first, once the
// service is made: the other hosts ask once it answers there, and do not
// poll while its task starts. When it answered as the host was
// provisioned and nothing changed since, it is not asked again.
func (p *pipeline) checkOwnRegistry(ctx context.Context, h *host) {
	answers := false
	defer func() { p.registryUp(answers) }()
	if p.regMade.wait(ctx) != nil {
		return
	}
	p.mu.Lock()
	made, probed := p.regMadeOK, !p.registryMade && !h.changed && h.regAnswered
	p.mu.Unlock()
	switch {
	case !made:
	case probed:
		answers = true
	default:
		if err := bootstrap.WaitRegistry(ctx, h.node, h.mach.Hostname, p.spec.Registry.Port, pipelineCheckWait); err == nil {
			p.setChecked(h)
			p.mark("registry-up")
			answers = true
		}
	}
}

// swarmChecks tells the swarm pass what the pipeline already knows: the
// registry made early, and which hosts the registry answered from as they
// were provisioned (nothing on the host or the registry's node changed
// since): no final check for them.
func (p *pipeline) swarmChecks() swarmChecks {
	p.mu.Lock()
	defer p.mu.Unlock()
	sc := swarmChecks{registryMade: p.registryMade, answered: map[string]bool{}, checked: p.checkedHosts, mark: p.mark, known: p.early.States()}
	rh := p.registryHost()
	if rh == nil || p.registryMade || rh.changed {
		return sc
	}
	for _, h := range p.hosts {
		if h.regAnswered && !h.changed {
			sc.answered[h.spec.Name] = true
		}
	}
	return sc
}
