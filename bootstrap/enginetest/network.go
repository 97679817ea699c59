package enginetest

import (
	"context"
	"errors"
	"maps"
	"net/netip"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// The swarm's networks: only what a manager asks of them (the ingress
// network Docker makes at init, and any made since), by name.

// ingress is the network Docker makes at swarm init: overlay, ingress, the
// first /24 of the first address pool, no MTU option.
func (c *cluster) makeIngress() {
	sub := netip.PrefixFrom(c.addrPool[0].Addr(), 24)
	c.networks = map[string]*network.Inspect{"ingress": {Network: network.Network{
		Name: "ingress", ID: c.w.newID(), Driver: "overlay", Scope: "swarm", Ingress: true,
		IPAM:    network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: sub}}},
		Options: map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4096"},
	}}}
}

func (c *cluster) network(idOrName string) *network.Inspect {
	for _, n := range c.networks {
		if n.ID == idOrName || n.Name == idOrName {
			return n
		}
	}
	return nil
}

func (e *Engine) NetworkInspect(ctx context.Context, id string, _ client.NetworkInspectOptions) (network.Inspect, error) {
	defer e.end()
	c, err := e.manage("NetworkInspect " + id)
	if err != nil {
		return network.Inspect{}, err
	}
	n := c.network(id)
	if n == nil {
		return network.Inspect{}, notFound(errors.New("network " + id + " not found"))
	}
	out := *n
	out.Options, out.Labels = maps.Clone(n.Options), maps.Clone(n.Labels)
	return out, nil
}

func (e *Engine) NetworkRemove(ctx context.Context, id string) error {
	defer e.end()
	c, err := e.manage("NetworkRemove " + id)
	if err != nil {
		return err
	}
	n := c.network(id)
	if n == nil {
		return notFound(errors.New("network " + id + " not found"))
	}
	delete(c.networks, n.Name)
	return nil
}

func (e *Engine) NetworkCreate(ctx context.Context, name string, o client.NetworkCreateOptions) (network.CreateResponse, error) {
	defer e.end()
	c, err := e.manage("NetworkCreate " + name)
	if err != nil {
		return network.CreateResponse{}, err
	}
	if c.network(name) != nil {
		return network.CreateResponse{}, conflict(errors.New("network with name " + name + " already exists"))
	}
	n := &network.Inspect{Network: network.Network{Name: name, ID: c.w.newID(), Driver: o.Driver, Scope: "swarm", Ingress: o.Ingress,
		Options: maps.Clone(o.Options), Labels: maps.Clone(o.Labels)}}
	if o.IPAM != nil {
		n.IPAM = *o.IPAM
	}
	if c.networks == nil {
		c.networks = map[string]*network.Inspect{}
	}
	c.networks[name] = n
	return network.CreateResponse{ID: n.ID}, nil
}
