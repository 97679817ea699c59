//go:build cgo && libvirt_dlopen

package libvirt

import (
	"context"
	"errors"
	"fmt"

	lv "libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"
)

// ensureNetwork returns the network, started when it was not.
func ensureNetwork(conn *lv.Connect, name string) (*lv.Network, error) {
	n, err := conn.LookupNetworkByName(name)
	if err != nil {
		if isCode(err, lv.ERR_NO_NETWORK) {
			return nil, fmt.Errorf("libvirt network %q does not exist (virsh net-list --all; --libvirt-network)", name)
		}
		return nil, lvErr("look up network "+name, err)
	}
	active, err := n.IsActive()
	if err != nil {
		n.Free()
		return nil, lvErr("network "+name, err)
	}
	if !active {
		if err := n.Create(); err != nil {
			n.Free()
			return nil, lvErr("start network "+name, err)
		}
	}
	x, err := n.GetXMLDesc(0)
	if err != nil {
		n.Free()
		return nil, lvErr("network "+name, err)
	}
	if ok, err := networkHasDHCP(x); err != nil || !ok {
		n.Free()
		if err == nil {
			err = errors.New("it has no IPv4 DHCP range: the machine could not get an address")
		}
		return nil, fmt.Errorf("libvirt network %q: %w", name, err)
	}
	return n, nil
}

// waitLease waits for the network's DHCP lease of the machine's MAC.
func (d *Driver) waitLease(ctx context.Context, network *lv.Network, dom *lv.Domain, st *machineState) (string, error) {
	for {
		if ip, err := leaseIP(network, st.MAC); err != nil {
			return "", err
		} else if ip != "" {
			return ip, nil
		}
		if state, _, err := dom.GetState(); err == nil && state != lv.DOMAIN_RUNNING && state != lv.DOMAIN_BLOCKED {
			return "", d.bootError(st, fmt.Errorf("domain stopped while booting (state %s)", mapState(state)))
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return "", d.bootError(st, fmt.Errorf("waiting for a DHCP lease for %s on network %s: %w", st.MAC, st.Network, err))
		}
	}
}

// leaseIP returns the IPv4 address leased to mac, "" when none.
func leaseIP(network *lv.Network, mac string) (string, error) {
	leases, err := network.GetDHCPLeases()
	if err != nil {
		return "", lvErr("DHCP leases", err)
	}
	var best lv.NetworkDHCPLease
	for _, l := range leases {
		if l.Type == lv.IP_ADDR_TYPE_IPV4 && sameMAC(l.Mac, mac) && (best.IPaddr == "" || l.ExpiryTime.After(best.ExpiryTime)) {
			best = l
		}
	}
	return best.IPaddr, nil
}

// reservationScopes are the network definitions a reservation is kept in:
// the running one (dnsmasq) and the persistent one (survives restarts).
func reservationScopes(network *lv.Network) ([]lv.NetworkUpdateFlags, error) {
	var scopes []lv.NetworkUpdateFlags
	active, err := network.IsActive()
	if err != nil {
		return nil, lvErr("network", err)
	}
	if active {
		scopes = append(scopes, lv.NETWORK_UPDATE_AFFECT_LIVE)
	}
	persistent, err := network.IsPersistent()
	if err != nil {
		return nil, lvErr("network", err)
	}
	if persistent {
		scopes = append(scopes, lv.NETWORK_UPDATE_AFFECT_CONFIG)
	}
	return scopes, nil
}

func scopeXML(network *lv.Network, scope lv.NetworkUpdateFlags) (string, error) {
	var flags lv.NetworkXMLFlags
	if scope == lv.NETWORK_UPDATE_AFFECT_CONFIG {
		flags = lv.NETWORK_XML_INACTIVE
	}
	x, err := network.GetXMLDesc(flags)
	if err != nil && flags != 0 {
		// Hypervisors without separate persistent definitions (the test
		// driver) refuse the flag: their one definition is both.
		x, err = network.GetXMLDesc(0)
	}
	if err != nil {
		return "", lvErr("network XML", err)
	}
	return x, nil
}

// ensureReservation makes the network give ip to mac from now on, live and
// in its persistent definition: the machine keeps its address across
// restarts and lease expiry.
func ensureReservation(network *lv.Network, mac, ip string) error {
	scopes, err := reservationScopes(network)
	if err != nil {
		return err
	}
	want, err := dhcpHostXML(mac, ip)
	if err != nil {
		return err
	}
	for _, scope := range scopes {
		x, err := scopeXML(network, scope)
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
			if err := deleteHost(network, h, scope); err != nil {
				return err
			}
		}
		if have {
			continue
		}
		if err := network.Update(lv.NETWORK_UPDATE_COMMAND_ADD_LAST, lv.NETWORK_SECTION_IP_DHCP_HOST, -1, want, scope); err != nil {
			return lvErr(fmt.Sprintf("reserve %s for %s in the network", ip, mac), err)
		}
	}
	return nil
}

func deleteHost(network *lv.Network, h libvirtxml.NetworkDHCPHost, scope lv.NetworkUpdateFlags) error {
	x, err := h.Marshal()
	if err != nil {
		return err
	}
	if err := network.Update(lv.NETWORK_UPDATE_COMMAND_DELETE, lv.NETWORK_SECTION_IP_DHCP_HOST, -1, x, scope); err != nil {
		return lvErr("delete DHCP reservation "+x, err)
	}
	return nil
}

// removeReservations deletes every DHCP host entry for mac.
func removeReservations(network *lv.Network, mac string) error {
	scopes, err := reservationScopes(network)
	if err != nil {
		return err
	}
	var errs []error
	for _, scope := range scopes {
		x, err := scopeXML(network, scope)
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
			errs = append(errs, deleteHost(network, h, scope))
		}
	}
	return errors.Join(errs...)
}

// removeReservation deletes the machine's DHCP reservations, if its
// network is still there.
func removeReservation(conn *lv.Connect, st machineState) error {
	if st.MAC == "" {
		return nil
	}
	network, err := conn.LookupNetworkByName(st.Network)
	if isCode(err, lv.ERR_NO_NETWORK) {
		return nil
	}
	if err != nil {
		return lvErr("look up network "+st.Network, err)
	}
	defer network.Free()
	return removeReservations(network, st.MAC)
}
