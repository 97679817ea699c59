package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/fanout"
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
	// Workers, and the registry unless its node is the leader (reg.first),
	// wait for it, as Raft takes a new manager in while it commits nothing
	// else (every write waits for the new member to catch up).
	managersJoined *event
	managersLeft   int
	managerOnce    map[string]*sync.Once
	// reg: the registry's images, service and checks.
	reg *registryGate

	mu     sync.Mutex
	stages map[string]time.Duration

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

// logIdle is how long a host's provision.log stays open without a write:
// open files grow with --parallel, not with the number of hosts.
const logIdle = time.Second

// errWaiting is a host's error when a host it waits for failed: that
// host's own error says why, so this one is not shown.
var errWaiting = errors.New("waits for a host that failed")

func (c *Converger) newPipeline(spec *Spec, hosts []*host, leader string, prev *State, priv []byte, pub string, start time.Time) *pipeline {
	n := max(c.Parallel, 1)
	p := &pipeline{c: c, spec: spec, hosts: hosts, leader: leader, prev: prev, priv: priv, pub: pub, start: start,
		sem: make(chan struct{}, n), anchorReady: newEvent(), stages: map[string]time.Duration{}}
	for _, h := range hosts {
		h.created, h.connected = newEvent(), newEvent()
	}
	rh := p.registryHost()
	first := rh != nil && rh.spec.Name == leader && c.restore == nil
	p.reg = newRegistryGate(rh, spec.Registry.Port, first, &p.mu, p.mark)
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

// run works on every host and joins their errors. The registry checks it
// starts may outlive it (until stop), under the run's context.
func (p *pipeline) run(ctx context.Context) error {
	p.reg.startChecks(ctx)
	steps := make([]func() error, len(p.hosts))
	for i, h := range p.hosts {
		steps[i] = func() error { return p.host(ctx, h) }
	}
	// A bug met on one host fails that host, not the whole run.
	return joinErrs(goEach(func(i int) string { return p.hosts[i].spec.Name }, steps))
}

// goEach runs each step in its own goroutine and returns their errors,
// in order; a step that panics fails with an error naming its host.
func goEach(hostOf func(i int) string, steps []func() error) []error {
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, f := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fanout.Guard(hostOf(i), f)
		}()
	}
	wg.Wait()
	return errs
}

// host is one host's way through the pipeline: made or adopted, its
// /etc/hosts once every address is known, connected and provisioned, then
// three branches on the host's one connection, side by side: the early
// swarm, the image archives (then the registry on its node), the SSH
// mesh.
func (p *pipeline) host(ctx context.Context, h *host) error {
	isLeader := h.spec.Name == p.leader
	defer p.release(h, isLeader)
	if err := p.slot(ctx, func() error { return p.create(ctx, h) }); err != nil {
		return err
	}
	h.created.done()
	p.mark("create")
	if err := p.addressed(ctx, h); err != nil {
		return err
	}
	if err := p.slot(ctx, func() error { return p.provision(ctx, h) }); err != nil {
		return err
	}
	p.mark("provision")
	p.reg.goCheck(h)
	name := func(int) string { return h.spec.Name }
	return joinErrs(goEach(name, []func() error{
		func() error { return p.swarm(ctx, h, isLeader) },
		func() error { return p.images(ctx, h) },
		func() error { return p.peerSSH(ctx, h) },
	}))
}

// release marks every event the host owes the others as done, whatever
// happened (those it reached are done already), in the order they were
// owed in.
func (p *pipeline) release(h *host, isLeader bool) {
	p.managerDone(h) // a manager that failed before its join
	if isLeader {
		// Done here too when the leader fails before the swarm: the
		// others then leave it to the reconciler's pass.
		p.anchorReady.done()
	}
	h.connected.done()
	h.created.done()
	if p.registryHost() == h {
		p.reg.made.done()
		p.reg.images.done()
	}
}

// addressed waits for every host's address (every node's /etc/hosts
// names every node), stores the host's entries, and renews the
// certificates that expire soon before anything uses them.
func (p *pipeline) addressed(ctx context.Context, h *host) error {
	if err := p.waitAll(ctx, func(o *host) *event { return o.created }, func(o *host) bool { return o.mach != nil }); err != nil {
		return err
	}
	// Every host holds the one list (not a copy of its own for the run),
	// saved only when it changed.
	entries := p.hostEntries()
	same := slices.EqualFunc(h.mach.Hosts, entries, sameEntry)
	h.mach.Hosts = entries
	if !same {
		if err := p.c.Machines.Store.Save(h.mach.Machine); err != nil {
			return err
		}
	}
	return p.renewCerts()
}

// provision connects to the host and provisions it on that one
// connection, asking the registry beside it, and opens its node.
func (p *pipeline) provision(ctx context.Context, h *host) error {
	c := p.c
	ev := func(step string, s ui.Status, detail string) { c.Machines.Progress.Event(h.spec.Name, step, s, detail) }
	log, err := c.Machines.OpenIdleLog(h.mach, logIdle)
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
	asked := p.reg.ask(ctx, h)
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
	h.node, err = h.mach.Node(p.engineClient(ctx, h, rep, log))
	return err
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
			ready = func(ctx context.Context) error { return p.reg.waitFirst(ctx, p.early.Changed()) }
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
		if err := p.reg.images.wait(ctx); err != nil {
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
	p.reg.images.done()
	waits := []*event{p.anchorReady, p.managersJoined}
	if p.reg.first {
		waits = waits[:1]
	}
	for _, ev := range waits {
		if err := ev.wait(ctx); err != nil {
			return err
		}
	}
	return p.registry(ctx, h)
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
	err := p.slot(ctx, func() error { return p.c.peerSSHHost(ctx, h, pf, &p.mu) })
	// Nothing reads the host's facts after this (its /etc/hosts, ssh
	// config and known_hosts name every node: about 160 KB at 1,000).
	h.facts = nil
	if err != nil {
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
	sw := &store.Swarm{Join: p.leader, Manager: m.Role == bootstrap.RoleManager, Labels: labelList(m.Labels), Availability: m.Availability, ImageArchives: m.ImageArchives}
	if m.Name == p.leader {
		sw = &store.Swarm{Master: true, Labels: sw.Labels, Availability: sw.Availability, ImageArchives: sw.ImageArchives,
			Registry: spec.Registry.Enabled, RegistryPort: spec.Registry.Port, RegistryImage: spec.Registry.Image,
			RegistryPath: spec.Registry.Path, RegistryNode: spec.Registry.Node}
	}
	sw.DataPathPort = spec.DataPathPort
	setup := m.Setup
	setup.Swarm, setup.Cluster, setup.AuthorizedKeys = sw, spec.Name, []string{p.pub}
	// The stored host list stays until addressed sets it: a run that
	// changes nothing rewrites no config.json.
	mach, unlock, err := p.c.Machines.EnsureHostLocked(ctx, machine.CreateOptions{Name: m.Name, Driver: m.Driver, DriverConfig: m.DriverConfig, Setup: setup, KeepHosts: true})
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

func sameEntry(a, b store.HostEntry) bool {
	return a.IP == b.IP && slices.Equal(a.Names, b.Names)
}

func (p *pipeline) peerFiles() *peerFiles {
	p.peerOnce.Do(func() { p.peer = newPeerFiles(p.hosts, p.priv, p.pub, p.spec.Name) })
	return p.peer
}

// probes are the cluster's own read-only probes, answered with the facts:
// the docker user's ~/.ssh.
func (p *pipeline) probes(h *host) []provision.Probe {
	return []provision.Probe{peerProbe(h.mach.DockerUser, p.spec.Name)}
}
