package virtualbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/drivers/driverutil"
	"github.com/shoal-dev/shoal/internal/cloudinit"
	"github.com/shoal-dev/shoal/internal/fsutil"
)

// Create makes the VM and returns when it answers SSH. On a machine already
// made it only starts it; the leftover of an interrupted Create is removed
// and made again.
func (d *Driver) Create(ctx context.Context) error {
	// VBoxManage first: without VirtualBox, fail before anything is made.
	v, err := d.mgr.vbox(ctx, d.cfg.VBoxManage)
	if err != nil {
		return d.errorf("create", err)
	}
	st, err := loadState(d.m.Dir)
	if err != nil {
		return d.errorf("create", err)
	}
	info, err := d.info(ctx, v)
	if err != nil {
		return d.errorf("create: look for the VM", err)
	}
	if info != nil {
		return d.createOver(ctx, v, info, st)
	}
	if st != nil && st.Complete && st.CfgFile != "" {
		if _, err := os.Stat(st.CfgFile); err == nil {
			return d.registerAgain(ctx, v, st)
		}
	}
	return d.create(ctx, v)
}

// createOver handles a VM VirtualBox already has: this machine's, made, is
// started; made only in part, it is removed and made again; another's is
// refused.
func (d *Driver) createOver(ctx context.Context, v *vboxCmd, info *vmInfo, st *machineState) error {
	if st == nil || st.UUID == "" || !strings.EqualFold(st.UUID, info.UUID) {
		return d.errorf("create", fmt.Errorf("VirtualBox already has a VM named %q (UUID %s) that this machine did not make: remove it or choose another machine name", info.Name, info.UUID))
	}
	if st.Complete {
		return d.start(ctx, v, info, st)
	}
	if err := d.destroy(ctx, v, info, st); err != nil {
		return d.errorf("create: remove the VM of an interrupted create", err)
	}
	return d.create(ctx, v)
}

// registerAgain registers and starts a VM unregistered by hand
// (VirtualBox's "Remove... > Remove only"): its files are all there.
func (d *Driver) registerAgain(ctx context.Context, v *vboxCmd, st *machineState) error {
	if _, err := d.mgr.run(ctx, v, "registervm", st.CfgFile); err != nil {
		return d.errorf("create: register the VM again", err)
	}
	info, err := d.info(ctx, v)
	if err != nil || info == nil {
		return d.errorf("create: register the VM again", errors.Join(err, ErrVMNotFound))
	}
	return d.start(ctx, v, info, st)
}

func (d *Driver) create(ctx context.Context, v *vboxCmd) error {
	h, err := d.preflight(ctx, v)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.m.Dir, 0o700); err != nil {
		return d.errorf("create", err)
	}
	st, disk, err := d.prepare(ctx, v, h)
	if err != nil {
		return err
	}
	if err := d.registerVM(ctx, v, st); err != nil {
		return err
	}
	if err := d.attachStorage(ctx, v, st, disk); err != nil {
		return err
	}
	st.Complete = true
	if err := saveState(d.m.Dir, st); err != nil {
		return d.errorf("create", err)
	}
	info, err := d.info(ctx, v)
	if err != nil || info == nil {
		return d.errorf("create", errors.Join(err, ErrVMNotFound))
	}
	return d.start(ctx, v, info, st)
}

// preflight checks the configuration, the host and the image before
// anything is made, and returns the host-only network.
func (d *Driver) preflight(ctx context.Context, v *vboxCmd) (hostOnlyNetwork, error) {
	if d.cfg.Image == "" {
		return hostOnlyNetwork{}, d.errorf("create", errors.New("--virtualbox-image is required"))
	}
	h, err := parseHostOnlyCIDR(d.cfg.HostOnlyCIDR)
	if err != nil {
		return h, d.errorf("create", err)
	}
	if err := d.checkArch(ctx, v); err != nil {
		return h, d.errorf("create", err)
	}
	// An image VirtualBox cannot read fails here, before anything is made.
	if _, err := imageFormat(d.cfg.Image); err != nil {
		return h, d.errorf("create", fmt.Errorf("--virtualbox-image: %w", err))
	}
	return h, nil
}

// prepare makes what the VM needs: its host-only network, its address and
// identity (recorded), the cloud-init seed and the disk.
func (d *Driver) prepare(ctx context.Context, v *vboxCmd, h hostOnlyNetwork) (*machineState, string, error) {
	ad, err := d.ensureHostOnly(ctx, v, h)
	if err != nil {
		return nil, "", d.errorf("create: host-only network "+h.String(), err)
	}
	st, err := d.allocate(ctx, h, ad)
	if err != nil {
		return nil, "", d.errorf("create", err)
	}
	if err := d.writeSeed(ctx, v, st, h); err != nil {
		return nil, "", d.errorf("create: cloud-init seed", err)
	}
	cached, err := d.cachedImage(ctx, v)
	if err != nil {
		return nil, "", d.errorf("create: image", err)
	}
	disk, err := d.makeDisk(ctx, v, cached)
	if err != nil {
		return nil, "", d.errorf("create: disk", err)
	}
	return st, disk, nil
}

// registerVM creates the VM with the UUID recorded for it, records its
// settings file and sets its hardware.
func (d *Driver) registerVM(ctx context.Context, v *vboxCmd, st *machineState) error {
	out, err := d.mgr.run(ctx, v, "createvm", "--name", st.VMName, "--uuid", st.UUID, "--ostype", "Linux26_64", "--basefolder", d.m.Dir, "--register")
	if err != nil {
		return d.errorf("create: createvm", err)
	}
	if uuid, err := parseCreatedUUID(out); err == nil && !strings.EqualFold(uuid, st.UUID) {
		return d.errorf("create: createvm", fmt.Errorf("VirtualBox gave the VM UUID %s, not the %s asked for", uuid, st.UUID))
	}
	st.CfgFile = filepath.Join(d.m.Dir, st.VMName, st.VMName+".vbox")
	if err := saveState(d.m.Dir, st); err != nil {
		return d.errorf("create", err)
	}
	if _, err := d.mgr.run(ctx, v, d.modifyArgs(v, st)...); err != nil {
		return d.errorf("create: modifyvm", err)
	}
	return nil
}

// attachStorage attaches the disk and the seed to a SATA controller.
func (d *Driver) attachStorage(ctx context.Context, v *vboxCmd, st *machineState, disk string) error {
	steps := [][]string{
		{"storagectl", st.VMName, "--name", "SATA", "--add", "sata", "--controller", "IntelAhci", "--portcount", "2", "--bootable", "on"},
		{"storageattach", st.VMName, "--storagectl", "SATA", "--port", "0", "--device", "0", "--type", "hdd", "--medium", disk},
		{"storageattach", st.VMName, "--storagectl", "SATA", "--port", "1", "--device", "0", "--type", "dvddrive", "--medium", filepath.Join(d.m.Dir, SeedFile)},
	}
	for _, args := range steps {
		if _, err := d.mgr.run(ctx, v, args...); err != nil {
			return d.errorf("create: "+args[0], err)
		}
	}
	return nil
}

// checkArch refuses, before anything is made, a VirtualBox that cannot run
// the VMs the driver makes: x86-64 guests (OS type Linux26_64) from x86-64
// cloud images. VirtualBox 7.1 on Apple Silicon runs ARM guests only: it
// would create such a VM and refuse to start it. 7.1 lists the platforms it
// runs in `list systemproperties`; older releases run on x86-64 hosts only.
func (d *Driver) checkArch(ctx context.Context, v *vboxCmd) error {
	if !v.version.atLeast(7, 1) {
		return nil
	}
	out, err := d.mgr.run(ctx, v, "list", "systemproperties")
	if err != nil {
		return err
	}
	archs := parsePlatformArchs(out)
	if len(archs) == 0 || slices.Contains(archs, "x86") {
		return nil
	}
	return fmt.Errorf("%w: VirtualBox %s on this host runs %s guests only (an Apple Silicon Mac), and shoal's virtualbox driver makes x86-64 VMs from x86-64 cloud images, which VirtualBox here would create but refuse to start; nothing was made. Use the virtualbox driver on an x86-64 host, or the docker or ssh driver here",
		ErrUnsupportedHost, v.version, strings.Join(archs, ", "))
}

// allocate picks the machine's address, SSH port, MACs, UUID and host key
// and records them, under a lock so that machines made at once never pick
// the same.
func (d *Driver) allocate(ctx context.Context, h hostOnlyNetwork, ad adapter) (*machineState, error) {
	unlock, err := d.lockAllocation(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ips, ports := d.siblings()
	ip, err := d.pickAddress(h, ips)
	if err != nil {
		return nil, err
	}
	port, err := d.pickPort(ports)
	if err != nil {
		return nil, err
	}
	natMAC, err := newMAC()
	if err != nil {
		return nil, err
	}
	hoMAC, err := newMAC()
	if err != nil {
		return nil, err
	}
	uuid, err := newUUID()
	if err != nil {
		return nil, err
	}
	st := &machineState{
		VMName: d.vmName(), UUID: uuid, SSHPort: port, SSHUser: d.cfg.SSHUser,
		Network: h.String(), HostOnlyIP: ip.String(), Adapter: ad, NATMAC: natMAC, HostOnlyMAC: hoMAC,
	}
	if err := saveState(d.m.Dir, st); err != nil {
		return nil, err
	}
	return st, nil
}

// writeSeed makes the guest's host key and writes the NoCloud seed: the
// user with the machine's key, NIC 1 on DHCP (VirtualBox's NAT), NIC 2 at
// the fixed address. The host key's private half lives only in the seed.
func (d *Driver) writeSeed(ctx context.Context, v *vboxCmd, st *machineState, h hostOnlyNetwork) error {
	key, err := driverutil.NewHostKey()
	if err != nil {
		return err
	}
	id, err := newUUID()
	if err != nil {
		return err
	}
	seed := cloudinit.Seed{
		InstanceID:        "shoal-" + id,
		Hostname:          d.m.Name,
		User:              d.cfg.SSHUser,
		AuthorizedKeys:    []string{d.m.PublicKey},
		HostKeyPrivatePEM: key.PrivatePEM,
		HostKeyPublic:     key.Public,
		Interfaces: []cloudinit.Interface{
			{MAC: colonMAC(st.NATMAC)},
			{MAC: colonMAC(st.HostOnlyMAC), Address: fmt.Sprintf("%s/%d", st.HostOnlyIP, h.prefix())},
		},
	}
	iso, err := seed.ISO()
	if err != nil {
		return err
	}
	// A seed left by an interrupted Create may still be in VirtualBox's
	// media registry: take it out before replacing the file.
	path := filepath.Join(d.m.Dir, SeedFile)
	d.forgetMedium(ctx, v, "dvd", path, false)
	if err := fsutil.WriteFileAtomic(path, iso, 0o600); err != nil {
		return err
	}
	st.HostKeyPublic, st.HostKeyFingerprint = key.Public, key.Fingerprint
	return saveState(d.m.Dir, st)
}

// modifyArgs configures the VM in one modifyvm call, with the option names
// of the VirtualBox found: 7.0 renamed most of them (--natpf1 became
// --nat-pf1) and 6.1 knows only the old names.
func (d *Driver) modifyArgs(v *vboxCmd, st *machineState) []string {
	opt := func(legacy, modern string) string {
		if v.modern() {
			return modern
		}
		return legacy
	}
	args := []string{"modifyvm", st.VMName,
		"--cpus", strconv.Itoa(d.cfg.CPUs),
		"--memory", strconv.Itoa(d.cfg.Memory),
		"--acpi", "on",
		"--ioapic", "on",
		opt("--rtcuseutc", "--rtc-use-utc"), "on",
		"--boot1", "disk", "--boot2", "dvd", "--boot3", "none", "--boot4", "none",
		"--nic1", "nat",
		opt("--nictype1", "--nic-type1"), "82540EM",
		opt("--macaddress1", "--mac-address1"), st.NATMAC,
		opt("--cableconnected1", "--cable-connected1"), "on",
		opt("--natpf1", "--nat-pf1"), fmt.Sprintf("ssh,tcp,127.0.0.1,%d,,22", st.SSHPort),
	}
	if st.Adapter.Kind == "hostonlynet" {
		args = append(args, "--nic2", "hostonlynet", "--host-only-net2", st.Adapter.Name)
	} else {
		args = append(args, "--nic2", "hostonly", opt("--hostonlyadapter2", "--host-only-adapter2"), st.Adapter.Name)
	}
	args = append(args,
		opt("--nictype2", "--nic-type2"), "82540EM",
		opt("--macaddress2", "--mac-address2"), st.HostOnlyMAC,
		opt("--cableconnected2", "--cable-connected2"), "on",
		// Cloud images log to ttyS0 and some wait for it at boot.
		"--uart1", "0x3F8", "4",
		opt("--uartmode1", "--uart-mode1"), "file", filepath.Join(d.m.Dir, ConsoleLog),
	)
	return args
}

// start powers the VM on (or resumes it) and waits for SSH.
func (d *Driver) start(ctx context.Context, v *vboxCmd, info *vmInfo, st *machineState) error {
	switch info.State {
	case "running":
	case "paused":
		if _, err := d.mgr.run(ctx, v, "controlvm", st.VMName, "resume"); err != nil {
			return d.errorf("start: resume", err)
		}
	default:
		if _, err := d.mgr.run(ctx, v, "startvm", st.VMName, "--type", "headless"); err != nil {
			return d.errorf("start", err)
		}
	}
	return d.waitSSH(ctx, v, st)
}

func (d *Driver) waitSSH(ctx context.Context, v *vboxCmd, st *machineState) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(st.SSHPort))
	err := d.mgr.opts.waitSSH(ctx, addr, d.mgr.opts.sshTimeout)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return d.errorf("wait for SSH", ctx.Err())
	}
	var we *driverutil.WaitError
	if errors.As(err, &we) && we.Last != nil {
		err = we.Last
	}
	msg := fmt.Sprintf("SSH did not answer at %s (forwarded to the guest's port 22) within %s: %v; the guest's console is in %s",
		addr, d.mgr.opts.sshTimeout, err, filepath.Join(d.m.Dir, ConsoleLog))
	// The Guest Additions, when the image has them, tell whether the
	// guest got its addresses.
	if out, perr := d.mgr.run(context.WithoutCancel(ctx), v, "guestproperty", "enumerate", st.VMName); perr == nil {
		if ips := guestIPv4s(parseGuestProperties(out)); len(ips) > 0 {
			msg += "; the guest reports the addresses " + strings.Join(ips, ", ")
		}
	}
	return d.errorf("wait for SSH", errors.New(msg))
}
