package libvirt

import (
	"context"
	"errors"
	"fmt"

	lv "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// ensureNetwork returns the network, started when it was not.
func ensureNetwork(c *conn, name string) (lv.Network, error) {
	n, err := c.l.NetworkLookupByName(name)
	if err != nil {
		if isCode(err, lv.ErrNoNetwork) {
			return lv.Network{}, fmt.Errorf("libvirt network %q does not exist (virsh net-list --all; --libvirt-network)", name)
		}
		return lv.Network{}, lvErr("look up network "+name, err)
	}
	active, err := c.l.NetworkIsActive(n)
	if err != nil {
		return lv.Network{}, lvErr("network "+name, err)
	}
	if !isTrue(active) {
		if err := c.l.NetworkCreate(n); err != nil {
			return lv.Network{}, lvErr("start network "+name, err)
		}
	}
	if err := checkDHCP(c, n, name); err != nil {
		return lv.Network{}, err
	}
	return n, nil
}

// checkDHCP checks that the network hands out IPv4 addresses.
func checkDHCP(c *conn, n lv.Network, name string) error {
	x, err := c.l.NetworkGetXMLDesc(n, 0)
	if err != nil {
		return lvErr("network "+name, err)
	}
	ok, err := networkHasDHCP(x)
	if err == nil && !ok {
		err = errors.New("it has no IPv4 DHCP range: the machine could not get an address")
	}
	if err != nil {
		return fmt.Errorf("libvirt network %q: %w", name, err)
	}
	return nil
}

// waitLease waits for the network's DHCP lease of the machine's MAC.
func (d *Driver) waitLease(ctx context.Context, c *conn, network lv.Network, dom lv.Domain, st *machineState) (string, error) {
	for {
		if ip, err := leaseIP(c, network, st.MAC); err != nil {
			return "", err
		} else if ip != "" {
			return ip, nil
		}
		if state, _, err := c.l.DomainGetState(dom, 0); err == nil && lv.DomainState(state) != lv.DomainRunning && lv.DomainState(state) != lv.DomainBlocked {
			return "", d.bootError(st, fmt.Errorf("domain stopped while booting (state %s)", mapState(lv.DomainState(state))))
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return "", d.bootError(st, fmt.Errorf("waiting for a DHCP lease for %s on network %s: %w", st.MAC, st.Network, err))
		}
	}
}

// leaseIP returns the IPv4 address leased to mac, "" when none.
func leaseIP(c *conn, network lv.Network, mac string) (string, error) {
	leases, _, err := c.l.NetworkGetDhcpLeases(network, nil, 1, 0)
	if err != nil {
		return "", lvErr("DHCP leases", err)
	}
	var best lv.NetworkDhcpLease
	for _, l := range leases {
		if lv.IPAddrType(l.Type) == lv.IPAddrTypeIpv4 && len(l.Mac) > 0 && sameMAC(l.Mac[0], mac) && (best.Ipaddr == "" || l.Expirytime > best.Expirytime) {
			best = l
		}
	}
	return best.Ipaddr, nil
}

// reservationScopes are the network definitions a reservation is kept in:
// the running one (dnsmasq) and the persistent one (survives restarts).
func reservationScopes(c *conn, network lv.Network) ([]lv.NetworkUpdateFlags, error) {
	var scopes []lv.NetworkUpdateFlags
	active, err := c.l.NetworkIsActive(network)
	if err != nil {
		return nil, lvErr("network", err)
	}
	if isTrue(active) {
		scopes = append(scopes, lv.NetworkUpdateAffectLive)
	}
	persistent, err := c.l.NetworkIsPersistent(network)
	if err != nil {
		return nil, lvErr("network", err)
	}
	if isTrue(persistent) {
		scopes = append(scopes, lv.NetworkUpdateAffectConfig)
	}
	return scopes, nil
}

func scopeXML(c *conn, network lv.Network, scope lv.NetworkUpdateFlags) (string, error) {
	var flags lv.NetworkXMLFlags
	if scope == lv.NetworkUpdateAffectConfig {
		flags = lv.NetworkXMLInactive
	}
	x, err := c.l.NetworkGetXMLDesc(network, uint32(flags))
	if err != nil && flags != 0 {
		// Hypervisors without separate persistent definitions (the test
		// driver) refuse the flag: their one definition is both.
		x, err = c.l.NetworkGetXMLDesc(network, 0)
	}
	if err != nil {
		return "", lvErr("network XML", err)
	}
	return x, nil
}

// ensureReservation makes the network give ip to mac from now on, live and
// in its persistent definition: the machine keeps its address across
// restarts and lease expiry.
func ensureReservation(c *conn, network lv.Network, mac, ip string) error {
	scopes, err := reservationScopes(c, network)
	if err != nil {
		return err
	}
	want, err := dhcpHostXML(mac, ip)
	if err != nil {
		return err
	}
	for _, scope := range scopes {
		if err := reserveIn(c, network, scope, mac, ip, want); err != nil {
			return err
		}
	}
	return nil
}

// reserveIn makes the reservation of ip for mac (want, as XML) in one
// scope (live or persistent): other addresses reserved for mac go.
func reserveIn(c *conn, network lv.Network, scope lv.NetworkUpdateFlags, mac, ip, want string) error {
	x, err := scopeXML(c, network, scope)
	if err != nil {
		return err
	}
	hosts, err := reservationsFor(x, mac)
	if err != nil {
		return err
	}
	have := false
	for _, h := range hosts {
		if h.IP == ip {
			have = true
			continue
		}
		if err := deleteHost(c, network, h, scope); err != nil {
			return err
		}
	}
	if have {
		return nil
	}
	if err := c.l.NetworkUpdateCompat(network, lv.NetworkUpdateCommandAddLast, lv.NetworkSectionIPDhcpHost, -1, want, scope); err != nil {
		return lvErr(fmt.Sprintf("reserve %s for %s in the network", ip, mac), err)
	}
	return nil
}

func deleteHost(c *conn, network lv.Network, h libvirtxml.NetworkDHCPHost, scope lv.NetworkUpdateFlags) error {
	x, err := h.Marshal()
	if err != nil {
		return err
	}
	if err := c.l.NetworkUpdateCompat(network, lv.NetworkUpdateCommandDelete, lv.NetworkSectionIPDhcpHost, -1, x, scope); err != nil {
		return lvErr("delete DHCP reservation "+x, err)
	}
	return nil
}

// removeReservations deletes every DHCP host entry for mac.
func removeReservations(c *conn, network lv.Network, mac string) error {
	scopes, err := reservationScopes(c, network)
	if err != nil {
		return err
	}
	var errs []error
	for _, scope := range scopes {
		x, err := scopeXML(c, network, scope)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hosts, err := reservationsFor(x, mac)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, h := range hosts {
			errs = append(errs, deleteHost(c, network, h, scope))
		}
	}
	return errors.Join(errs...)
}

// removeReservation deletes the machine's DHCP reservations, if its
// network is still there.
func removeReservation(c *conn, st machineState) error {
	if st.MAC == "" {
		return nil
	}
	network, err := c.l.NetworkLookupByName(st.Network)
	if isCode(err, lv.ErrNoNetwork) {
		return nil
	}
	if err != nil {
		return lvErr("look up network "+st.Network, err)
	}
	return removeReservations(c, network, st.MAC)
}
