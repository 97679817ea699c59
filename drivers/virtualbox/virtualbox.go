// Package virtualbox is the driver for VirtualBox VMs made from a cloud
// image, through VBoxManage (6.1, 7.0, 7.1 and later).
//
// A machine is a VM with its own disk (a clone of the image, converted once
// to VDI and cached), a NoCloud seed on a DVD, NIC 1 on NAT with SSH
// forwarded from 127.0.0.1, and NIC 2 on a host-only network with a fixed
// address: the cluster talks over NIC 2. VirtualBox cannot run on the
// machines shoal is built on: the driver is tested against a fake VBoxManage
// (internal/fakevbox) that answers as VirtualBox 6.1, 7.0 and 7.1 do, in
// English and Russian, on x86-64 and Apple Silicon hosts.
package virtualbox

import (
	"github.com/shoal-dev/shoal/internal/sshrun"

	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/driverutil"
	"github.com/shoal-dev/shoal/internal/cloudinit"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/validate"
)

// Name is the driver's name.
const Name = "virtualbox"

// ErrVMNotFound means the machine's VM does not exist (any more).
var ErrVMNotFound = errors.New("the VM does not exist")

// Config is the driver's part of a machine's configuration.
type Config struct {
	// Image is the cloud image the VM boots: qcow2, vmdk, vdi, vhd or raw,
	// with cloud-init (NoCloud).
	Image string `json:"image" hcl:"image,optional"`
	// CPUs is the number of virtual CPUs.
	CPUs int `json:"cpus" hcl:"cpus,optional"`
	// Memory is in MiB.
	Memory int `json:"memory" hcl:"memory,optional"`
	// DiskSize is in MiB; the image's disk is grown to it.
	DiskSize int `json:"diskSize" hcl:"disk_size,optional"`
	// HostOnlyCIDR is the host-only network: the host's address with the
	// prefix.
	HostOnlyCIDR string `json:"hostonlyCIDR" hcl:"hostonly_cidr,optional"`
	// HostOnlyIP is the machine's fixed address on it; empty: the next free.
	HostOnlyIP string `json:"hostonlyIP,omitempty" hcl:"hostonly_ip,optional"`
	// SSHUser is the user cloud-init makes for SSH.
	SSHUser string `json:"sshUser" hcl:"ssh_user,optional"`
	// VBoxManage is VBoxManage's path; empty: searched for.
	VBoxManage string `json:"vboxmanage,omitempty" hcl:"vboxmanage,optional"`
	// ImageCache is the folder of converted images; empty: the user's
	// cache folder.
	ImageCache string `json:"imageCache,omitempty" hcl:"image_cache,optional"`
}

// Defaults.
const (
	DefaultCPUs         = 2
	DefaultMemory       = 2048
	DefaultDiskSize     = 20480
	DefaultHostOnlyCIDR = "192.168.56.1/24"
	DefaultSSHUser      = "shoal"
)

// Spec returns the VirtualBox driver's spec. Its drivers share one manager,
// through which every VBoxManage call of the process passes, one at a time.
func Spec() *drivers.Spec {
	return spec(newManager(defaultOptions()))
}

func spec(mgr *manager) *drivers.Spec {
	return &drivers.Spec{
		Name:  Name,
		Short: "a VirtualBox VM made from a cloud image (VirtualBox 6.1 or newer)",
		NewConfig: func() any {
			return &Config{
				CPUs: DefaultCPUs, Memory: DefaultMemory, DiskSize: DefaultDiskSize,
				HostOnlyCIDR: DefaultHostOnlyCIDR, SSHUser: DefaultSSHUser,
			}
		},
		BindFlags: func(fs *pflag.FlagSet, cfg any) { bindFlags(fs, cfg.(*Config)) },
		Validate:  func(cfg any) error { return checkConfig(cfg.(*Config)) },
		New: func(m drivers.Identity, cfg any) (drivers.Driver, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("virtualbox driver: config is %T, not *virtualbox.Config", cfg)
			}
			return newDriver(mgr, m, c), nil
		},
	}
}

func bindFlags(fs *pflag.FlagSet, c *Config) {
	fs.StringVar(&c.Image, "virtualbox-image", c.Image, "cloud image the VM boots (qcow2, vmdk, vdi, vhd or raw, with cloud-init); converted to VDI once and cached")
	fs.IntVar(&c.CPUs, "virtualbox-cpus", c.CPUs, "number of virtual CPUs")
	fs.IntVar(&c.Memory, "virtualbox-memory", c.Memory, "memory in MiB")
	fs.IntVar(&c.DiskSize, "virtualbox-disk-size", c.DiskSize, "disk size in MiB (the image's disk is grown to it, never shrunk)")
	fs.StringVar(&c.HostOnlyCIDR, "virtualbox-hostonly-cidr", c.HostOnlyCIDR, "host-only network, as the host's address/prefix; on Linux (and macOS with VirtualBox 6.1) VirtualBox allows only 192.168.56.0/21, or what /etc/vbox/networks.conf lists once it exists")
	fs.StringVar(&c.HostOnlyIP, "virtualbox-hostonly-ip", c.HostOnlyIP, "the machine's fixed address on the host-only network (default: the next free one, from .10 up)")
	fs.StringVar(&c.SSHUser, "virtualbox-ssh-user", c.SSHUser, `user made by cloud-init for SSH with the machine's key (not "docker" or "root")`)
	fs.StringVar(&c.VBoxManage, "virtualbox-vboxmanage", c.VBoxManage, "path of VBoxManage (default: found on PATH or in VirtualBox's install folder)")
	fs.StringVar(&c.ImageCache, "virtualbox-image-cache", c.ImageCache, "folder for converted images (default: shoal/virtualbox in the user's cache folder)")
}

func checkConfig(c *Config) error {
	var errs []error
	if strings.TrimSpace(c.Image) == "" {
		errs = append(errs, errors.New("--virtualbox-image is required: a cloud image with cloud-init (qcow2, vmdk, vdi, vhd or raw)"))
	}
	errs = append(errs, driverutil.CheckMinimums(
		driverutil.Minimum{Flag: "--virtualbox-cpus", Value: c.CPUs, Least: 1},
		driverutil.Minimum{Flag: "--virtualbox-memory", Value: c.Memory, Least: 256, Unit: "MiB"},
		driverutil.Minimum{Flag: "--virtualbox-disk-size", Value: c.DiskSize, Least: 1024, Unit: "MiB"},
	)...)
	switch {
	case c.SSHUser == "docker":
		// cloud-init cannot create the user when Docker's group exists.
		errs = append(errs, errors.New(`--virtualbox-ssh-user "docker": cloud-init cannot make a user named like Docker's group; choose another name`))
	case c.SSHUser == "root":
		errs = append(errs, errors.New(`--virtualbox-ssh-user "root": root logins are disabled; choose another name`))
	case validate.UserName(c.SSHUser) != nil:
		errs = append(errs, fmt.Errorf("--virtualbox-ssh-user %q: not a valid user name", c.SSHUser))
	}
	h, err := parseHostOnlyCIDR(c.HostOnlyCIDR)
	if err != nil {
		errs = append(errs, err)
	} else if c.HostOnlyIP != "" {
		if err := h.checkAddress(net.ParseIP(c.HostOnlyIP)); err != nil {
			errs = append(errs, fmt.Errorf("--virtualbox-hostonly-ip %s: %w", c.HostOnlyIP, err))
		}
	}
	return errors.Join(errs...)
}

// Driver is a VirtualBox machine.
type Driver struct {
	mgr *manager
	m   drivers.Identity
	cfg *Config
}

var (
	_ drivers.Driver    = (*Driver)(nil)
	_ drivers.Addresser = (*Driver)(nil)
)

func newDriver(mgr *manager, m drivers.Identity, cfg *Config) *Driver {
	return &Driver{mgr: mgr, m: m, cfg: cfg}
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

func (d *Driver) errorf(step string, err error) error {
	return fmt.Errorf("virtualbox machine %q: %s: %w", d.m.Name, step, err)
}

// vmName is the VM's name in VirtualBox: the machine's, as docker-machine
// did, so that users find it in VirtualBox's window.
func (d *Driver) vmName() string { return d.m.Name }

// info returns the VM's showvminfo, or nil when VirtualBox has no VM by
// that name.
func (d *Driver) info(ctx context.Context, v *vboxCmd) (*vmInfo, error) {
	out, err := d.mgr.run(ctx, v, "showvminfo", d.vmName(), "--machinereadable")
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseVMInfo(out)
}

// ours returns the VM and the driver's record of it, or nil when the VM is
// missing or is not the one this machine made (a VM of the same name made
// by hand or by another tool is never touched).
func (d *Driver) ours(ctx context.Context, v *vboxCmd) (*vmInfo, *machineState, error) {
	st, err := loadState(d.m.Dir)
	if err != nil {
		return nil, nil, err
	}
	info, err := d.info(ctx, v)
	if err != nil || info == nil || st == nil || st.UUID == "" || !strings.EqualFold(st.UUID, info.UUID) {
		return nil, st, err
	}
	return info, st, nil
}

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
		if st == nil || st.UUID == "" || !strings.EqualFold(st.UUID, info.UUID) {
			return d.errorf("create", fmt.Errorf("VirtualBox already has a VM named %q (UUID %s) that this machine did not make: remove it or choose another machine name", info.Name, info.UUID))
		}
		if st.Complete {
			return d.start(ctx, v, info, st)
		}
		if err := d.destroy(ctx, v, info, st); err != nil {
			return d.errorf("create: remove the VM of an interrupted create", err)
		}
	} else if st != nil && st.Complete && st.CfgFile != "" {
		if _, err := os.Stat(st.CfgFile); err == nil {
			// Unregistered by hand (VirtualBox's "Remove... > Remove only"):
			// its files are all there, register it again.
			if _, err := d.mgr.run(ctx, v, "registervm", st.CfgFile); err != nil {
				return d.errorf("create: register the VM again", err)
			}
			info, err := d.info(ctx, v)
			if err != nil || info == nil {
				return d.errorf("create: register the VM again", errors.Join(err, ErrVMNotFound))
			}
			return d.start(ctx, v, info, st)
		}
	}
	return d.create(ctx, v)
}

func (d *Driver) create(ctx context.Context, v *vboxCmd) error {
	if d.cfg.Image == "" {
		return d.errorf("create", errors.New("--virtualbox-image is required"))
	}
	h, err := parseHostOnlyCIDR(d.cfg.HostOnlyCIDR)
	if err != nil {
		return d.errorf("create", err)
	}
	if err := d.checkArch(ctx, v); err != nil {
		return d.errorf("create", err)
	}
	// An image VirtualBox cannot read fails here, before anything is made.
	if _, err := imageFormat(d.cfg.Image); err != nil {
		return d.errorf("create", fmt.Errorf("--virtualbox-image: %w", err))
	}
	if err := os.MkdirAll(d.m.Dir, 0o700); err != nil {
		return d.errorf("create", err)
	}
	ad, err := d.ensureHostOnly(ctx, v, h)
	if err != nil {
		return d.errorf("create: host-only network "+h.String(), err)
	}
	st, err := d.allocate(ctx, h, ad)
	if err != nil {
		return d.errorf("create", err)
	}
	if err := d.writeSeed(ctx, v, st, h); err != nil {
		return d.errorf("create: cloud-init seed", err)
	}
	cached, err := d.cachedImage(ctx, v)
	if err != nil {
		return d.errorf("create: image", err)
	}
	disk, err := d.makeDisk(ctx, v, cached)
	if err != nil {
		return d.errorf("create: disk", err)
	}
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

// Start powers the VM on and waits for SSH.
func (d *Driver) Start(ctx context.Context) error {
	v, err := d.mgr.vbox(ctx, d.cfg.VBoxManage)
	if err != nil {
		return d.errorf("start", err)
	}
	info, st, err := d.ours(ctx, v)
	if err != nil {
		return d.errorf("start", err)
	}
	if info == nil {
		return d.errorf("start", ErrVMNotFound)
	}
	if !st.Complete {
		return d.errorf("start", errors.New("the VM was not fully made (an interrupted create): run create again"))
	}
	return d.start(ctx, v, info, st)
}

// Stop presses the ACPI power button and waits for the guest to power off;
// a guest that has not after the stop timeout is powered off.
func (d *Driver) Stop(ctx context.Context) error {
	v, err := d.mgr.vbox(ctx, d.cfg.VBoxManage)
	if err != nil {
		return d.errorf("stop", err)
	}
	info, st, err := d.ours(ctx, v)
	if err != nil {
		return d.errorf("stop", err)
	}
	if info == nil {
		return d.errorf("stop", ErrVMNotFound)
	}
	switch vmState(info.State) {
	case drivers.Stopped:
		return nil
	case drivers.Paused:
		// A paused guest cannot see the button.
		return d.powerOff(ctx, v, st)
	}
	if _, err := d.mgr.run(ctx, v, "controlvm", st.VMName, "acpipowerbutton"); err != nil {
		return d.errorf("stop: acpipowerbutton", err)
	}
	deadline := time.Now().Add(d.mgr.opts.stopTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return d.errorf("stop", ctx.Err())
		case <-time.After(d.mgr.opts.pollInterval):
		}
		info, err := d.info(ctx, v)
		if err != nil {
			return d.errorf("stop", err)
		}
		if info == nil || vmState(info.State) == drivers.Stopped {
			return nil
		}
	}
	// The guest ignored the button (no acpid, hung shutdown): pull the plug.
	return d.powerOff(ctx, v, st)
}

func (d *Driver) powerOff(ctx context.Context, v *vboxCmd, st *machineState) error {
	_, err := d.mgr.run(ctx, v, "controlvm", st.VMName, "poweroff")
	if err == nil {
		return nil
	}
	// It may have stopped on its own meanwhile: the VM's state says so in
	// any language, the error text only in English.
	if info, ierr := d.info(ctx, v); ierr == nil && (info == nil || vmState(info.State) == drivers.Stopped) {
		return nil
	}
	return d.errorf("poweroff", err)
}

// Kill powers the VM off at once.
func (d *Driver) Kill(ctx context.Context) error {
	v, err := d.mgr.vbox(ctx, d.cfg.VBoxManage)
	if err != nil {
		return d.errorf("kill", err)
	}
	info, st, err := d.ours(ctx, v)
	if err != nil {
		return d.errorf("kill", err)
	}
	if info == nil {
		return d.errorf("kill", ErrVMNotFound)
	}
	if vmState(info.State) == drivers.Stopped {
		return nil
	}
	return d.powerOff(ctx, v, st)
}

// Restart stops the VM (gracefully, as Stop) and starts it again.
func (d *Driver) Restart(ctx context.Context) error {
	if err := d.Stop(ctx); err != nil {
		return err
	}
	return d.Start(ctx)
}

// Remove deletes the VM, its disk, its seed and the driver's files. A
// machine whose VM is gone is cleaned up without error; a VM of the same
// name that this machine did not make is left alone.
func (d *Driver) Remove(ctx context.Context) error {
	v, err := d.mgr.vbox(ctx, d.cfg.VBoxManage)
	if err != nil {
		return d.errorf("remove", err)
	}
	info, st, err := d.ours(ctx, v)
	if err != nil {
		return d.errorf("remove", err)
	}
	if info != nil {
		if err := d.destroy(ctx, v, info, st); err != nil {
			return d.errorf("remove", err)
		}
	}
	d.forgetMedium(ctx, v, "dvd", filepath.Join(d.m.Dir, SeedFile), true)
	d.forgetMedium(ctx, v, "disk", filepath.Join(d.m.Dir, DiskFile), true)
	var errs []error
	for _, p := range []string{filepath.Join(d.m.Dir, d.vmName()), filepath.Join(d.m.Dir, ConsoleLog), filepath.Join(d.m.Dir, StateFile)} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return d.errorf("remove", err)
	}
	return nil
}

// destroy powers the VM off, drops its SSH forwarding and unregisters it
// with its disks.
func (d *Driver) destroy(ctx context.Context, v *vboxCmd, info *vmInfo, st *machineState) error {
	if s := vmState(info.State); s != drivers.Stopped {
		if err := d.powerOff(ctx, v, st); err != nil {
			return err
		}
	}
	if _, ok := info.Forwards["ssh"]; ok {
		// Free the host port at once, even if the unregister below fails.
		if _, err := d.mgr.run(ctx, v, "modifyvm", st.VMName, optName(v, "--natpf1", "--nat-pf1"), "delete", "ssh"); err != nil {
			return err
		}
	}
	if _, err := d.mgr.run(ctx, v, "unregistervm", st.VMName, "--delete"); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func optName(v *vboxCmd, legacy, modern string) string {
	if v.modern() {
		return modern
	}
	return legacy
}

// State reads the VM's state from VirtualBox.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	v, err := d.mgr.vbox(ctx, d.cfg.VBoxManage)
	if err != nil {
		return drivers.Unknown, d.errorf("state", err)
	}
	info, _, err := d.ours(ctx, v)
	if err != nil {
		return drivers.Unknown, d.errorf("state", err)
	}
	if info == nil {
		return drivers.NotFound, nil
	}
	return vmState(info.State), nil
}

// vmState maps VirtualBox's machine states: VBoxManageInfo.cpp's short
// names, which --machinereadable prints untranslated. The snapshot states
// say whether the VM runs meanwhile; settingup is a powered-off VM being
// changed (a clone, a move).
func vmState(s string) drivers.State {
	switch s {
	case "running", "teleporting", "livesnapshotting", "onlinesnapshotting", "deletingsnapshotlive":
		return drivers.Running
	case "paused", "teleportingpausedvm", "deletingsnapshotlivepaused":
		return drivers.Paused
	case "poweroff", "aborted", "saved", "teleported", "aborted-saved",
		"snapshotting", "restoringsnapshot", "deletingsnapshot", "settingup":
		return drivers.Stopped
	case "starting", "restoring", "teleportingin":
		return drivers.Starting
	case "stopping", "saving":
		return drivers.Stopping
	case "stuck", "gurumeditation":
		return drivers.Error
	}
	return drivers.Unknown
}

// SSH returns 127.0.0.1 and the forwarded port, the machine's key and the
// fingerprint of the host key the seed gave the guest.
func (d *Driver) SSH(ctx context.Context) (drivers.Endpoint, error) {
	st, err := loadState(d.m.Dir)
	if err != nil {
		return drivers.Endpoint{}, d.errorf("ssh", err)
	}
	if st == nil || st.SSHPort == 0 {
		return drivers.Endpoint{}, d.errorf("ssh", errors.New("the machine has not been created"))
	}
	return drivers.Endpoint{
		Endpoint: sshrun.Endpoint{
			Host:               "127.0.0.1",
			Port:               st.SSHPort,
			User:               st.SSHUser,
			KeyPath:            d.m.PrivateKeyPath,
			HostKeyFingerprint: st.HostKeyFingerprint,
		},
	}, nil
}

// Address returns the machine's fixed address on the host-only network:
// the one the other nodes and the host reach it at.
func (d *Driver) Address(ctx context.Context) (string, error) {
	st, err := loadState(d.m.Dir)
	if err != nil {
		return "", d.errorf("address", err)
	}
	if st == nil || st.HostOnlyIP == "" {
		return "", d.errorf("address", errors.New("the machine has not been created"))
	}
	return st.HostOnlyIP, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
