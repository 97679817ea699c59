package dataplane

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/fanout"
	"github.com/shoal-dev/shoal/internal/wait"
)

// Manager is what the probe needs of a manager's Engine API (bootstrap
// puts it over the Engine API client).
type Manager interface {
	SwarmInspect(ctx context.Context) (swarm.Swarm, error)
	NetworkCreate(ctx context.Context, name string, options client.NetworkCreateOptions) (network.CreateResponse, error)
	NetworkList(ctx context.Context, options client.NetworkListOptions) ([]network.Summary, error)
	NetworkRemove(ctx context.Context, networkID string) error
	ServiceCreate(ctx context.Context, spec swarm.ServiceSpec) (swarm.ServiceCreateResponse, error)
	ServiceList(ctx context.Context, options client.ServiceListOptions) ([]swarm.Service, error)
	ServiceRemove(ctx context.Context, serviceID string) error
	TaskList(ctx context.Context, options client.TaskListOptions) ([]swarm.Task, error)
}

// Worker is what the probe needs of each node's Engine API.
type Worker interface {
	ImageInspect(ctx context.Context, image string) (image.InspectResponse, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	ContainerLogs(ctx context.Context, containerID string, options client.ContainerLogsOptions) (io.ReadCloser, error)
}

// Probe is one run of the cross-node probe.
type Probe struct {
	Manager Manager
	// Workers: node name -> its engine; NodeIDs: node name -> swarm node ID.
	Workers map[string]Worker
	NodeIDs map[string]string
	Image   string
	// OverlayMTU is the probe network's MTU (0: Docker's default).
	OverlayMTU int
	// Mesh also tests a service's virtual IP and the routing mesh (a
	// published port at every node's address in HostAddrs): only where
	// every node's kernel has IP_VS, without which neither can work.
	Mesh      bool
	HostAddrs map[string]string
	// Settle is how long the VIP and each node's routing mesh may take to
	// answer for the new responder (15 s when 0): a slow node programs
	// them late (VMs under QEMU without KVM took over 15 s).
	Settle time.Duration
	// Bound is how long the tasks may take to start (they start one
	// after another on a loaded swarm), and then again how long the
	// probe may run once they have (60 s each when 0): Run's ctx should
	// allow both.
	Bound time.Duration
}

func labelFilter() client.Filters { return make(client.Filters).Add("label", Label) }

// Cleanup removes every probe service and network a check left (one
// killed midway). Bounded by ctx.
func Cleanup(ctx context.Context, m Manager) error {
	errs, err := removeServices(ctx, m)
	if err != nil {
		return err
	}
	nets, err := m.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilter()})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing the check's networks: %w", err))...)
	}
	for _, n := range nets {
		if err := removeNetwork(ctx, m, n.ID); err != nil {
			errs = append(errs, fmt.Errorf("removing the check's network %s: %w", n.Name, err))
		}
	}
	if len(nets) > 0 && len(errs) == 0 {
		errs = append(errs, waitNoNetwork(ctx, m))
	}
	return errors.Join(errs...)
}

// removeServices removes the check's services; err is a failed listing,
// errs the removals that failed.
func removeServices(ctx context.Context, m Manager) (errs []error, err error) {
	svcs, err := m.ServiceList(ctx, client.ServiceListOptions{Filters: labelFilter()})
	if err != nil {
		return nil, fmt.Errorf("listing the check's services: %w", err)
	}
	for _, s := range svcs {
		if err := m.ServiceRemove(ctx, s.ID); err != nil && !errdefsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing the check's service %s: %w", s.Spec.Name, err))
		}
	}
	return errs, nil
}

// waitNoNetwork waits until the manager lists no labelled network: a
// removed overlay stays listed while the node's last task leaves it.
func waitNoNetwork(ctx context.Context, m Manager) error {
	err := wait.Poll(ctx, 300*time.Millisecond, 0, func(ctx context.Context) (bool, error) {
		nets, err := m.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilter()})
		return err == nil && len(nets) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the check's network is still there: %w", err)
	}
	return nil
}

// removeNetwork retries while the removed service's tasks still hold the
// network.
func removeNetwork(ctx context.Context, m Manager, id string) error {
	var last error
	err := wait.Poll(ctx, 500*time.Millisecond, 0, func(ctx context.Context) (bool, error) {
		last = m.NetworkRemove(ctx, id)
		return last == nil || errdefsNotFound(last), nil
	})
	if err != nil && last != nil {
		return last
	}
	return err
}

func errdefsNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run starts the probe, collects every node's result within ctx, and
// removes the probe (with a fresh bounded context, also when ctx ended).
func (p *Probe) Run(ctx context.Context, nodes []string) (mx Matrix, err error) {
	mx = Matrix{Missing: map[string]string{}, NoImage: map[string]bool{}}
	t := time.Now()
	if err := Cleanup(ctx, p.Manager); err != nil {
		return mx, err
	}
	img, have := p.image(ctx, nodes, &mx)
	if len(have) == 0 {
		return mx, nil
	}
	id := runID()
	name := "shoal-check-" + id
	defer func() {
		t := time.Now()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = Cleanup(cctx, p.Manager)
		mx.Run.Cleanup = secondsSince(t)
	}()
	port, err := p.start(ctx, name, id, img, have)
	if err != nil {
		return mx, err
	}
	mx.Run.Make, t = secondsSince(t), time.Now()
	p.awaitStart(ctx, name, have)
	mx.Run.Start, t = secondsSince(t), time.Now()
	pctx, cancel := context.WithTimeout(ctx, p.bound())
	defer cancel()
	results, addrs := p.collect(pctx, name, have, mx.Missing)
	mx.Run.Probe = secondsSince(t)
	got := Cells(have, results, addrs, p.hosts())
	mx.Cells, mx.DNS, mx.VIP, mx.MeshPort = got.Cells, got.DNS, got.VIP, port
	return mx, nil
}

// image is the image the probe runs (see pinnedImage) and the nodes that
// have it, asked of readersAtOnce nodes at once; the others are noted in
// mx.
func (p *Probe) image(ctx context.Context, nodes []string, mx *Matrix) (string, []string) {
	img := cmp.Or(p.Image, DefaultImage)
	has, found := make([]bool, len(nodes)), make([]string, len(nodes)) // found: the image's ID on each node
	_ = fanout.Each(ctx, readersAtOnce, indices(len(nodes)), nil, func(ctx context.Context, i int) error {
		if ii, err := p.Workers[nodes[i]].ImageInspect(ctx, img); err == nil {
			has[i], found[i] = true, ii.ID
		}
		return nil
	})
	var have, ids []string
	for i, n := range nodes {
		if !has[i] {
			mx.Missing[n] = fmt.Sprintf("the probe's image %s is not on %s (nothing is pulled): load it with image_archives, or give another with --image", img, n)
			mx.NoImage[n] = true
			continue
		}
		have, ids = append(have, n), append(ids, found[i])
	}
	return pinnedImage(img, ids), have
}

// secondsSince is the time since t in seconds, to a tenth.
func secondsSince(t time.Time) float64 {
	return math.Round(time.Since(t).Seconds()*10) / 10
}

// pinnedImage is the image the probe's services name: the image's ID
// when every probed node has the same one. Swarm's executor asks the
// registry for a tag before each task (unless it is an ID, or a digest
// the node has): on hosts online, a pull from Docker Hub on every node
// at every check; offline, seconds of failed lookups before each task
// starts. Nodes that differ keep the tag (and Docker's habit).
func pinnedImage(tag string, ids []string) string {
	if len(ids) == 0 || ids[0] == "" {
		return tag
	}
	for _, id := range ids[1:] {
		if id != ids[0] {
			return tag
		}
	}
	return ids[0]
}

// quietWait is how long, in seconds, a probe task waits for a new
// peer's name before it pings those it has: a third of the probe's
// bound, at least 10. Each task counts from the last name that came, not
// from its own start: on a swarm of 30 nodes sharing 2 cores the tasks
// start over 30 s or more, and with a fixed 20 s from their start the
// first ones gave up before the last had started.
func quietWait(bound time.Duration) int {
	return max(10, int(bound.Seconds())/3)
}

// bound is the probe's bound (see Probe.Bound).
func (p *Probe) bound() time.Duration {
	return cmp.Or(p.Bound, 60*time.Second)
}

// awaitStart waits until every node's probe task has started or ended
// (or the bound passes): the probe's own bound counts from then.
func (p *Probe) awaitStart(ctx context.Context, name string, nodes []string) {
	_ = wait.Poll(ctx, 500*time.Millisecond, p.bound(), func(ctx context.Context) (bool, error) {
		ts, err := p.Manager.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", name)})
		return err == nil && allStarted(ts, p.NodeIDs, nodes), nil
	})
}

// allStarted says whether each of nodes has a task in ts that is past
// starting (running, or ended).
func allStarted(ts []swarm.Task, ids map[string]string, nodes []string) bool {
	past := map[string]bool{}
	for _, t := range ts {
		if started(t.Status.State) {
			past[t.NodeID] = true
		}
	}
	for _, n := range nodes {
		if !past[ids[n]] {
			return false
		}
	}
	return true
}

// started says whether a task in state st has started (or ended).
func started(st swarm.TaskState) bool {
	switch st {
	case swarm.TaskStateNew, swarm.TaskStateAllocated, swarm.TaskStatePending, swarm.TaskStateAssigned,
		swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting:
		return false
	}
	return true
}

// pingBatch is how many peers a probe task pings at once (each with both
// sizes): 30 tasks pinging 29 peers all at once, about 1,700 pings with
// their retries, lost packets on 2 cores and blamed working pairs.
const pingBatch = 10

// hosts are the nodes' own addresses, parsed (the routing mesh's ends).
func (p *Probe) hosts() map[string]netip.Addr {
	out := map[string]netip.Addr{}
	for n, a := range p.HostAddrs {
		if ip, err := netip.ParseAddr(a); err == nil {
			out[n] = ip
		}
	}
	return out
}

// start makes the probe's network, the responder (when the mesh is
// tested; its published port is returned) and the probe service.
func (p *Probe) start(ctx context.Context, name, id, img string, nodes []string) (port int, err error) {
	labels := map[string]string{Label: id}
	opts := map[string]string{}
	mtu := p.OverlayMTU
	if mtu == 0 {
		mtu = DefaultOverlayMTU
	} else {
		opts["com.docker.network.driver.mtu"] = strconv.Itoa(mtu)
	}
	// Internal unless the routing mesh is tested (its tasks reach the
	// nodes' own addresses): no task then gets a docker_gwbridge endpoint
	// too, a veth pair and NAT rules fewer to make on every node.
	create := client.NetworkCreateOptions{Driver: "overlay", Attachable: true, Internal: !p.Mesh, Labels: labels, Options: opts}
	if _, err := p.Manager.NetworkCreate(ctx, name, create); err != nil {
		return 0, fmt.Errorf("creating the probe's overlay network: %w", err)
	}
	env := []string{"SVC=" + name, "N=" + strconv.Itoa(len(nodes)), "BIG=" + strconv.Itoa(mtu-28), "WAIT=" + strconv.Itoa(quietWait(p.bound())), "BATCH=" + strconv.Itoa(pingBatch)}
	if p.Mesh {
		if port, err = p.startResponder(ctx, name, labels, img, nodes); err != nil {
			return 0, err
		}
		settle := cmp.Or(int(p.Settle.Seconds()), 15)
		env = append(env, "VIP="+name+"-vip", "PORT="+strconv.Itoa(port), "HOSTS="+p.meshTargets(nodes), "SETTLE="+strconv.Itoa(settle))
	}
	spec := p.taskSpec(name, name, labels, img, nodes, []string{"sh", "-c", probeScript}, env)
	// DNS round robin: VIPs need IP_VS, which the probe must not need.
	spec.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
	if _, err := p.Manager.ServiceCreate(ctx, spec); err != nil {
		return 0, fmt.Errorf("creating the probe service: %w", err)
	}
	return port, nil
}

// taskSpec is a global service of the probe's image on nodes, attached to
// the probe's network (called as the probe), run once.
func (p *Probe) taskSpec(name, network string, labels map[string]string, img string, nodes, cmd, env []string) swarm.ServiceSpec {
	grace := time.Second
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		Mode:        swarm.ServiceMode{Global: &swarm.GlobalService{}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: img, Labels: labels, Command: cmd, StopGracePeriod: &grace, Env: env},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: network}},
			Placement:     &swarm.Placement{Constraints: p.excludeOthers(nodes)},
		},
	}
}

// startResponder makes the service the probe asks through its virtual IP
// and the routing mesh: busybox httpd on every probed node, on the probe's
// network, its port published by the ingress network on a port swarm
// picks; it returns that port once swarm has given it.
func (p *Probe) startResponder(ctx context.Context, probe string, labels map[string]string, img string, nodes []string) (int, error) {
	name := probe + "-vip"
	spec := p.taskSpec(name, probe, labels, img, nodes, []string{"sh", "-c", responderScript}, []string{"VIP=" + name})
	spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
	spec.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP,
		Ports: []swarm.PortConfig{{Protocol: network.TCP, TargetPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}}
	if _, err := p.Manager.ServiceCreate(ctx, spec); err != nil {
		return 0, fmt.Errorf("creating the probe's responder service: %w", err)
	}
	var port int
	err := wait.Poll(ctx, 200*time.Millisecond, 15*time.Second, func(ctx context.Context) (bool, error) {
		svcs, err := p.Manager.ServiceList(ctx, client.ServiceListOptions{Filters: labelFilter()})
		if err != nil {
			return false, nil
		}
		for _, s := range svcs {
			if s.Spec.Name == name && len(s.Endpoint.Ports) > 0 {
				port = int(s.Endpoint.Ports[0].PublishedPort)
			}
		}
		return port > 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("the probe's responder got no published port: %w", err)
	}
	return port, nil
}

// meshTargets are the probed nodes' IPv4 addresses, space-separated (the
// probe's busybox nc speaks IPv4).
func (p *Probe) meshTargets(nodes []string) string {
	var out []string
	for _, n := range nodes {
		if a, err := netip.ParseAddr(p.HostAddrs[n]); err == nil && a.Is4() {
			out = append(out, a.String())
		}
	}
	return strings.Join(out, " ")
}

// excludeOthers are the placement constraints that keep the probe to
// nodes, those that have the image: the others are reported.
func (p *Probe) excludeOthers(nodes []string) []string {
	var cons []string
	for n, id := range p.NodeIDs {
		if !slices.Contains(nodes, n) && id != "" {
			cons = append(cons, "node.id!="+id)
		}
	}
	return cons
}

// collect polls each node's probe container until it printed DONE, or
// ctx ends; nodes without a result get their reason in missing.
func (p *Probe) collect(ctx context.Context, name string, nodes []string, missing map[string]string) (map[string]Result, map[string]netip.Addr) {
	results := map[string]Result{}
	addrs := map[string]netip.Addr{}
	err := wait.Poll(ctx, 700*time.Millisecond, 0, func(ctx context.Context) (bool, error) {
		return p.readAll(ctx, name, nodes, results, addrs, missing) == 0, nil
	})
	if err != nil {
		for _, n := range nodes {
			if !results[n].Done {
				missing[n] = "the probe did not finish in time: " + missing[n]
			}
		}
	}
	return results, addrs
}

// readAll reads the probe of each node not done yet, a few nodes at once
// (one at a time, a poll of 30 nodes took seconds), and says how many are
// still pending (with why in missing).
func (p *Probe) readAll(ctx context.Context, name string, nodes []string, results map[string]Result, addrs map[string]netip.Addr, missing map[string]string) (pending int) {
	type reading struct {
		r   Result
		a   netip.Addr
		why string
	}
	var todo []string
	for _, n := range nodes {
		if !results[n].Done {
			todo = append(todo, n)
		}
	}
	got := make([]reading, len(todo))
	_ = fanout.Each(ctx, readersAtOnce, indices(len(todo)), nil, func(ctx context.Context, i int) error {
		r, a, why := p.read(ctx, name, todo[i])
		got[i] = reading{r, a, why}
		return nil
	})
	for i, n := range todo {
		g := got[i]
		if g.a.IsValid() {
			addrs[n] = g.a
		}
		results[n] = g.r
		if !g.r.Done {
			pending++
			missing[n] = cmp.Or(g.why, "its probe was not read before the bound ended")
		} else {
			delete(missing, n)
		}
	}
	return pending
}

// indices are 0 .. n-1.
func indices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// readersAtOnce bounds the nodes whose probe is read at once.
const readersAtOnce = 8

// read returns node n's probe result so far, its task's address on the
// probe network, and (while not done) what the task is doing.
func (p *Probe) read(ctx context.Context, name, n string) (Result, netip.Addr, string) {
	w := p.Workers[n]
	cs, err := w.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "com.docker.swarm.service.name="+name)})
	if err != nil {
		return Result{}, netip.Addr{}, "its engine: " + err.Error()
	}
	if len(cs) == 0 {
		return Result{}, netip.Addr{}, p.taskState(ctx, name, n)
	}
	var a netip.Addr
	if ci, err := w.ContainerInspect(ctx, cs[0].ID); err == nil && ci.NetworkSettings != nil {
		if ep, ok := ci.NetworkSettings.Networks[name]; ok && ep != nil {
			a = ep.IPAddress
		}
	}
	rc, err := w.ContainerLogs(ctx, cs[0].ID, client.ContainerLogsOptions{ShowStdout: true})
	if err != nil {
		return Result{}, a, "reading its probe's log: " + err.Error()
	}
	defer rc.Close()
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, io.Discard, io.LimitReader(rc, 256*1024))
	r := ParseResult(out.String())
	return r, a, "its probe task is " + string(cs[0].State) + " (" + cs[0].Status + ")"
}

// taskState says why a node has no probe container yet, from the swarm's
// task list.
func (p *Probe) taskState(ctx context.Context, name, n string) string {
	ts, err := p.Manager.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", name).Add("node", p.NodeIDs[n])})
	if err != nil || len(ts) == 0 {
		return "no probe task was scheduled on it"
	}
	t := ts[0]
	why := "its probe task is " + string(t.Status.State)
	if t.Status.Err != "" {
		why += ": " + t.Status.Err
	}
	return why
}
