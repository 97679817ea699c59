// Package libvirt is the driver whose hosts are libvirt virtual machines
// booted from a cloud image: a qcow2 overlay on a base volume shared by all
// machines of that image, a NoCloud seed (internal/cloudinit) with the user,
// its key and a host key shoal generated, and a DHCP reservation that keeps
// the machine's address across restarts.
//
// The driver talks to libvirt's daemon over its socket in libvirt's own
// RPC protocol (github.com/digitalocean/go-libvirt, pure Go): no libvirt
// library is linked or loaded, so every build of shoal has this driver,
// with or without cgo, and only a machine that runs VMs needs libvirt. When
// no daemon answers, the error says which socket was tried and what to
// install and start (connect.go).
package libvirt

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/driverutil"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/spf13/pflag"
)

// Name is the driver's name.
const Name = "libvirt"

// Defaults.
const (
	DefaultURI      = "qemu:///system"
	DefaultCPUs     = 1
	DefaultMemory   = 1024 // MiB
	DefaultDiskSize = 10   // GB
	DefaultNetwork  = "default"
	DefaultPool     = "default"
	// DefaultPoolPath is where the default pool is created when missing:
	// QEMU (running as libvirt-qemu) can read it, unlike /root.
	DefaultPoolPath = "/var/lib/libvirt/images"
	// DefaultSSHUser is the user cloud-init creates. Not "docker": cloud-init
	// cannot create a user whose name is an existing group's, and images
	// with Docker pre-installed have a docker group.
	DefaultSSHUser = "shoal"
)

// Domain types.
const (
	DomainTypeAuto = "auto"
	DomainTypeKVM  = "kvm"
	DomainTypeQEMU = "qemu"
)

// Config is the driver's part of config.json and of a cluster file.
type Config struct {
	URI string `json:"uri" hcl:"uri,optional"`
	// Image is a local qcow2 or raw cloud image, or an http(s) URL.
	Image string `json:"image" hcl:"image,optional"`
	// ImageChecksum ("sha256:HEX") is checked on download and on upload.
	ImageChecksum string `json:"image_checksum,omitempty" hcl:"image_checksum,optional"`
	CPUs          int    `json:"cpus" hcl:"cpus,optional"`
	Memory        int    `json:"memory" hcl:"memory,optional"`       // MiB
	DiskSize      int    `json:"disk_size" hcl:"disk_size,optional"` // GB
	Network       string `json:"network" hcl:"network,optional"`
	DomainType    string `json:"domain_type" hcl:"domain_type,optional"`
	SSHUser       string `json:"ssh_user" hcl:"ssh_user,optional"`
	Pool          string `json:"pool" hcl:"pool,optional"`
}

// NewConfig returns a Config with the defaults set.
func NewConfig() *Config {
	return &Config{
		URI:        DefaultURI,
		CPUs:       DefaultCPUs,
		Memory:     DefaultMemory,
		DiskSize:   DefaultDiskSize,
		Network:    DefaultNetwork,
		DomainType: DomainTypeAuto,
		SSHUser:    DefaultSSHUser,
		Pool:       DefaultPool,
	}
}

// BindFlags registers the driver's flags, writing into c.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URI, "libvirt-uri", c.URI, "libvirt driver: connection URI")
	fs.StringVar(&c.Image, "libvirt-image", c.Image, "libvirt driver: cloud image with cloud-init (local qcow2/raw file or http(s) URL, downloaded once)")
	fs.StringVar(&c.ImageChecksum, "libvirt-image-checksum", c.ImageChecksum, "libvirt driver: expected checksum of the image (sha256:HEX)")
	fs.IntVar(&c.CPUs, "libvirt-cpus", c.CPUs, "libvirt driver: number of virtual CPUs")
	fs.IntVar(&c.Memory, "libvirt-memory", c.Memory, "libvirt driver: memory in MiB")
	fs.IntVar(&c.DiskSize, "libvirt-disk-size", c.DiskSize, "libvirt driver: disk size in GB (at least the image's size)")
	fs.StringVar(&c.Network, "libvirt-network", c.Network, "libvirt driver: libvirt network with DHCP (NAT or routed)")
	fs.StringVar(&c.DomainType, "libvirt-domain-type", c.DomainType, "libvirt driver: auto (kvm when it works, else qemu), kvm or qemu (emulation, TCG)")
	fs.StringVar(&c.SSHUser, "libvirt-ssh-user", c.SSHUser, "libvirt driver: user cloud-init creates with the machine's key and passwordless sudo")
	fs.StringVar(&c.Pool, "libvirt-pool", c.Pool, "libvirt driver: storage pool of the disks (\"default\" is created at "+DefaultPoolPath+" when missing)")
}

// Validate checks the config after flags were parsed.
func (c *Config) Validate() error {
	var errs []error
	if c.URI == "" {
		errs = append(errs, errors.New("--libvirt-uri is empty"))
	}
	errs = append(errs, c.imageErrors()...)
	errs = append(errs, driverutil.CheckMinimums(
		driverutil.Minimum{Flag: "--libvirt-cpus", Value: c.CPUs, Least: 1},
		driverutil.Minimum{Flag: "--libvirt-memory", Value: c.Memory, Least: 256, Unit: "MiB"},
		driverutil.Minimum{Flag: "--libvirt-disk-size", Value: c.DiskSize, Least: 1, Unit: "GB"},
	)...)
	if c.Network == "" {
		errs = append(errs, errors.New("--libvirt-network is empty"))
	}
	// errors.Join leaves out the nil ones.
	errs = append(errs, checkDomainType(c.DomainType), checkSSHUser(c.SSHUser))
	if c.Pool == "" {
		errs = append(errs, errors.New("--libvirt-pool is empty"))
	}
	return errors.Join(errs...)
}

// imageErrors check --libvirt-image (a local file or an http(s) URL) and
// its checksum.
func (c *Config) imageErrors() []error {
	var errs []error
	if c.Image == "" {
		errs = append(errs, errors.New("--libvirt-image is required: a cloud image (qcow2 or raw) with cloud-init, a local file or an http(s) URL"))
	} else if strings.Contains(c.Image, "://") && !isURL(c.Image) {
		errs = append(errs, fmt.Errorf("--libvirt-image %q: only local files and http(s) URLs are supported", c.Image))
	}
	if c.ImageChecksum != "" && validate.Checksum(c.ImageChecksum) != nil {
		errs = append(errs, fmt.Errorf("--libvirt-image-checksum %q: want sha256: and 64 hex digits", c.ImageChecksum))
	}
	return errs
}

func checkDomainType(t string) error {
	switch t {
	case DomainTypeAuto, DomainTypeKVM, DomainTypeQEMU:
		return nil
	}
	return fmt.Errorf("--libvirt-domain-type %q: want auto, kvm or qemu", t)
}

// checkSSHUser refuses a user cloud-init cannot create.
func checkSSHUser(u string) error {
	switch {
	case u == "root":
		return errors.New(`--libvirt-ssh-user "root": cloud-init creates this user, choose another name`)
	case u == "docker":
		return errors.New(`--libvirt-ssh-user "docker": cloud-init cannot create it where a docker group exists (images with Docker); choose another name`)
	case validate.UserName(u) != nil:
		return fmt.Errorf("--libvirt-ssh-user %q: not a valid user name", u)
	}
	return nil
}

// withDefaults fills the fields a cluster file or an old config.json left
// empty.
func (c Config) withDefaults() Config {
	d := NewConfig()
	c.URI = cmp.Or(c.URI, d.URI)
	c.CPUs = cmp.Or(c.CPUs, d.CPUs)
	c.Memory = cmp.Or(c.Memory, d.Memory)
	c.DiskSize = cmp.Or(c.DiskSize, d.DiskSize)
	c.Network = cmp.Or(c.Network, d.Network)
	c.DomainType = cmp.Or(c.DomainType, d.DomainType)
	c.SSHUser = cmp.Or(c.SSHUser, d.SSHUser)
	c.Pool = cmp.Or(c.Pool, d.Pool)
	return c
}

// isURL says whether image is downloaded rather than read from a file.
func isURL(image string) bool {
	return strings.HasPrefix(image, "http://") || strings.HasPrefix(image, "https://")
}

// Spec registers the driver: drivers.NewRegistry(..., libvirt.Spec()).
func Spec() *drivers.Spec {
	return &drivers.Spec{
		Name:      Name,
		Short:     "a libvirt virtual machine (KVM or QEMU) booted from a cloud image with cloud-init",
		NewConfig: func() any { return NewConfig() },
		BindFlags: func(fs *pflag.FlagSet, cfg any) { cfg.(*Config).BindFlags(fs) },
		Validate:  func(cfg any) error { return cfg.(*Config).Validate() },
		New: func(m drivers.Identity, cfg any) (drivers.Driver, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("libvirt driver: config is %T, want *libvirt.Config", cfg)
			}
			if m.Name == "" || m.Dir == "" {
				return nil, errors.New("libvirt driver: machine name and folder are required")
			}
			// Not Validate: a machine whose config no longer validates must
			// still be stoppable and removable. Create checks what it needs.
			return newDriver(m, c.withDefaults())
		},
	}
}
