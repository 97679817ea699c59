package dataplane

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// fakeSwarm is a manager that keeps services and networks, and hands each
// node's fake engine the probe's container once the service exists.
type fakeSwarm struct {
	mu       sync.Mutex
	services map[string]swarm.ServiceSpec
	networks map[string]map[string]string // name -> labels
	calls    []string
	created  swarm.ServiceSpec
	all      []swarm.ServiceSpec
	netOpts  client.NetworkCreateOptions
	nodes    []string // node IDs that run a task of each service
}

func (f *fakeSwarm) SwarmInspect(context.Context) (swarm.Swarm, error) { return swarm.Swarm{}, nil }
func (f *fakeSwarm) NetworkCreate(_ context.Context, name string, o client.NetworkCreateOptions) (network.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "network create "+name)
	f.networks[name] = o.Labels
	f.netOpts = o
	return network.CreateResponse{ID: name}, nil
}
func (f *fakeSwarm) NetworkList(context.Context, client.NetworkListOptions) ([]network.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []network.Summary
	for n, l := range f.networks {
		if _, ok := l[Label]; ok {
			out = append(out, network.Summary{Network: network.Network{ID: n, Name: n}})
		}
	}
	return out, nil
}
func (f *fakeSwarm) NetworkRemove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "network rm "+id)
	delete(f.networks, id)
	return nil
}
func (f *fakeSwarm) ServiceCreate(_ context.Context, s swarm.ServiceSpec) (swarm.ServiceCreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "service create "+s.Name)
	f.services[s.Name] = s
	f.created = s
	f.all = append(f.all, s)
	return swarm.ServiceCreateResponse{ID: s.Name}, nil
}
func (f *fakeSwarm) ServiceList(context.Context, client.ServiceListOptions) ([]swarm.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []swarm.Service
	for n, s := range f.services {
		svc := swarm.Service{ID: n, Spec: s}
		if s.EndpointSpec != nil && len(s.EndpointSpec.Ports) > 0 {
			svc.Endpoint.Ports = []swarm.PortConfig{{TargetPort: s.EndpointSpec.Ports[0].TargetPort, PublishedPort: 30001}}
		}
		out = append(out, svc)
	}
	return out, nil
}
func (f *fakeSwarm) ServiceRemove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "service rm "+id)
	delete(f.services, id)
	return nil
}

// TaskList: a running task on each of nodes once a service exists.
func (f *fakeSwarm) TaskList(context.Context, client.TaskListOptions) ([]swarm.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.services) == 0 {
		return nil, nil
	}
	var out []swarm.Task
	for _, id := range f.nodes {
		out = append(out, swarm.Task{NodeID: id, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}})
	}
	return out, nil
}

// probeNetwork is the labelled network the probe made.
func (f *fakeSwarm) probeNetwork() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n, l := range f.networks {
		if _, ok := l[Label]; ok {
			return n
		}
	}
	return ""
}

func (f *fakeSwarm) service() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n := range f.services {
		return n, true
	}
	return "", false
}

// fakeNode is one node's engine: its probe task has address addr and
// prints log (with the peers' addresses filled in).
type fakeNode struct {
	sw       *fakeSwarm
	addr     string
	log      string
	hasImage bool
	imageID  string
}

func (n *fakeNode) ImageInspect(context.Context, string) (image.InspectResponse, error) {
	if !n.hasImage {
		return image.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("no such image")
	}
	return image.InspectResponse{ID: n.imageID}, nil
}
func (n *fakeNode) ContainerList(context.Context, client.ContainerListOptions) ([]container.Summary, error) {
	if _, ok := n.sw.service(); !ok {
		return nil, nil
	}
	return []container.Summary{{ID: "c-" + n.addr, State: "running"}}, nil
}
func (n *fakeNode) ContainerInspect(context.Context, string) (container.InspectResponse, error) {
	name := n.sw.probeNetwork()
	return container.InspectResponse{NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{name: {IPAddress: netip.MustParseAddr(n.addr)}}}}, nil
}
func (n *fakeNode) ContainerLogs(context.Context, string, client.ContainerLogsOptions) (io.ReadCloser, error) {
	// dockerd's multiplexed stream: one stdout frame (type, 3 zero bytes,
	// big-endian length, payload).
	b := bytes.NewBuffer([]byte{byte(stdcopy.Stdout), 0, 0, 0})
	_ = binary.Write(b, binary.BigEndian, uint32(len(n.log)))
	b.WriteString(n.log)
	return io.NopCloser(b), nil
}

func TestProbeRun(t *testing.T) {
	sw := &fakeSwarm{services: map[string]swarm.ServiceSpec{"shoal-check-old": {Annotations: swarm.Annotations{Name: "shoal-check-old"}}},
		networks: map[string]map[string]string{"shoal-check-old": {Label: "old"}, "mine": {}}, nodes: []string{"ida", "idb"}}
	ok := func(peers ...string) string {
		s := fmt.Sprintf("T %d\n", len(peers)+1)
		for _, p := range peers {
			s += "R " + p + " small ok\nR " + p + " big ok\n"
		}
		return s + fmt.Sprintf("S %d\nDONE\n", len(peers)+1)
	}
	nodes := map[string]*fakeNode{
		"a": {sw: sw, addr: "10.0.1.2", hasImage: true, imageID: "sha256:b1", log: ok("10.0.1.3")},
		"b": {sw: sw, addr: "10.0.1.3", hasImage: true, imageID: "sha256:b1", log: "T 2\nR 10.0.1.2 small ok\nR 10.0.1.2 big fail\nS 2\nDONE\n"},
		"c": {sw: sw, addr: "10.0.1.4"},
	}
	p := &Probe{Manager: sw, Workers: map[string]Worker{}, NodeIDs: map[string]string{"a": "ida", "b": "idb", "c": "idc"}}
	for n, w := range nodes {
		p.Workers[n] = w
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mx, err := p.Run(ctx, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Cell{{"a", "b", OK, OK, ""}, {"b", "a", OK, Failed, ""}}
	if fmt.Sprint(mx.Cells) != fmt.Sprint(want) {
		t.Errorf("cells %+v, want %+v", mx.Cells, want)
	}
	if !strings.Contains(mx.Missing["c"], "busybox:latest is not on c") {
		t.Errorf("missing %+v", mx.Missing)
	}
	calls := strings.Join(sw.calls, "; ")
	if !strings.HasPrefix(calls, "service rm shoal-check-old; network rm shoal-check-old; network create shoal-check-") {
		t.Errorf("a leftover is removed first: %s", calls)
	}
	if len(sw.services) != 0 || len(sw.networks) != 1 {
		t.Errorf("left behind: %v %v (only the unlabelled network stays)", sw.services, sw.networks)
	}
	spec := sw.lastSpec(t)
	if spec.EndpointSpec.Mode != swarm.ResolutionModeDNSRR || spec.Mode.Global == nil || fmt.Sprint(spec.TaskTemplate.Placement.Constraints) != "[node.id!=idc]" {
		t.Errorf("probe spec: %+v %+v", spec.EndpointSpec, spec.TaskTemplate.Placement)
	}
	if got := spec.TaskTemplate.ContainerSpec.Image; got != "sha256:b1" {
		t.Errorf("the probe runs %q, want the image's ID (no node asks a registry)", got)
	}
	if !sw.netOpts.Internal || sw.netOpts.Driver != "overlay" {
		t.Errorf("without the mesh the probe's network is an internal overlay (no gateway endpoints to make): %+v", sw.netOpts)
	}
	env := strings.Join(spec.TaskTemplate.ContainerSpec.Env, " ")
	if !strings.Contains(env, "BATCH=10") || !strings.Contains(env, "WAIT=") || !strings.Contains(env, "WAIT=20 ") {
		t.Errorf("env %s: want WAIT=20 (a third of the default bound), BATCH=10", env)
	}
	if len(sw.all) != 1 || strings.Contains(strings.Join(spec.TaskTemplate.ContainerSpec.Env, " "), "VIP=") {
		t.Errorf("without the mesh, the probe alone, told of no VIP: %d services, env %v", len(sw.all), spec.TaskTemplate.ContainerSpec.Env)
	}
}

func (f *fakeSwarm) lastSpec(t *testing.T) swarm.ServiceSpec {
	t.Helper()
	if f.created.Name == "" {
		t.Fatal("no service created")
	}
	return f.created
}

// TestProbeRunMesh: with the mesh tested, the responder is made first (VIP
// mode, a port published by ingress, on the probe's network), and the
// probe's tasks are told its name, the port swarm gave and the nodes'
// addresses; their V and M lines reach the matrix, and both services go.
func TestProbeRunMesh(t *testing.T) {
	sw := &fakeSwarm{services: map[string]swarm.ServiceSpec{}, networks: map[string]map[string]string{}, nodes: []string{"ida", "idb"}}
	nodes := map[string]*fakeNode{
		"a": {sw: sw, addr: "10.0.1.2", hasImage: true, log: "T 2\nR 10.0.1.3 small ok\nR 10.0.1.3 big ok\nS 2\nV ok\nM 192.168.5.3 ok\nDONE\n"},
		"b": {sw: sw, addr: "10.0.1.3", hasImage: true, log: "T 2\nR 10.0.1.2 small ok\nR 10.0.1.2 big ok\nS 2\nV ok\nM 192.168.5.2 fail\nDONE\n"},
	}
	p := &Probe{Manager: sw, Workers: map[string]Worker{}, NodeIDs: map[string]string{"a": "ida", "b": "idb"},
		Mesh: true, HostAddrs: map[string]string{"a": "192.168.5.2", "b": "192.168.5.3"}}
	for n, w := range nodes {
		p.Workers[n] = w
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mx, err := p.Run(ctx, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Cell{{"a", "b", OK, OK, OK}, {"b", "a", OK, OK, Failed}}
	if fmt.Sprint(mx.Cells) != fmt.Sprint(want) || mx.MeshPort != 30001 || mx.VIP["a"] != OK || mx.VIP["b"] != OK {
		t.Errorf("matrix %+v, want cells %+v, port 30001, both VIPs ok", mx, want)
	}
	if len(sw.all) != 2 {
		t.Fatalf("services made: %d, want the responder then the probe", len(sw.all))
	}
	resp, probe := sw.all[0], sw.all[1]
	ep := resp.EndpointSpec
	if !strings.HasSuffix(resp.Name, "-vip") || ep == nil || ep.Mode != swarm.ResolutionModeVIP || len(ep.Ports) != 1 ||
		ep.Ports[0].PublishMode != swarm.PortConfigPublishModeIngress || ep.Ports[0].TargetPort != 8080 ||
		resp.TaskTemplate.Networks[0].Target != probe.Name || resp.Labels[Label] == "" {
		t.Errorf("responder spec: %s %+v %+v", resp.Name, ep, resp.TaskTemplate.Networks)
	}
	if sw.netOpts.Internal {
		t.Errorf("with the mesh the probe's tasks reach the nodes' addresses: the network cannot be internal")
	}
	env := strings.Join(probe.TaskTemplate.ContainerSpec.Env, " ")
	for _, w := range []string{"VIP=" + resp.Name, "PORT=30001", "HOSTS=192.168.5.2 192.168.5.3", "SETTLE=15"} {
		if !strings.Contains(env, w) {
			t.Errorf("probe env %q lacks %q", env, w)
		}
	}
	if len(sw.services) != 0 || len(sw.networks) != 0 {
		t.Errorf("left behind: %v %v", sw.services, sw.networks)
	}
}

func TestPinnedImage(t *testing.T) {
	for _, c := range []struct {
		ids  []string
		want string
	}{
		{[]string{"sha256:a", "sha256:a", "sha256:a"}, "sha256:a"},
		{[]string{"sha256:a"}, "sha256:a"},
		{[]string{"sha256:a", "sha256:b"}, "busybox:latest"}, // one node has another busybox
		{[]string{"", ""}, "busybox:latest"},
		{nil, "busybox:latest"},
	} {
		if got := pinnedImage("busybox:latest", c.ids); got != c.want {
			t.Errorf("pinnedImage(%v) = %q, want %q", c.ids, got, c.want)
		}
	}
}

func TestQuietWait(t *testing.T) {
	for _, c := range []struct {
		bound time.Duration
		want  int
	}{
		{60 * time.Second, 20},
		{3 * time.Minute, 60},
		{5 * time.Second, 10},
	} {
		if got := quietWait(c.bound); got != c.want {
			t.Errorf("quietWait(%s) = %d, want %d", c.bound, got, c.want)
		}
	}
}

func TestAllStarted(t *testing.T) {
	ids := map[string]string{"a": "ida", "b": "idb"}
	task := func(node string, st swarm.TaskState) swarm.Task {
		return swarm.Task{NodeID: node, Status: swarm.TaskStatus{State: st}}
	}
	for _, c := range []struct {
		name  string
		tasks []swarm.Task
		want  bool
	}{
		{"both running", []swarm.Task{task("ida", swarm.TaskStateRunning), task("idb", swarm.TaskStateRunning)}, true},
		{"one ended already", []swarm.Task{task("ida", swarm.TaskStateRunning), task("idb", swarm.TaskStateFailed)}, true},
		{"one preparing", []swarm.Task{task("ida", swarm.TaskStateRunning), task("idb", swarm.TaskStatePreparing)}, false},
		{"one starting", []swarm.Task{task("ida", swarm.TaskStateStarting), task("idb", swarm.TaskStateRunning)}, false},
		{"one without a task", []swarm.Task{task("ida", swarm.TaskStateRunning)}, false},
		{"a node not probed does not count", []swarm.Task{task("ida", swarm.TaskStateRunning), task("idb", swarm.TaskStateComplete), task("idc", swarm.TaskStatePending)}, true},
		{"none", nil, false},
	} {
		if got := allStarted(c.tasks, ids, []string{"a", "b"}); got != c.want {
			t.Errorf("%s: allStarted = %v, want %v", c.name, got, c.want)
		}
	}
}
