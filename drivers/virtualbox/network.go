package virtualbox

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// defaultAllowed is the range VirtualBox 6.1.28+ allows for host-only
// interfaces on Linux, macOS and Solaris when /etc/vbox/networks.conf does
// not exist.
const defaultAllowed = "192.168.56.0/21"

// Where machines' fixed addresses start: .2-.9 are left to the host and to
// the DHCP range of a host-only network shoal creates.
const poolOffset = 10

// hostOnlyNet is the host-only network as the config gives it: the host's
// address on it and the network.
type hostOnlyNetwork struct {
	Host net.IP // the host's side, e.g. 192.168.56.1
	Net  *net.IPNet
}

// parseHostOnlyCIDR reads --virtualbox-hostonly-cidr: the host's address
// with the prefix (192.168.56.1/24). A network address (192.168.56.0/24)
// means its first address for the host.
func parseHostOnlyCIDR(s string) (hostOnlyNetwork, error) {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return hostOnlyNetwork{}, fmt.Errorf("--virtualbox-hostonly-cidr %q: %w", s, err)
	}
	ip4 := ip.To4()
	if ip4 == nil {
		return hostOnlyNetwork{}, fmt.Errorf("--virtualbox-hostonly-cidr %q: not an IPv4 network", s)
	}
	ones, bits := n.Mask.Size()
	if ones < 8 || ones > 28 || bits != 32 {
		return hostOnlyNetwork{}, fmt.Errorf("--virtualbox-hostonly-cidr %q: the prefix must be between /8 and /28", s)
	}
	if ip4.Equal(n.IP.To4()) {
		ip4 = addIP(n.IP, 1)
	}
	if ip4.Equal(broadcast(n)) {
		return hostOnlyNetwork{}, fmt.Errorf("--virtualbox-hostonly-cidr %q: the host's address is the broadcast address", s)
	}
	return hostOnlyNetwork{Host: ip4, Net: &net.IPNet{IP: n.IP.To4(), Mask: n.Mask}}, nil
}

func (h hostOnlyNetwork) prefix() int {
	ones, _ := h.Net.Mask.Size()
	return ones
}

func (h hostOnlyNetwork) netmask() string { return net.IP(h.Net.Mask).String() }

// String is the network, e.g. 192.168.56.0/24.
func (h hostOnlyNetwork) String() string { return h.Net.String() }

// pool is the range machines' addresses are taken from.
func (h hostOnlyNetwork) pool() (first, last net.IP) {
	return addIP(h.Net.IP, poolOffset), addIP(broadcast(h.Net), -1)
}

// checkAddress tells why ip cannot be a machine's address on h.
func (h hostOnlyNetwork) checkAddress(ip net.IP) error {
	ip = ip.To4()
	switch {
	case ip == nil:
		return errors.New("not an IPv4 address")
	case !h.Net.Contains(ip):
		return fmt.Errorf("not in the host-only network %s", h)
	case ip.Equal(h.Net.IP):
		return errors.New("it is the network's address")
	case ip.Equal(broadcast(h.Net)):
		return errors.New("it is the broadcast address")
	case ip.Equal(h.Host):
		return errors.New("it is the host's address on the network")
	}
	return nil
}

func addIP(ip net.IP, n int) net.IP {
	v := binary.BigEndian.Uint32(ip.To4())
	out := make(net.IP, 4)
	binary.BigEndian.PutUint32(out, uint32(int64(v)+int64(n)))
	return out
}

func broadcast(n *net.IPNet) net.IP {
	ip := n.IP.To4()
	out := make(net.IP, 4)
	for i := range out {
		out[i] = ip[i] | ^n.Mask[len(n.Mask)-4+i]
	}
	return out
}

func within(inner, outer *net.IPNet) bool {
	io, _ := inner.Mask.Size()
	oo, _ := outer.Mask.Size()
	return io >= oo && outer.Contains(inner.IP)
}

// networksConf is /etc/vbox/networks.conf as it reads now. VirtualBox's
// helper VBoxNetAdpCtl reads it at every address change of a host-only
// interface (`hostonlyif ipconfig`), so what it says now is what VirtualBox
// will decide: no restart is involved.
type networksConf struct {
	Path    string
	Exists  bool
	Ranges  []*net.IPNet // the networks of its "*" lines
	ReadErr error        // it exists but shoal cannot read it
}

func readNetworksConf(path string) networksConf {
	c := networksConf{Path: path}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c
	case err != nil:
		c.Exists, c.ReadErr = true, err
		return c
	}
	c.Exists = true
	c.Ranges = parseNetworksConf(string(data))
	return c
}

// parseNetworksConf reads networks.conf as VBoxNetAdpCtl does: only lines
// whose first word is "*" count, each word after it is a network in CIDR
// form; other lines and words that are no IPv4 network are skipped.
func parseNetworksConf(data string) []*net.IPNet {
	var nets []*net.IPNet
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "*" {
			continue
		}
		for _, f := range fields[1:] {
			if ip, n, err := net.ParseCIDR(f); err == nil && ip.To4() != nil {
				nets = append(nets, n)
			}
		}
	}
	return nets
}

// allowed returns the networks VirtualBox allows host-only addresses in:
// 192.168.56.0/21 without the file, exactly the file's "*" networks with it
// (a file without any allows nothing).
func (c networksConf) allowed() []*net.IPNet {
	if !c.Exists {
		_, def, _ := net.ParseCIDR(defaultAllowed)
		return []*net.IPNet{def}
	}
	return c.Ranges
}

// allows applies VBoxNetAdpCtl's rule: the address's prefix is at least the
// allowed network's and the address lies in it.
func (c networksConf) allows(h hostOnlyNetwork) bool {
	for _, n := range c.allowed() {
		if within(h.Net, n) {
			return true
		}
	}
	return false
}

// checkAllowedRange fails when VirtualBox will refuse the network, so that
// the user gets the remedy before anything is made. Only host-only
// interfaces on Linux, macOS (VirtualBox 6.1) and Solaris are checked:
// Windows has no such rule, and VirtualBox 7's host-only networks on macOS
// (vmnet, hostonlynet) are never checked against networks.conf. A file
// shoal cannot read is left to VirtualBox to judge.
func checkAllowedRange(h hostOnlyNetwork, goos string, vmnet bool, c networksConf) error {
	if goos == "windows" || vmnet || c.ReadErr != nil || c.allows(h) {
		return nil
	}
	return rangeRefused(h, c)
}

// describe says what networks.conf allows now.
func (c networksConf) describe() string {
	switch {
	case c.ReadErr != nil:
		return fmt.Sprintf("shoal cannot read %s (%v)", c.Path, c.ReadErr)
	case !c.Exists:
		return fmt.Sprintf("%s does not exist, so VirtualBox allows only %s", c.Path, defaultAllowed)
	case len(c.Ranges) == 0:
		return fmt.Sprintf("%s exists but has no \"*\" line with a network, so VirtualBox allows no host-only address at all (the default %s no longer applies once the file exists)", c.Path, defaultAllowed)
	}
	var rs []string
	for _, r := range c.Ranges {
		rs = append(rs, r.String())
	}
	return fmt.Sprintf("%s allows only %s", c.Path, strings.Join(rs, " "))
}

func rangeRefused(h hostOnlyNetwork, c networksConf) error {
	add := "* " + h.String()
	if !c.Exists {
		// Creating the file drops the built-in default: keep it listed.
		add = "* " + defaultAllowed + " " + h.String()
	}
	return fmt.Errorf("%w: host-only network %s is not allowed: %s. Add the line %q to %s (as root; VirtualBox reads it at every change, no restart needed), or choose a --virtualbox-hostonly-cidr it allows",
		ErrRangeRefused, h, c.describe(), add, c.Path)
}

// refusedAfterCheck is VirtualBox's E_ACCESSDENIED for an address the
// pre-check let through: the file changed meanwhile, or shoal could not
// read it. What the file says now is reported.
func refusedAfterCheck(h hostOnlyNetwork, c networksConf, ce *CommandError) error {
	return fmt.Errorf("%w: VirtualBox refused host-only address %s/%d (%s): its helper VBoxNetAdpCtl reads %s at that moment and did not find the network allowed; now %s",
		ErrRangeRefused, h.Host, h.prefix(), errorLines(ce.Stderr, 1), c.Path, c.describe())
}

// adapter is where NIC 2 is attached.
type adapter struct {
	// Kind is "hostonly" (a host-only interface, vboxnetN) or
	// "hostonlynet" (a VirtualBox 7 host-only network, macOS).
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// ensureHostOnly finds or makes the host-only interface (or, on VirtualBox
// 7 where interfaces are gone, the host-only network) for h.
func (d *Driver) ensureHostOnly(ctx context.Context, v *vboxCmd, h hostOnlyNetwork) (adapter, error) {
	if err := d.mgr.network.Lock(ctx); err != nil {
		return adapter{}, err
	}
	defer d.mgr.network.Unlock()
	if v.modern() {
		out, err := d.mgr.run(ctx, v, "list", "hostonlynets")
		if err == nil {
			// vmnet's networks are not subject to networks.conf.
			return d.ensureHostOnlyNet(ctx, v, h, out)
		}
		// Only VirtualBox 7 on macOS (vmnet) has host-only networks;
		// elsewhere 7.x still has interfaces and calls this a syntax error.
		if ce, ok := asCommandError(err); !ok || !ce.syntax() {
			return adapter{}, err
		}
	}
	return d.ensureHostOnlyIf(ctx, v, h)
}

func (d *Driver) ensureHostOnlyIf(ctx context.Context, v *vboxCmd, h hostOnlyNetwork) (adapter, error) {
	out, err := d.mgr.run(ctx, v, "list", "hostonlyifs")
	if err != nil {
		return adapter{}, err
	}
	before := parseHostOnlyIfs(out)
	if name, ok := hostOnlyIfOf(before, h); ok {
		return adapter{Kind: "hostonly", Name: name}, nil
	}
	// Before anything is made: would VirtualBox take the address?
	if err := checkAllowedRange(h, d.mgr.opts.goos, false, readNetworksConf(d.mgr.opts.networksConf)); err != nil {
		return adapter{}, err
	}
	out, err = d.mgr.run(ctx, v, "hostonlyif", "create")
	if err != nil {
		return adapter{}, err
	}
	// The new interface is the one the list did not have: its name is
	// never translated, the "was successfully created" sentence may be.
	list, err := d.mgr.run(ctx, v, "list", "hostonlyifs")
	if err != nil {
		return adapter{}, err
	}
	name, err := newInterface(before, parseHostOnlyIfs(list), out)
	if err != nil {
		return adapter{}, err
	}
	if err := d.configureHostOnlyIf(ctx, v, name, h); err != nil {
		return adapter{}, err
	}
	return adapter{Kind: "hostonly", Name: name}, nil
}

// hostOnlyIfOf names the interface that has h's host address, if any.
func hostOnlyIfOf(ifs []hostOnlyIf, h hostOnlyNetwork) (string, bool) {
	for _, i := range ifs {
		if i.IP == h.Host.String() && i.Netmask == h.netmask() {
			return i.Name, true
		}
	}
	return "", false
}

// configureHostOnlyIf gives the new interface name h's host address; one
// that cannot take it is removed, leaving no half-made interface behind.
func (d *Driver) configureHostOnlyIf(ctx context.Context, v *vboxCmd, name string, h hostOnlyNetwork) error {
	_, err := d.mgr.run(ctx, v, "hostonlyif", "ipconfig", name, "--ip", h.Host.String(), "--netmask", h.netmask())
	if err == nil {
		return nil
	}
	_, _ = d.mgr.run(context.WithoutCancel(ctx), v, "hostonlyif", "remove", name)
	if ce, ok := asCommandError(err); ok && ce.accessDenied() && d.mgr.opts.goos != "windows" {
		return refusedAfterCheck(h, readNetworksConf(d.mgr.opts.networksConf), ce)
	}
	return err
}

func (d *Driver) ensureHostOnlyNet(ctx context.Context, v *vboxCmd, h hostOnlyNetwork, list string) (adapter, error) {
	for _, n := range parseHostOnlyNets(list) {
		lower := net.ParseIP(n.LowerIP)
		if lower != nil && h.Net.Contains(lower) && n.Netmask == h.netmask() {
			return adapter{Kind: "hostonlynet", Name: n.Name}, nil
		}
	}
	// vmnet takes the lower address for the host (the gateway) and hands
	// out the rest up to the upper one by DHCP: keep that below the pool.
	upper := addIP(h.Net.IP, poolOffset-1)
	if !h.Host.Equal(addIP(h.Net.IP, 1)) {
		upper = h.Host
	}
	name := fmt.Sprintf("shoal-%s-%d", h.Net.IP, h.prefix())
	_, err := d.mgr.run(ctx, v, "hostonlynet", "add", "--name="+name, "--netmask="+h.netmask(),
		"--lower-ip="+h.Host.String(), "--upper-ip="+upper.String(), "--enable")
	if err != nil {
		return adapter{}, err
	}
	return adapter{Kind: "hostonlynet", Name: name}, nil
}

// newInterface names the interface `hostonlyif create` made: the one in
// after that was not in before; failing that, the name its output gives.
func newInterface(before, after []hostOnlyIf, out string) (string, error) {
	had := map[string]bool{}
	for _, i := range before {
		had[i.Name] = true
	}
	var added []string
	for _, i := range after {
		if !had[i.Name] {
			added = append(added, i.Name)
		}
	}
	if len(added) == 1 {
		return added[0], nil
	}
	return parseCreatedInterface(out)
}

// siblings reads the state of the other VirtualBox machines of the store
// (the folders next to this machine's): the addresses and ports they hold.
func (d *Driver) siblings() (ips map[string]string, ports map[int]string) {
	ips, ports = map[string]string{}, map[int]string{}
	root := filepath.Dir(d.m.Dir)
	entries, err := os.ReadDir(root)
	if err != nil {
		return ips, ports
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || dir == filepath.Clean(d.m.Dir) {
			continue
		}
		if st, err := loadState(dir); err == nil && st != nil {
			st.noteTaken(e.Name(), ips, ports)
		}
	}
	return ips, ports
}

// noteTaken notes the address and port that machine name holds.
func (st *machineState) noteTaken(name string, ips map[string]string, ports map[int]string) {
	if st.HostOnlyIP != "" {
		ips[st.HostOnlyIP] = name
	}
	if st.SSHPort != 0 {
		ports[st.SSHPort] = name
	}
}

// pickAddress returns the configured address if no other machine has it,
// else the first free one of the pool.
func (d *Driver) pickAddress(h hostOnlyNetwork, taken map[string]string) (net.IP, error) {
	if d.cfg.HostOnlyIP != "" {
		return d.configuredAddress(h, taken)
	}
	first, last := h.pool()
	for ip := first; binary.BigEndian.Uint32(ip) <= binary.BigEndian.Uint32(last); ip = addIP(ip, 1) {
		if _, used := taken[ip.String()]; !used && !ip.Equal(h.Host) {
			return ip, nil
		}
	}
	return nil, fmt.Errorf("no free address left in host-only network %s (from %s to %s): remove a machine or choose another --virtualbox-hostonly-cidr", h, first, last)
}

// configuredAddress is --virtualbox-hostonly-ip, once checked to be in h
// and no other machine's.
func (d *Driver) configuredAddress(h hostOnlyNetwork, taken map[string]string) (net.IP, error) {
	ip := net.ParseIP(d.cfg.HostOnlyIP)
	if err := h.checkAddress(ip); err != nil {
		return nil, fmt.Errorf("--virtualbox-hostonly-ip %s: %w", d.cfg.HostOnlyIP, err)
	}
	if other, ok := taken[ip.String()]; ok {
		return nil, fmt.Errorf("--virtualbox-hostonly-ip %s: machine %q already has this address", ip, other)
	}
	return ip.To4(), nil
}

// pickPort returns a free local port no other machine forwards.
func (d *Driver) pickPort(taken map[int]string) (int, error) {
	for i := 0; i < 20; i++ {
		p, err := d.mgr.opts.freePort()
		if err != nil {
			return 0, fmt.Errorf("pick a local port for SSH: %w", err)
		}
		if _, used := taken[p]; !used {
			return p, nil
		}
	}
	return 0, errors.New("pick a local port for SSH: every port tried is forwarded to another machine")
}

// freeLocalPort asks the kernel for a free port on 127.0.0.1.
func freeLocalPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newMAC returns a random MAC in VirtualBox's 08:00:27 range, as modifyvm
// takes it (12 hex digits).
func newMAC() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return fmt.Sprintf("080027%02X%02X%02X", b[0], b[1], b[2]), nil
}

// colonMAC writes 080027AABBCC as 08:00:27:aa:bb:cc, as the guest sees it.
func colonMAC(m string) string {
	m = strings.ToLower(m)
	if len(m) != 12 {
		return m
	}
	parts := make([]string, 6)
	for i := range parts {
		parts[i] = m[2*i : 2*i+2]
	}
	return strings.Join(parts, ":")
}

// allocLock is a lock file beside the machines' folders, so that two shoal
// processes creating machines at once do not pick the same address. A lock
// older than staleLock was left by a process that died.
const (
	allocLockFile = ".virtualbox-alloc.lock"
	staleLock     = 2 * time.Minute
)

func (d *Driver) lockAllocation(ctx context.Context) (unlock func(), err error) {
	if err := d.mgr.alloc.Lock(ctx); err != nil {
		return nil, err
	}
	path := filepath.Join(filepath.Dir(d.m.Dir), allocLockFile)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(path); d.mgr.alloc.Unlock() }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			d.mgr.alloc.Unlock()
			return nil, fmt.Errorf("address lock %s: %w", path, err)
		}
		if st, serr := os.Stat(path); serr == nil && time.Since(st.ModTime()) > staleLock {
			os.Remove(path)
			continue
		}
		select {
		case <-ctx.Done():
			d.mgr.alloc.Unlock()
			return nil, fmt.Errorf("waiting for another shoal process to pick its machine's address (%s): %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
