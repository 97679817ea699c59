package libvirt

import (
	"github.com/shoal-dev/shoal/internal/remote"

	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	lv "github.com/digitalocean/go-libvirt"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/driverutil"
)

// Driver manages one libvirt domain and its volumes. This file has its
// lifecycle (the drivers.Driver methods); the objects a machine is made of
// are each in a file of their own: domain.go (the domain, its start and
// removal), storage.go (the pool, the base volume, the overlay disk and the
// seed ISO), network.go (the network, leases and DHCP reservations), and
// connect.go (connections and libvirt's errors).
type Driver struct {
	m   drivers.Identity
	cfg Config
}

var _ drivers.Driver = (*Driver)(nil)

func newDriver(m drivers.Identity, cfg Config) (drivers.Driver, error) {
	return &Driver{m: m, cfg: cfg}, nil
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

// loadOrInitState returns the machine's state, with the names, MAC and
// instance ID chosen (and saved) on first use.
func (d *Driver) loadOrInitState() (machineState, error) {
	st, _, err := loadState(d.m.Dir)
	if err != nil {
		return st, err
	}
	changed := false
	set := func(field *string, v string) {
		if *field == "" {
			*field, changed = v, true
		}
	}
	set(&st.Domain, d.domainName())
	set(&st.Network, d.cfg.Network)
	set(&st.Pool, d.cfg.Pool)
	if st.MAC == "" {
		mac, err := randomMAC()
		if err != nil {
			return st, err
		}
		set(&st.MAC, mac)
	}
	if st.InstanceID == "" {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return st, fmt.Errorf("instance id: %w", err)
		}
		set(&st.InstanceID, "shoal-"+d.m.Name+"-"+hex.EncodeToString(b))
	}
	if changed {
		if err := saveState(d.m.Dir, st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// Create makes the machine's disk, seed, domain and address reservation,
// starts it and returns when SSH answers. Run again after an interruption,
// it finishes the job.
func (d *Driver) Create(ctx context.Context) error {
	// A cancelled run makes nothing (the caller removes only what a
	// successful Create made).
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := withDefaultTimeout(ctx, bootTimeout)
	defer cancel()
	if d.cfg.Image == "" {
		return errors.New("libvirt driver: --libvirt-image is required")
	}
	st, err := d.loadOrInitState()
	if err != nil {
		return err
	}
	hostKey, err := ensureHostKey(d.m.Dir)
	if err != nil {
		return err
	}
	st.HostKeyFP = hostKey.Fingerprint
	c, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer c.close()

	dom, found, err := d.lookupDomain(c, st)
	if err != nil {
		return err
	}
	// Made before: start it if needed and wait, as Start does.
	if !found {
		if dom, err = d.makeDomain(ctx, c, &st, hostKey); err != nil {
			return err
		}
	}
	return d.boot(ctx, c, dom, &st)
}

// makeDomain makes what the domain needs (its network checked, its
// volumes) and defines it.
func (d *Driver) makeDomain(ctx context.Context, c *conn, st *machineState, hostKey driverutil.HostKey) (lv.Domain, error) {
	if _, err := ensureNetwork(c, st.Network); err != nil {
		return lv.Domain{}, err
	}
	disks, err := d.ensureVolumes(ctx, c, st, hostKey)
	if err != nil {
		return lv.Domain{}, err
	}
	return d.defineDomain(ctx, c, st, disks)
}

// Start starts the stopped machine and returns when SSH answers.
func (d *Driver) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := withDefaultTimeout(ctx, bootTimeout)
	defer cancel()
	st, c, dom, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	return d.boot(ctx, c, dom, &st)
}

// open returns the state, a connection and the domain, which must exist.
func (d *Driver) open(ctx context.Context) (machineState, *conn, lv.Domain, error) {
	st, _, err := loadState(d.m.Dir)
	if err != nil {
		return st, nil, lv.Domain{}, err
	}
	c, err := d.connect(ctx)
	if err != nil {
		return st, nil, lv.Domain{}, err
	}
	dom, found, err := d.lookupDomain(c, st)
	if err == nil && !found {
		err = fmt.Errorf("machine %s: its libvirt domain does not exist (removed outside shoal?): remove the machine and create it again", d.m.Name)
	}
	if err != nil {
		c.close()
		return st, nil, lv.Domain{}, err
	}
	return st, c, dom, nil
}

// Stop presses the power button (ACPI) and waits for the guest to power
// off; one that has not after stopTimeout is destroyed.
func (d *Driver) Stop(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, stopTimeout+callTimeout)
	defer cancel()
	st, c, dom, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	deadline := time.Now().Add(stopTimeout)
	var pressed time.Time
	for {
		done, err := stopStep(c, dom, st.Domain, deadline, &pressed)
		if done || err != nil {
			return err
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return fmt.Errorf("machine %s: waiting for the guest to power off: %w", d.m.Name, err)
		}
	}
}

// stopStep is one look at a stopping domain: done once it is off (or
// destroyed, past deadline); else the power button is pressed again every
// shutdownResend (pressed: when last).
func stopStep(c *conn, dom lv.Domain, name string, deadline time.Time, pressed *time.Time) (bool, error) {
	state, _, err := c.l.DomainGetState(dom, 0)
	if err != nil {
		return false, lvErr("domain "+name, err)
	}
	if s := lv.DomainState(state); s == lv.DomainShutoff || s == lv.DomainCrashed {
		return true, nil
	}
	if time.Now().After(deadline) {
		if err := c.l.DomainDestroy(dom); err != nil && !isCode(err, lv.ErrOperationInvalid) {
			return false, lvErr("destroy domain "+name+" after the ACPI shutdown timed out", err)
		}
		return true, nil
	}
	if time.Since(*pressed) >= shutdownResend {
		// "domain is not running" races with the state read: ignored.
		if err := c.l.DomainShutdown(dom); err != nil && !isCode(err, lv.ErrOperationInvalid) {
			return false, lvErr("shut down domain "+name, err)
		}
		*pressed = time.Now()
	}
	return false, nil
}

// Kill powers the machine off at once.
func (d *Driver) Kill(ctx context.Context) error {
	st, c, dom, err := d.open(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.l.DomainDestroy(dom); err != nil && !isCode(err, lv.ErrOperationInvalid) {
		return lvErr("destroy domain "+st.Domain, err)
	}
	return nil
}

// Remove deletes the domain (and its NVRAM), the machine's disk and seed
// volumes and its DHCP reservation. The shared base volume stays. What is
// gone already is skipped, so Remove can be run again.
func (d *Driver) Remove(ctx context.Context) error {
	st, found, err := loadState(d.m.Dir)
	if err != nil {
		return err
	}
	if !found {
		return nil // Create never got as far as making anything
	}
	c, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	errs, err := d.removeOwnDomain(c, st)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	errs = append(errs, removeVolumes(c, st)...)
	errs = append(errs, removeReservation(c, st))
	if st.ConsoleLog != "" && isLocalURI(d.cfg.URI) {
		removeLogs(st)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("machine %s: %w", d.m.Name, err)
	}
	return removeFiles(d.m.Dir, StateFile, HostKeyFile, HostKeyPubFile)
}

// removeOwnDomain removes the machine's domain, if it is there and ours;
// errors that stop nothing else of Remove are returned in the list.
func (d *Driver) removeOwnDomain(c *conn, st machineState) ([]error, error) {
	dom, found, err := d.lookupDomain(c, st)
	var foreign *foreignDomainError
	switch {
	case errors.As(err, &foreign):
		// Not ours: left alone, the rest of the machine is still removed.
		return nil, nil
	case err != nil:
		return nil, err
	case found:
		return removeDomain(c, dom, st), nil
	}
	return nil, nil
}

// removeLogs removes the console's log and QEMU's own, which libvirt
// keeps beside it for an undefined domain: not worth failing rm for.
func removeLogs(st machineState) {
	_ = os.Remove(st.ConsoleLog)
	_ = os.Remove(filepath.Join(filepath.Dir(st.ConsoleLog), st.Domain+".log"))
}

// removeFiles removes the files of dir named; one already gone is fine.
func removeFiles(dir string, names ...string) error {
	for _, f := range names {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// lookupState is the state a domain lookup tells already: none for a
// domain that is missing or another's, unknown for a failed lookup;
// known is false when the domain is there to ask.
func lookupState(found bool, err error) (drivers.State, bool, error) {
	var foreign *foreignDomainError
	switch {
	case errors.As(err, &foreign):
		return drivers.NotFound, true, nil
	case err != nil:
		return drivers.Unknown, true, err
	case !found:
		return drivers.NotFound, true, nil
	}
	return "", false, nil
}

// State maps the domain's state.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	st, found, err := loadState(d.m.Dir)
	if err != nil {
		return drivers.Error, err
	}
	if !found || st.UUID == "" {
		return drivers.NotFound, nil
	}
	c, err := d.connect(ctx)
	if err != nil {
		return drivers.Unknown, err
	}
	defer c.close()
	dom, found, err := d.lookupDomain(c, st)
	if s, known, err := lookupState(found, err); known {
		return s, err
	}
	state, _, err := c.l.DomainGetState(dom, 0)
	if err != nil {
		return drivers.Unknown, lvErr("domain "+st.Domain, err)
	}
	return mapState(lv.DomainState(state)), nil
}

// leasedIP is the address the network leased to the machine (one with no
// reservation recorded yet).
func (d *Driver) leasedIP(ctx context.Context, st machineState) (string, error) {
	c, err := d.connect(ctx)
	if err != nil {
		return "", err
	}
	defer c.close()
	network, err := c.l.NetworkLookupByName(st.Network)
	if err != nil {
		return "", lvErr("look up network "+st.Network, err)
	}
	ip, err := leaseIP(c, network, st.MAC)
	if err == nil && ip == "" {
		err = fmt.Errorf("machine %s: no address yet (no DHCP lease for %s)", d.m.Name, st.MAC)
	}
	return ip, err
}

// SSH returns the machine's address (its reserved lease), the user made by
// cloud-init, the machine's key and the pinned host key.
func (d *Driver) SSH(ctx context.Context) (drivers.Endpoint, error) {
	st, found, err := loadState(d.m.Dir)
	if err != nil {
		return drivers.Endpoint{}, err
	}
	if !found || st.UUID == "" {
		return drivers.Endpoint{}, fmt.Errorf("machine %s: not created yet", d.m.Name)
	}
	ip := st.IP
	if ip == "" {
		if ip, err = d.leasedIP(ctx, st); err != nil {
			return drivers.Endpoint{}, err
		}
	}
	return drivers.Endpoint{
		Endpoint: remote.Endpoint{
			Host:               ip,
			Port:               22,
			User:               d.cfg.SSHUser,
			KeyPath:            d.m.PrivateKeyPath,
			HostKeyFingerprint: st.HostKeyFP,
		},
	}, nil
}
