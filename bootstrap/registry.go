package bootstrap

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
)

// Registry is the swarm's private registry service.
type Registry struct {
	Name     string // service name
	Hostname string // the node it is pinned to
	Port     int
	Image    string
	Path     string // data folder on the node, bind-mounted
	// FreshNode: the node's host is new or changed in this run (a host
	// replaced under the same name, a restore onto new hosts), so its data
	// folder may be missing even when the service is as wanted: a bind
	// mount without its source fails every task.
	FreshNode bool
}

// Defaults for the registry service.
const (
	DefaultRegistryName  = "registry"
	DefaultRegistryPort  = 5000
	DefaultRegistryImage = "registry:2"
	DefaultRegistryPath  = "/var/lib/registry"
)

// WithDefaults fills what is not set.
func (r Registry) WithDefaults() Registry {
	r.Name = cmp.Or(r.Name, DefaultRegistryName)
	r.Port = cmp.Or(r.Port, DefaultRegistryPort)
	r.Image = cmp.Or(r.Image, DefaultRegistryImage)
	r.Path = cmp.Or(r.Path, DefaultRegistryPath)
	return r
}

func (r Registry) spec() swarm.ServiceSpec {
	one := uint64(1)
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: r.Name, Labels: map[string]string{"dev.shoal.registry": "true"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:  r.Image,
				Mounts: []mount.Mount{{Type: mount.TypeBind, Source: r.Path, Target: "/var/lib/registry"}},
			},
			Placement:     &swarm.Placement{Constraints: []string{"node.hostname==" + r.Hostname}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		// Host-mode publishing and DNS round robin: no ingress mesh or IPVS
		// needed, and the registry is at <node>:<port> as daemon.json says.
		EndpointSpec: &swarm.EndpointSpec{
			Mode: swarm.ResolutionModeDNSRR,
			Ports: []swarm.PortConfig{{
				Protocol: network.TCP, TargetPort: 5000,
				PublishedPort: uint32(r.Port), PublishMode: swarm.PortConfigPublishModeHost,
			}},
		},
	}
}

// sameSpec compares what shoal sets; the engine adds the rest.
func sameSpec(have, want swarm.ServiceSpec) bool {
	return sameContainer(have.TaskTemplate.ContainerSpec, want.TaskTemplate.ContainerSpec) &&
		samePlacement(have.TaskTemplate.Placement, want.TaskTemplate.Placement) &&
		sameEndpoint(have.EndpointSpec, want.EndpointSpec)
}

// sameContainer: the image (whatever its digest) and the one mount.
func sameContainer(hc, wc *swarm.ContainerSpec) bool {
	if hc == nil || strings.SplitN(hc.Image, "@", 2)[0] != wc.Image {
		return false
	}
	return len(hc.Mounts) == 1 && hc.Mounts[0].Source == wc.Mounts[0].Source && hc.Mounts[0].Target == wc.Mounts[0].Target
}

func samePlacement(have, want *swarm.Placement) bool {
	return have != nil && strings.Join(have.Constraints, ",") == strings.Join(want.Constraints, ",")
}

// sameEndpoint: the mode and the one published port.
func sameEndpoint(have, want *swarm.EndpointSpec) bool {
	if have == nil || len(have.Ports) != 1 || have.Mode != want.Mode {
		return false
	}
	hp, wp := have.Ports[0], want.Ports[0]
	return hp.PublishedPort == wp.PublishedPort && hp.TargetPort == wp.TargetPort && hp.PublishMode == wp.PublishMode
}

// EnsureRegistry creates or corrects the registry service through a
// manager. host is the registry node's runner, to make its data folder.
func EnsureRegistry(ctx context.Context, mgr *Node, host Runner, r Registry) (bool, error) {
	r = r.WithDefaults()
	want := r.spec()
	svc, _, inspectErr := mgr.API.ServiceInspectWithRaw(ctx, r.Name, client.ServiceInspectOptions{})
	same := inspectErr == nil && sameSpec(svc.Spec, want)
	if same && !r.FreshNode {
		return false, nil
	}
	if inspectErr != nil && !cerrdefs.IsNotFound(inspectErr) {
		return false, fmt.Errorf("%s: service inspect %s: %w", mgr.Name, r.Name, inspectErr)
	}
	if _, err := host.RunSudo(ctx, "mkdir -p "+shell.Quote(r.Path)); err != nil {
		return false, err
	}
	if same {
		return false, nil
	}
	if inspectErr == nil {
		return updateRegistry(ctx, mgr, r, svc, want)
	}
	if _, err := mgr.API.ServiceCreate(ctx, want); err != nil {
		return false, fmt.Errorf("%s: service create %s (%s): %w", mgr.Name, r.Name, r.Image, err)
	}
	return true, nil
}

// updateRegistry corrects the registry service svc to want; true once
// it did.
func updateRegistry(ctx context.Context, mgr *Node, r Registry, svc swarm.Service, want swarm.ServiceSpec) (bool, error) {
	if _, err := mgr.API.ServiceUpdate(ctx, svc.ID, svc.Version, want); err != nil {
		return false, fmt.Errorf("%s: service update %s: %w", mgr.Name, r.Name, err)
	}
	return true, nil
}

// RegistryCheckCmd is a command that prints "ok" when the registry answers
// /v2/ as http://host:port/v2/ within seconds.
func RegistryCheckCmd(host string, port, seconds int) string {
	url := shell.Quote(fmt.Sprintf("http://%s:%d/v2/", host, port))
	return fmt.Sprintf("{ curl -fsS -m %d -o /dev/null %s 2>&1 || wget -q -T %d -O /dev/null %s; } && echo ok", seconds, url, seconds, url)
}

// registryPoll is how often WaitRegistry asks again: a registry task that
// just started answers within a second or two.
const registryPoll = 250 * time.Millisecond

// AskRegistry asks the registry's /v2/ from the host behind r as
// http://host:port/v2/, through the host's SSH connection: its sshd makes
// the TCP connection (a direct-tcpip channel; no process runs on the
// host, where curl cost 7 ms of its CPU). It connects to at:port when at
// is given (an address, as curl --resolve pins one), else to host:port as
// the host resolves it, waiting at most wait. nil: it answers. An error
// that sshrun.Prohibited says yes to means the host's sshd forwards no TCP
// (AllowTcpForwarding no): ask with RegistryCheckCmd.
func AskRegistry(ctx context.Context, r TCPDialer, host string, port int, at string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	target := net.JoinHostPort(host, strconv.Itoa(port))
	dialTo := target
	if at != "" {
		dialTo = net.JoinHostPort(at, strconv.Itoa(port))
	}
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return r.DialTCP(ctx, dialTo) },
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+target+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 { // as curl -f
		return fmt.Errorf("http://%s/v2/ answered %s", target, resp.Status)
	}
	return nil
}

// TCPDialer opens TCP connections from a host (sshrun.Client.DialTCP).
type TCPDialer interface {
	DialTCP(ctx context.Context, addr string) (net.Conn, error)
}

// WaitRegistry waits until the registry answers /v2/ from node n, as
// http://host:port/v2/ (host as the node's daemon.json names it): through
// the SSH connection (AskRegistry), else, where the host's sshd forwards
// no TCP, with curl or wget on the host.
func WaitRegistry(ctx context.Context, n *Node, host string, port int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := fmt.Sprintf("http://%s:%d/v2/", host, port)
	err := askUntilAnswered(ctx, registryAsks, func(ctx context.Context) error { return AskRegistry(ctx, n.R, host, port, "", registryAskWait) })
	if sshrun.Prohibited(err) {
		// A session each, which sshd counts (MaxSessions): one at a time.
		cmd := RegistryCheckCmd(host, port, int(registryAskWait/time.Second))
		err = askUntilAnswered(ctx, 1, func(ctx context.Context) error { _, err := n.R.RunSudo(ctx, cmd); return err })
	}
	if err != nil {
		return fmt.Errorf("%s: the registry does not answer %s: %w", n.Name, url, err)
	}
	return nil
}

// registryAskWait bounds one ask; registryAsks is how many asks through
// the connection may be under way at once.
const (
	registryAskWait = 5 * time.Second
	registryAsks    = 4
)

// askUntilAnswered asks every registryPoll until an ask says yes (nil) or
// ctx ends (the last ask's error), or an ask says the host forwards no
// TCP (that error). The asks overlap: one that hangs (its connection
// made while the port is published but before the task listens, a SYN
// that nothing answers) does not hold up the next, which starts
// registryPoll later; at most `most` asks are under way at once.
func askUntilAnswered(ctx context.Context, most int, ask func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the asks still under way; results has room for their errors
	results := make(chan error, most)
	pending := 0
	start := func() {
		pending++
		go func() { results <- ask(ctx) }()
	}
	start()
	tick := time.NewTicker(registryPoll)
	defer tick.Stop()
	var last error
	for {
		select {
		case err := <-results:
			pending--
			if err == nil || sshrun.Prohibited(err) {
				return err
			}
			last = err
		case <-tick.C:
			if pending < most {
				start()
			}
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return last
		}
	}
}
