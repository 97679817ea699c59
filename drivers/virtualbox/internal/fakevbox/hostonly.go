package fakevbox

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

// --- host-only networking ---------------------------------------------------

func (v *vbox) hostOnlyIfExists(name string) bool {
	for _, h := range v.s.HostOnlyIfs {
		if h.Name == name {
			return true
		}
	}
	return false
}

func (v *vbox) findHostOnlyNet(name string) *HostOnlyNet {
	for _, n := range v.s.HostOnlyNets {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// allowed reports whether VBoxNetAdpCtl lets a host-only interface have
// ip with mask, as src/VBox/HostDrivers/adpctl/VBoxNetAdpCtl.cpp decides
// (6.1.28 and later, Linux, macOS and Solaris): it reads
// /etc/vbox/networks.conf anew each time; without the file only
// 192.168.56.0/21 is allowed; with it, only the networks on its lines that
// start with "*", and a file without any allows nothing. An address
// matches a network when its prefix is at least the network's and it lies
// inside. Windows has no such check.
func (v *vbox) allowed(ip, mask string) bool {
	if v.s.Host.OS == "windows" {
		return true
	}
	addr := net.ParseIP(ip).To4()
	m := net.ParseIP(mask).To4()
	if addr == nil || m == nil {
		return false
	}
	prefix, _ := net.IPMask(m).Size()
	data, err := os.ReadFile(v.s.Host.NetworksConfFile)
	if v.s.Host.NetworksConfFile == "" || err != nil {
		// VBoxNetAdpCtl's default network is written 192.168.56.1/21.
		return matches(addr, prefix, "192.168.56.1/21")
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "*" {
			continue
		}
		for _, n := range fields[1:] {
			if matches(addr, prefix, n) {
				return true
			}
		}
	}
	return false
}

func matches(addr net.IP, prefix int, network string) bool {
	ip, n, err := net.ParseCIDR(network)
	if err != nil || ip.To4() == nil {
		return false
	}
	ones, _ := n.Mask.Size()
	return prefix >= ones && n.Contains(addr)
}

func (v *vbox) hostOnlyIf(args []string) {
	if len(args) == 0 {
		v.syntax("No sub-command specified")
		return
	}
	netflt := !v.vmnet()
	switch {
	case args[0] == "create" && netflt:
		n := 0
		for v.hostOnlyIfExists(fmt.Sprintf("vboxnet%d", n)) {
			n++
		}
		h := &HostOnlyIf{
			Name:    fmt.Sprintf("vboxnet%d", n),
			GUID:    fmt.Sprintf("786f6276-656e-4%03x-8000-0a00270000%02x", n, n),
			IP:      fmt.Sprintf("192.168.%d.1", 56+n),
			Netmask: "255.255.255.0",
			HWAddr:  fmt.Sprintf("0a:00:27:00:00:%02x", n),
		}
		v.s.HostOnlyIfs = append(v.s.HostOnlyIfs, h)
		io.WriteString(v.errw, progress)
		fmt.Fprintf(v.out, v.tr("Interface '%s' was successfully created\n"), h.Name)
	case args[0] == "remove" && netflt:
		if len(args) != 2 {
			v.syntax("No interface name was specified")
			return
		}
		kept := v.s.HostOnlyIfs[:0]
		found := false
		for _, h := range v.s.HostOnlyIfs {
			if h.Name == args[1] {
				found = true
				continue
			}
			kept = append(kept, h)
		}
		if !found {
			v.fail("The host network interface named '"+args[1]+"' could not be found",
				"Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component HostWrap, interface IHost, callee nsISupports")
			return
		}
		v.s.HostOnlyIfs = kept
		io.WriteString(v.errw, progress)
	case args[0] == "ipconfig":
		pos, opts, _ := options(args[1:], map[string]bool{"--ip": true, "--netmask": true, "--ipv6": true, "--netmasklengthv6": true})
		if len(pos) != 1 {
			v.syntax("No interface name was specified")
			return
		}
		var h *HostOnlyIf
		for _, x := range v.s.HostOnlyIfs {
			if x.Name == pos[0] {
				h = x
			}
		}
		if h == nil {
			v.fail("The host network interface named '"+pos[0]+"' could not be found",
				"Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component HostWrap, interface IHost, callee nsISupports",
				`Context: "FindHostNetworkInterfaceByName(Bstr(pszName).raw(), hif.asOutParam())" at line 236 of file VBoxManageHostonly.cpp`)
			return
		}
		ip, mask := opts["--ip"], opts["--netmask"]
		if mask == "" {
			mask = "255.255.255.0"
		}
		if !v.allowed(ip, mask) {
			v.fail("Code E_ACCESSDENIED (0x80070005) - Access denied (extended info not available)",
				`Context: "EnableStaticIPConfig(Bstr(pszIp).raw(), Bstr(pszNetmask).raw())" at line 242 of file VBoxManageHostonly.cpp`)
			return
		}
		h.IP, h.Netmask = ip, mask
	default:
		v.syntax("Unknown sub-command '%s'", args[0])
	}
}

func (v *vbox) hostOnlyNet(args []string) {
	if len(args) == 0 {
		v.syntax("No sub-command specified")
		return
	}
	_, opts, _ := options(args[1:], map[string]bool{"--name": true, "--id": true, "--netmask": true, "--lower-ip": true, "--lowerip": true, "--upper-ip": true, "--upperip": true})
	name := opts["--name"]
	switch args[0] {
	case "add":
		lower, upper := opts["--lower-ip"]+opts["--lowerip"], opts["--upper-ip"]+opts["--upperip"]
		for _, missing := range []struct{ v, opt string }{{name, "--name"}, {opts["--netmask"], "--netmask"}, {lower, "--lower-ip"}, {upper, "--upper-ip"}} {
			if missing.v == "" {
				v.fail("The " + missing.opt + " parameter must be specified")
				return
			}
		}
		if v.findHostOnlyNet(name) != nil {
			v.fail("Host-only network '"+name+"' already exists",
				"Details: code E_INVALIDARG (0x80070057), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports",
				`Context: "CreateHostOnlyNetwork(options.bstrNetworkName.raw(), hostOnlyNetwork.asOutParam())" at line 395 of file VBoxManageHostonly.cpp`)
			return
		}
		_, en := opts["--enable"]
		v.s.HostOnlyNets = append(v.s.HostOnlyNets, &HostOnlyNet{Name: name, GUID: v.s.newUUID(), Enabled: en, Netmask: opts["--netmask"], LowerIP: lower, UpperIP: upper})
	case "remove":
		kept := v.s.HostOnlyNets[:0]
		for _, n := range v.s.HostOnlyNets {
			if n.Name != name {
				kept = append(kept, n)
			}
		}
		v.s.HostOnlyNets = kept
	default:
		v.syntax("Unknown sub-command '%s'", args[0])
	}
}
