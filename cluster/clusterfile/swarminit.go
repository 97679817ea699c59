package clusterfile

import (
	"net/netip"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

// registryPort is the port the registry block asks for (5000 by default).
func registryPort(rb *registryBlock) int {
	if rb != nil && rb.Port != nil {
		return *rb.Port
	}
	return 5000
}

// swarmInitDiags checks the swarm block's init-only settings: the MTU an
// IPv6-capable link can carry up to jumbo frames, the VXLAN
// port must be a registered (non-ephemeral) port that no other swarm port
// uses, and each address pool an IPv4 network of /24 or larger (every
// overlay network gets a /24 of it) that overlaps no other pool.
func swarmInitDiags(sb *swarmBlock, regPort int) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if sb.DataPathPort != nil {
		diags = append(diags, dataPathPortDiags(*sb.DataPathPort, regPort, &sb.DataPathPortRange)...)
	}
	if sb.OverlayMTU != nil {
		if m := *sb.OverlayMTU; m < 1280 || m > 9000 {
			diags = append(diags, errAt(&sb.OverlayMTURange, "Invalid overlay_mtu", "overlay_mtu must be 1280 to 9000, not %d", m))
		}
	}
	return append(diags, poolDiags(sb.DefaultAddrPool, &sb.DefaultAddrPoolRange)...)
}

// dataPathPortDiags: the VXLAN port must be a registered port that swarm,
// the daemon's TLS and the registry do not take.
func dataPathPortDiags(p, regPort int, rng *hcl.Range) hcl.Diagnostics {
	switch {
	case p < 1024 || p > 49151:
		return hcl.Diagnostics{errAt(rng, "Invalid data_path_port", "data_path_port must be 1024 to 49151, not %d", p)}
	case slices.Contains([]int{2377, 7946, 2376, regPort}, p):
		return hcl.Diagnostics{errAt(rng, "Invalid data_path_port",
			"data_path_port %d is taken: swarm uses 2377/tcp and 7946/tcp+udp, the daemon's TLS 2376/tcp, the registry %d/tcp", p, regPort)}
	}
	return nil
}

// poolDiags: the address pools, if given, are some, each valid and apart
// from the others.
func poolDiags(pool []string, rng *hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if pool != nil && len(pool) == 0 {
		diags = append(diags, errAt(rng, "Invalid default_addr_pool", "default_addr_pool is empty: leave it out for Docker's 10.0.0.0/8"))
	}
	var pools []netip.Prefix
	for _, s := range pool {
		if d := poolDiag(s, pools); d != "" {
			diags = append(diags, errAt(rng, "Invalid default_addr_pool", "%s", d))
			continue
		}
		pools = append(pools, netip.MustParsePrefix(s))
	}
	return diags
}

// poolDiag says what is wrong with one pool given those before it ("" when
// nothing is).
func poolDiag(s string, before []netip.Prefix) string {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return "\"" + s + "\" is not a CIDR network (like 10.123.0.0/16)"
	case !p.Addr().Is4():
		return "\"" + s + "\": swarm's address pools are IPv4"
	case p.Masked() != p:
		return "\"" + s + "\" is not a network address: " + p.Masked().String() + "?"
	case p.Bits() > 24:
		return "\"" + s + "\" is smaller than a /24, the size of each overlay network's subnet"
	}
	for _, q := range before {
		if q.Overlaps(p) {
			return "\"" + s + "\" overlaps " + q.String()
		}
	}
	return ""
}
