package bootstrap

import (
	"context"
	"io"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
	"github.com/shoal-dev/shoal/bootstrap/dataplane"
)

// Engine is the part of a node's Docker Engine API that bootstrap uses.
// apiEngine puts it over the Engine API client; tests use an in-memory swarm.
type Engine interface {
	Info(ctx context.Context) (system.Info, error)
	SwarmInit(ctx context.Context, req swarm.InitRequest) (string, error)
	SwarmJoin(ctx context.Context, req swarm.JoinRequest) error
	SwarmLeave(ctx context.Context, force bool) error
	SwarmUnlock(ctx context.Context, req swarm.UnlockRequest) error
	SwarmInspect(ctx context.Context) (swarm.Swarm, error)
	SwarmUpdate(ctx context.Context, options client.SwarmUpdateOptions) error
	SwarmGetUnlockKey(ctx context.Context) (swarm.UnlockKeyResponse, error)
	NodeList(ctx context.Context, options client.NodeListOptions) ([]swarm.Node, error)
	NodeInspectWithRaw(ctx context.Context, nodeID string) (swarm.Node, []byte, error)
	NodeUpdate(ctx context.Context, nodeID string, version swarm.Version, spec swarm.NodeSpec) error
	NodeRemove(ctx context.Context, nodeID string, options client.NodeRemoveOptions) error
	TaskList(ctx context.Context, options client.TaskListOptions) ([]swarm.Task, error)
	ServiceInspectWithRaw(ctx context.Context, serviceID string, options client.ServiceInspectOptions) (swarm.Service, []byte, error)
	ServiceCreate(ctx context.Context, spec swarm.ServiceSpec) (swarm.ServiceCreateResponse, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, spec swarm.ServiceSpec) (swarm.ServiceUpdateResponse, error)
	ImageInspect(ctx context.Context, image string) (image.InspectResponse, error)
	// ImageLoad loads a `docker save` archive quietly; the answer is
	// dockerd's JSON message stream.
	ImageLoad(ctx context.Context, input io.Reader) (io.ReadCloser, error)
	NetworkInspect(ctx context.Context, networkID string, options client.NetworkInspectOptions) (network.Inspect, error)
	NetworkRemove(ctx context.Context, networkID string) error
	NetworkCreate(ctx context.Context, name string, options client.NetworkCreateOptions) (network.CreateResponse, error)
	Close() error
}

// apiEngine is Engine over the Engine API client, whose methods take
// options and return result structs.
type apiEngine struct{ *engineClient }

var (
	_ Engine            = apiEngine{}
	_ dataplane.Manager = apiEngine{}
	_ dataplane.Worker  = apiEngine{}
)

func (a apiEngine) Info(ctx context.Context) (system.Info, error) {
	r, err := a.client(ctx).Info(ctx, client.InfoOptions{})
	return r.Info, err
}

func (a apiEngine) SwarmInit(ctx context.Context, req swarm.InitRequest) (string, error) {
	r, err := a.client(ctx).SwarmInit(ctx, client.SwarmInitOptions{
		ListenAddr: req.ListenAddr, AdvertiseAddr: req.AdvertiseAddr,
		DataPathAddr: req.DataPathAddr, DataPathPort: req.DataPathPort,
		ForceNewCluster: req.ForceNewCluster, Spec: req.Spec,
		AutoLockManagers: req.AutoLockManagers, Availability: req.Availability,
		DefaultAddrPool: req.DefaultAddrPool, SubnetSize: req.SubnetSize,
	})
	return r.NodeID, err
}

func (a apiEngine) SwarmJoin(ctx context.Context, req swarm.JoinRequest) error {
	_, err := a.client(ctx).SwarmJoin(ctx, client.SwarmJoinOptions{
		ListenAddr: req.ListenAddr, AdvertiseAddr: req.AdvertiseAddr,
		DataPathAddr: req.DataPathAddr, RemoteAddrs: req.RemoteAddrs,
		JoinToken: req.JoinToken, Availability: req.Availability,
	})
	return err
}

func (a apiEngine) SwarmLeave(ctx context.Context, force bool) error {
	_, err := a.client(ctx).SwarmLeave(ctx, client.SwarmLeaveOptions{Force: force})
	return err
}

func (a apiEngine) SwarmUnlock(ctx context.Context, req swarm.UnlockRequest) error {
	_, err := a.client(ctx).SwarmUnlock(ctx, client.SwarmUnlockOptions{Key: req.UnlockKey})
	return err
}

func (a apiEngine) SwarmInspect(ctx context.Context) (swarm.Swarm, error) {
	r, err := a.client(ctx).SwarmInspect(ctx, client.SwarmInspectOptions{})
	return r.Swarm, err
}

func (a apiEngine) SwarmUpdate(ctx context.Context, options client.SwarmUpdateOptions) error {
	_, err := a.client(ctx).SwarmUpdate(ctx, options)
	return err
}

func (a apiEngine) SwarmGetUnlockKey(ctx context.Context) (swarm.UnlockKeyResponse, error) {
	r, err := a.client(ctx).SwarmGetUnlockKey(ctx)
	return swarm.UnlockKeyResponse{UnlockKey: r.Key}, err
}

func (a apiEngine) NodeList(ctx context.Context, options client.NodeListOptions) ([]swarm.Node, error) {
	r, err := a.client(ctx).NodeList(ctx, options)
	return r.Items, err
}

func (a apiEngine) NodeInspectWithRaw(ctx context.Context, nodeID string) (swarm.Node, []byte, error) {
	r, err := a.client(ctx).NodeInspect(ctx, nodeID, client.NodeInspectOptions{})
	return r.Node, r.Raw, err
}

func (a apiEngine) NodeUpdate(ctx context.Context, nodeID string, version swarm.Version, spec swarm.NodeSpec) error {
	_, err := a.client(ctx).NodeUpdate(ctx, nodeID, client.NodeUpdateOptions{Version: version, Spec: spec})
	return err
}

func (a apiEngine) NodeRemove(ctx context.Context, nodeID string, options client.NodeRemoveOptions) error {
	_, err := a.client(ctx).NodeRemove(ctx, nodeID, options)
	return err
}

func (a apiEngine) TaskList(ctx context.Context, options client.TaskListOptions) ([]swarm.Task, error) {
	r, err := a.client(ctx).TaskList(ctx, options)
	return r.Items, err
}

func (a apiEngine) ServiceInspectWithRaw(ctx context.Context, serviceID string, options client.ServiceInspectOptions) (swarm.Service, []byte, error) {
	r, err := a.client(ctx).ServiceInspect(ctx, serviceID, options)
	return r.Service, r.Raw, err
}

func (a apiEngine) ServiceCreate(ctx context.Context, spec swarm.ServiceSpec) (swarm.ServiceCreateResponse, error) {
	r, err := a.client(ctx).ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	return swarm.ServiceCreateResponse{ID: r.ID, Warnings: r.Warnings}, err
}

func (a apiEngine) ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, spec swarm.ServiceSpec) (swarm.ServiceUpdateResponse, error) {
	r, err := a.client(ctx).ServiceUpdate(ctx, serviceID, client.ServiceUpdateOptions{Version: version, Spec: spec})
	return swarm.ServiceUpdateResponse{Warnings: r.Warnings}, err
}

func (a apiEngine) ImageInspect(ctx context.Context, ref string) (image.InspectResponse, error) {
	r, err := a.client(ctx).ImageInspect(ctx, ref)
	return r.InspectResponse, err
}

func (a apiEngine) ImageLoad(ctx context.Context, input io.Reader) (io.ReadCloser, error) {
	return a.client(ctx).ImageLoad(ctx, input, client.ImageLoadWithQuiet(true))
}

func (a apiEngine) NetworkInspect(ctx context.Context, networkID string, options client.NetworkInspectOptions) (network.Inspect, error) {
	r, err := a.client(ctx).NetworkInspect(ctx, networkID, options)
	return r.Network, err
}

func (a apiEngine) NetworkRemove(ctx context.Context, networkID string) error {
	_, err := a.client(ctx).NetworkRemove(ctx, networkID, client.NetworkRemoveOptions{})
	return err
}

func (a apiEngine) NetworkCreate(ctx context.Context, name string, options client.NetworkCreateOptions) (network.CreateResponse, error) {
	r, err := a.client(ctx).NetworkCreate(ctx, name, options)
	return network.CreateResponse{ID: r.ID}, err
}

func (a apiEngine) Close() error { return a.close() }

// The rest is what the data-plane check needs besides Engine.

func (a apiEngine) NetworkList(ctx context.Context, options client.NetworkListOptions) ([]network.Summary, error) {
	r, err := a.client(ctx).NetworkList(ctx, options)
	return r.Items, err
}

func (a apiEngine) ServiceList(ctx context.Context, options client.ServiceListOptions) ([]swarm.Service, error) {
	r, err := a.client(ctx).ServiceList(ctx, options)
	return r.Items, err
}

func (a apiEngine) ServiceRemove(ctx context.Context, serviceID string) error {
	_, err := a.client(ctx).ServiceRemove(ctx, serviceID, client.ServiceRemoveOptions{})
	return err
}

func (a apiEngine) ContainerList(ctx context.Context, options client.ContainerListOptions) ([]container.Summary, error) {
	r, err := a.client(ctx).ContainerList(ctx, options)
	return r.Items, err
}

func (a apiEngine) ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error) {
	r, err := a.client(ctx).ContainerInspect(ctx, containerID, client.ContainerInspectOptions{})
	return r.Container, err
}

func (a apiEngine) ContainerLogs(ctx context.Context, containerID string, options client.ContainerLogsOptions) (io.ReadCloser, error) {
	return a.client(ctx).ContainerLogs(ctx, containerID, options)
}

// engineClient is the Engine API client, pinned on its first answer to the
// engine's own API version when that is older than the client negotiates down
// to (client.MinAPIVersion, docker 19.03). CentOS 7's docker 1.13 speaks API
// 1.26, and every call shoal makes exists since API 1.24 (swarm mode).
type engineClient struct {
	mu     sync.Mutex
	c      *client.Client
	opts   []client.Opt
	pinned bool
}

func newEngineClient(opts ...client.Opt) (*engineClient, error) {
	c, err := client.New(opts...)
	if err != nil {
		return nil, err
	}
	return &engineClient{c: c, opts: opts}, nil
}

// client negotiates once: a ping whose answer is too old for negotiation
// makes a client fixed at the engine's version. A failed ping is left to the
// call itself, which reports it.
func (e *engineClient) client(ctx context.Context) *client.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pinned {
		return e.c
	}
	ping, err := e.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	switch {
	case err == nil:
		e.pinned = true
	case ping.APIVersion != "" && versions.LessThan(ping.APIVersion, client.MinAPIVersion):
		if old, err := client.New(append(e.opts, client.WithAPIVersion(ping.APIVersion))...); err == nil {
			_ = e.c.Close()
			e.c, e.pinned = old, true
		}
	}
	return e.c
}

func (e *engineClient) close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.c.Close()
}
