package virtualbox

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/spf13/pflag"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/driverutil"
	"github.com/shoal-dev/shoal/internal/validate"
)

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
