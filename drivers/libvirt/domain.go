package libvirt

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	lv "github.com/digitalocean/go-libvirt"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/driverutil"
)

// domainName is the libvirt domain of the machine.
func (d *Driver) domainName() string { return d.m.Name }

// lookupDomain returns the machine's domain, found false when there is
// none. A domain of the machine's name that shoal did not make for this
// machine is an error: it is never touched.
func (d *Driver) lookupDomain(c *conn, st machineState) (lv.Domain, bool, error) {
	name := st.Domain
	if name == "" {
		name = d.domainName()
	}
	dom, err := c.l.DomainLookupByName(name)
	if isCode(err, lv.ErrNoDomain) {
		return lv.Domain{}, false, nil
	}
	if err != nil {
		return lv.Domain{}, false, lvErr("look up domain "+name, err)
	}
	if st.UUID == "" || !strings.EqualFold(uuidString(dom.UUID), st.UUID) {
		return lv.Domain{}, false, &foreignDomainError{name: name, dir: d.m.Dir}
	}
	return dom, true, nil
}

type foreignDomainError struct{ name, dir string }

func (e *foreignDomainError) Error() string {
	return fmt.Sprintf("a libvirt domain named %q exists that shoal did not make for machine folder %s: choose another machine name, or remove that domain (virsh undefine %s)", e.name, e.dir, e.name)
}

// defineDomain defines the machine's domain on its disks, of the type
// "auto" chooses here, and records its UUID: from then on the domain is
// known to be this machine's.
func (d *Driver) defineDomain(ctx context.Context, c *conn, st *machineState, disks domainDisks) (lv.Domain, error) {
	caps, err := c.l.ConnectGetCapabilities()
	if err != nil {
		return lv.Domain{}, lvErr("libvirt capabilities", err)
	}
	hasKVM, err := capsHaveKVM(caps)
	if err != nil {
		return lv.Domain{}, err
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
		return lv.Domain{}, fmt.Errorf("domain XML: %w", err)
	}
	dom, err := c.l.DomainDefineXML(xmlDoc)
	if err != nil {
		return lv.Domain{}, lvErr("define domain "+st.Domain, err)
	}
	st.UUID = uuidString(dom.UUID)
	if err := saveState(d.m.Dir, *st); err != nil {
		return lv.Domain{}, err
	}
	return dom, nil
}

// boot starts the domain unless it runs, waits for its DHCP lease, makes
// the lease a reservation, and waits for SSH.
func (d *Driver) boot(ctx context.Context, c *conn, dom lv.Domain, st *machineState) error {
	active, err := c.l.DomainIsActive(dom)
	if err != nil {
		return lvErr("domain "+st.Domain, err)
	}
	if !isTrue(active) {
		if err := c.l.DomainCreate(dom); err != nil {
			return lvErr("start domain "+st.Domain, err)
		}
	}
	network, err := ensureNetwork(c, st.Network)
	if err != nil {
		return err
	}
	ip, err := d.waitLease(ctx, c, network, dom, st)
	if err != nil {
		return err
	}
	if err := ensureReservation(c, network, st.MAC, ip); err != nil {
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
func removeDomain(c *conn, dom lv.Domain, st machineState) []error {
	var errs []error
	if err := c.l.DomainDestroy(dom); err != nil && !isCode(err, lv.ErrOperationInvalid) {
		errs = append(errs, lvErr("destroy domain "+st.Domain, err))
	}
	flags := lv.DomainUndefineNvram | lv.DomainUndefineManagedSave | lv.DomainUndefineSnapshotsMetadata | lv.DomainUndefineCheckpointsMetadata
	if err := c.l.DomainUndefineFlags(dom, flags); err != nil {
		// Hypervisors without some of these features refuse the flags.
		if err2 := c.l.DomainUndefine(dom); err2 != nil {
			errs = append(errs, lvErr("undefine domain "+st.Domain, err))
		}
	}
	return errs
}

// mapState maps libvirt's domain states onto the drivers' states.
func mapState(s lv.DomainState) drivers.State {
	switch s {
	case lv.DomainRunning, lv.DomainBlocked:
		return drivers.Running
	case lv.DomainPaused, lv.DomainPmsuspended:
		return drivers.Paused
	case lv.DomainShutdown:
		return drivers.Stopping
	case lv.DomainShutoff:
		return drivers.Stopped
	case lv.DomainCrashed:
		return drivers.Error
	default:
		return drivers.Unknown
	}
}
