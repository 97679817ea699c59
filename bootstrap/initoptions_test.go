package bootstrap

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// TestInitOptionsNewSwarm: a swarm made in this run takes the address
// pools and the VXLAN port asked for.
func TestInitOptionsNewSwarm(t *testing.T) {
	l := newLab(t)
	req := l.request(Policy{})
	req.Init = InitOptions{DefaultAddrPool: []string{"10.123.0.0/16", "10.124.0.0/16"}, DataPathPort: 4800, OverlayMTU: 1400}
	out := l.reconcile(req)
	if len(out.Warnings) > 0 {
		t.Errorf("warnings on a new swarm: %v", out.Warnings)
	}
	sw, err := l.nodes["m2"].API.SwarmInspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(PoolStrings(sw.DefaultAddrPool), req.Init.DefaultAddrPool) || sw.SubnetSize != 24 || sw.DataPathPort != 4800 {
		t.Errorf("swarm has pool %v /%d, port %d; want %v /24, 4800", sw.DefaultAddrPool, sw.SubnetSize, sw.DataPathPort, req.Init.DefaultAddrPool)
	}
	// The ingress network was made again with the MTU, on its subnet from the pool.
	ing, err := l.nodes["m3"].API.NetworkInspect(context.Background(), "ingress", client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ing.Options[MTUOption] != "1400" || !ing.Ingress || ing.Driver != "overlay" || len(ing.IPAM.Config) != 1 || ing.IPAM.Config[0].Subnet.String() != "10.123.0.0/24" {
		t.Errorf("ingress: %+v", ing)
	}
	// Again: the swarm is there, nothing is made again or said.
	l.engine("m1").ResetCalls()
	if out := l.reconcile(req); len(out.Warnings) > 0 {
		t.Errorf("warnings on the swarm as asked: %v", out.Warnings)
	}
	l.never("SwarmInit", "NetworkRemove", "NetworkCreate")
}

// TestInitOptionsExistingSwarm: an existing swarm made with other settings
// is reported, never left or made again.
func TestInitOptionsExistingSwarm(t *testing.T) {
	l := newLab(t)
	l.up()
	id := l.state("m1").ClusterID
	l.engine("m1").ResetCalls()
	req := l.request(Policy{})
	req.Init = InitOptions{DefaultAddrPool: []string{"10.123.0.0/16"}, DataPathPort: 4800, OverlayMTU: 1400}
	out := l.reconcile(req)
	if got := l.state("m1").ClusterID; got != id {
		t.Fatalf("the swarm was made again: %s, was %s", got, id)
	}
	l.never("SwarmInit", "SwarmLeave", "NetworkRemove", "NetworkCreate")
	w := strings.Join(out.Warnings, "\n")
	if !strings.Contains(w, "overlay_mtu is Docker's default, not 1400") {
		t.Errorf("warnings do not name the ingress MTU: %q", out.Warnings)
	}
	if !strings.Contains(w, "default_addr_pool is [10.0.0.0/8], not [10.123.0.0/16]") || !strings.Contains(w, "data_path_port is 4789, not 4800") {
		t.Errorf("warnings do not name the differences: %q", out.Warnings)
	}
	// Asked for what it has: nothing to say.
	req.Init = InitOptions{DefaultAddrPool: []string{"10.0.0.0/8"}, DataPathPort: 4789}
	if out := l.reconcile(req); len(out.Warnings) > 0 {
		t.Errorf("warnings where the swarm has what is asked: %v", out.Warnings)
	}
}

func TestInitDiffers(t *testing.T) {
	info := swarm.ClusterInfo{DefaultAddrPool: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, SubnetSize: 24, DataPathPort: 4789}
	for _, tc := range []struct {
		o    InitOptions
		want int
	}{
		{InitOptions{}, 0},
		{InitOptions{DataPathPort: 4789}, 0},
		{InitOptions{DataPathPort: 4790}, 1},
		{InitOptions{DefaultAddrPool: []string{"10.0.0.0/8"}}, 0},
		{InitOptions{DefaultAddrPool: []string{"10.0.0.0/8", "172.30.0.0/16"}, DataPathPort: 4790}, 2},
	} {
		if got := InitDiffers(info, tc.o); len(got) != tc.want {
			t.Errorf("%+v: %q, want %d differences", tc.o, got, tc.want)
		}
	}
}

// TestInitOptionsEarly: the swarm the early pass makes (cluster up's
// pipeline) takes the settings too, and the swarm pass after it finds
// nothing to report.
func TestInitOptionsEarly(t *testing.T) {
	l := newLab(t)
	req := l.request(Policy{})
	req.Init = InitOptions{DefaultAddrPool: []string{"10.123.0.0/16"}, DataPathPort: 4800, OverlayMTU: 1400}
	e := &Early{R: l.r, Policy: req.Policy, Init: req.Init}
	if ok, err := e.Start(context.Background(), req.Targets[0]); err != nil || !ok {
		t.Fatalf("Start = %v, %v", ok, err)
	}
	sw, err := l.nodes["m1"].API.SwarmInspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ing, err := l.nodes["m1"].API.NetworkInspect(context.Background(), "ingress", client.NetworkInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(PoolStrings(sw.DefaultAddrPool), req.Init.DefaultAddrPool) || sw.DataPathPort != 4800 || ing.Options[MTUOption] != "1400" {
		t.Errorf("early swarm: pool %v port %d ingress mtu %q", sw.DefaultAddrPool, sw.DataPathPort, ing.Options[MTUOption])
	}
	if out := l.reconcile(req); len(out.Warnings) > 0 {
		t.Errorf("the swarm pass reported: %v", out.Warnings)
	}
}
