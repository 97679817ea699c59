//go:build cgo && libvirt_dlopen

package libvirt

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/driverutil"
	lv "libvirt.org/go/libvirt"
)

// domainName is the libvirt domain of the machine.
func (d *Driver) domainName() string { return d.m.Name }

// lookupDomain returns the machine's domain, nil when there is none. A
// domain of the machine's name that shoal did not make for this machine is
// an error: it is never touched.
func (d *Driver) lookupDomain(conn *lv.Connect, st machineState) (*lv.Domain, error) {
	name := st.Domain
	if name == "" {
		name = d.domainName()
	}
	dom, err := conn.LookupDomainByName(name)
	if isCode(err, lv.ERR_NO_DOMAIN) {
		return nil, nil
	}
	if err != nil {
		return nil, lvErr("look up domain "+name, err)
	}
	uuid, err := dom.GetUUIDString()
	if err != nil {
		dom.Free()
		return nil, lvErr("domain "+name, err)
	}
	if st.UUID == "" || !strings.EqualFold(uuid, st.UUID) {
		dom.Free()
		return nil, &foreignDomainError{name: name, dir: d.m.Dir}
	}
	return dom, nil
}

type foreignDomainError struct{ name, dir string }

func (e *foreignDomainError) Error() string {
	return fmt.Sprintf("a libvirt domain named %q exists that shoal did not make for machine folder %s: choose another machine name, or remove that domain (virsh undefine %s)", e.name, e.dir, e.name)
}

// defineDomain defines the machine's domain on its disks, of the type
// "auto" chooses here, and records its UUID: from then on the domain is
// known to be this machine's.
func (d *Driver) defineDomain(ctx context.Context, conn *lv.Connect, st *machineState, disks domainDisks) (*lv.Domain, error) {
	caps, err := conn.GetCapabilities()
	if err != nil {
		return nil, lvErr("libvirt capabilities", err)
	}
	hasKVM, err := capsHaveKVM(caps)
	if err != nil {
		return nil, err
	}
	st.DomainType, _ = chooseDomainType(ctx, d.cfg.DomainType, hasKVM, isLocalURI(d.cfg.URI))
	if d.cfg.URI == DefaultURI {
		st.ConsoleLog = filepath.Join("/var/log/libvirt/qemu", st.Domain+"-serial.log")
	}
	spec := domainSpec{
		Name:       st.Domain,
		Type:       st.DomainType,
		MemoryMiB:  d.cfg.Memory,
		CPUs:       d.cfg.CPUs,
		DiskPath:   disks.Disk,
		BasePath:   disks.Base,
		BaseFormat: disks.BaseFormat,
		SeedPath:   disks.Seed,
		Network:    st.Network,
		MAC:        st.MAC,
		ConsoleLog: st.ConsoleLog,
		MachineDir: d.m.Dir,
	}
	xmlDoc, err := domainXML(spec).Marshal()
	if err != nil {
		return nil, fmt.Errorf("domain XML: %w", err)
	}
	dom, err := conn.DomainDefineXML(xmlDoc)
	if err != nil {
		return nil, lvErr("define domain "+st.Domain, err)
	}
	if st.UUID, err = dom.GetUUIDString(); err != nil {
		dom.Free()
		return nil, lvErr("domain "+st.Domain, err)
	}
	if err := saveState(d.m.Dir, *st); err != nil {
		dom.Free()
		return nil, err
	}
	return dom, nil
}

// boot starts the domain unless it runs, waits for its DHCP lease, makes
// the lease a reservation, and waits for SSH.
func (d *Driver) boot(ctx context.Context, conn *lv.Connect, dom *lv.Domain, st *machineState) error {
	active, err := dom.IsActive()
	if err != nil {
		return lvErr("domain "+st.Domain, err)
	}
	if !active {
		if err := dom.Create(); err != nil {
			return lvErr("start domain "+st.Domain, err)
		}
	}
	network, err := ensureNetwork(conn, st.Network)
	if err != nil {
		return err
	}
	defer network.Free()
	ip, err := d.waitLease(ctx, network, dom, st)
	if err != nil {
		return err
	}
	if err := ensureReservation(network, st.MAC, ip); err != nil {
		return err
	}
	st.IP, st.Reserved = ip, ip
	if err := saveState(d.m.Dir, *st); err != nil {
		return err
	}
	if err := driverutil.WaitSSH(ctx, net.JoinHostPort(ip, "22"), bootTimeout); err != nil {
		return d.bootError(st, err)
	}
	return nil
}

// bootError adds where to look when a guest does not come up.
func (d *Driver) bootError(st *machineState, err error) error {
	if st.ConsoleLog != "" {
		return fmt.Errorf("machine %s: %w (the guest's console is in %s)", d.m.Name, err, st.ConsoleLog)
	}
	return fmt.Errorf("machine %s: %w (virsh console %s shows the guest's console)", d.m.Name, err, st.Domain)
}

// removeDomain destroys and undefines the domain, with its NVRAM and what
// libvirt keeps beside it.
func removeDomain(dom *lv.Domain, st machineState) []error {
	var errs []error
	if err := dom.Destroy(); err != nil && !isCode(err, lv.ERR_OPERATION_INVALID) {
		errs = append(errs, lvErr("destroy domain "+st.Domain, err))
	}
	flags := lv.DOMAIN_UNDEFINE_NVRAM | lv.DOMAIN_UNDEFINE_MANAGED_SAVE | lv.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | lv.DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
	if err := dom.UndefineFlags(flags); err != nil {
		// Hypervisors without some of these features refuse the flags.
		if err2 := dom.Undefine(); err2 != nil {
			errs = append(errs, lvErr("undefine domain "+st.Domain, err))
		}
	}
	return errs
}

// mapState maps libvirt's domain states onto the drivers' states.
func mapState(s lv.DomainState) drivers.State {
	switch s {
	case lv.DOMAIN_RUNNING, lv.DOMAIN_BLOCKED:
		return drivers.Running
	case lv.DOMAIN_PAUSED, lv.DOMAIN_PMSUSPENDED:
		return drivers.Paused
	case lv.DOMAIN_SHUTDOWN:
		return drivers.Stopping
	case lv.DOMAIN_SHUTOFF:
		return drivers.Stopped
	case lv.DOMAIN_CRASHED:
		return drivers.Error
	default:
		return drivers.Unknown
	}
}
