package libvirt

import (
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"net"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// MetadataNamespace marks the domains shoal made (<metadata> in the domain
// XML), with the machine folder they belong to.
const MetadataNamespace = "https://github.com/shoal-dev/shoal/libvirt/1"

// domainSpec is everything a machine's domain XML is made of.
type domainSpec struct {
	Name       string
	UUID       string
	Type       string // kvm or qemu
	MemoryMiB  int
	CPUs       int
	DiskPath   string // the machine's qcow2 overlay
	BasePath   string // its backing file
	BaseFormat string // qcow2 or raw
	SeedPath   string // the NoCloud ISO
	Network    string
	MAC        string
	// ConsoleLog, when set, is where the serial console is written (on the
	// hypervisor's host): boot problems can be read there.
	ConsoleLog string
	MachineDir string
}

func uintp(u uint) *uint { return &u }

// domainXML builds the machine's domain: a q35 PC that boots from its disk
// (the image's own boot loader, as with any cloud image), the seed as a
// read-only CD-ROM on virtio-scsi, one virtio NIC with a fixed MAC on the
// network, and a serial console (console=ttyS0 is what cloud images log to).
//
// The CD-ROM is on virtio-scsi, not SATA: cloud kernels (Debian's
// linux-image-cloud-amd64) have no AHCI driver, and then cloud-init never
// sees its seed. virtio_scsi and sr_mod are in every cloud kernel.
func domainXML(s domainSpec) *libvirtxml.Domain {
	d := &libvirtxml.Domain{
		Type:        s.Type,
		Name:        s.Name,
		UUID:        s.UUID,
		Description: "shoal machine " + s.Name,
		Metadata:    &libvirtxml.DomainMetadata{XML: machineMetadata(s.MachineDir)},
		Memory:      &libvirtxml.DomainMemory{Value: uint(s.MemoryMiB), Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: uint(s.CPUs)},
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Type: "hvm", Arch: "x86_64", Machine: "q35"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
		},
		// ACPI: "stop" is an ACPI power-button press.
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{
				{
					Device: "disk",
					Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2", Discard: "unmap"},
					Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.DiskPath}},
					BackingStore: &libvirtxml.DomainDiskBackingStore{
						Format: &libvirtxml.DomainDiskFormat{Type: s.BaseFormat},
						Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.BasePath}},
						// The base ends the chain.
						BackingStore: &libvirtxml.DomainDiskBackingStore{},
					},
					Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
				},
				{
					Device:   "cdrom",
					Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
					Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.SeedPath}},
					Target:   &libvirtxml.DomainDiskTarget{Dev: "sda", Bus: "scsi"},
					ReadOnly: &libvirtxml.DomainDiskReadOnly{},
				},
			},
			Controllers: []libvirtxml.DomainController{{Type: "scsi", Index: uintp(0), Model: "virtio-scsi"}},
			Interfaces: []libvirtxml.DomainInterface{{
				MAC:    &libvirtxml.DomainInterfaceMAC{Address: s.MAC},
				Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: s.Network}},
				Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			}},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainSerialTarget{Port: uintp(0)},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: uintp(0)},
			}},
			// Entropy at first boot: sshd and cloud-init wait for it, and
			// under emulation it is slow to gather.
			RNGs: []libvirtxml.DomainRNG{{
				Model:   "virtio",
				Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "virtio"},
		},
	}
	if s.ConsoleLog != "" {
		d.Devices.Serials[0].Log = &libvirtxml.DomainChardevLog{File: s.ConsoleLog, Append: "off"}
	}
	if s.Type == DomainTypeKVM {
		d.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	return d
}

// machineMetadata is the <metadata> child naming the machine folder.
func machineMetadata(dir string) string {
	var b strings.Builder
	b.WriteString(`<shoal:machine xmlns:shoal="` + MetadataNamespace + `">`)
	_ = xml.EscapeText(&b, []byte(dir)) // writes to a strings.Builder: cannot fail
	b.WriteString(`</shoal:machine>`)
	return b.String()
}

// volumeXML describes a volume of capacity bytes in format (qcow2, raw),
// optionally backed by backingPath in backingFormat.
func volumeXML(name string, capacity uint64, format, backingPath, backingFormat, mode string) *libvirtxml.StorageVolume {
	v := &libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Value: capacity, Unit: "bytes"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: format}},
	}
	if mode != "" {
		v.Target.Permissions = &libvirtxml.StorageVolumeTargetPermissions{Mode: mode}
	}
	if backingPath != "" {
		v.BackingStore = &libvirtxml.StorageVolumeBackingStore{
			Path:   backingPath,
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: backingFormat},
		}
	}
	return v
}

// poolXML describes a directory pool.
func poolXML(name, path string) *libvirtxml.StoragePool {
	return &libvirtxml.StoragePool{
		Type:   "dir",
		Name:   name,
		Target: &libvirtxml.StoragePoolTarget{Path: path},
	}
}

// dhcpHostXML is the network's <host> entry reserving ip for mac. No name:
// a name must be unique in the network, and a stale entry of a machine
// removed outside shoal would then block a new one of the same name.
func dhcpHostXML(mac, ip string) (string, error) {
	return (&libvirtxml.NetworkDHCPHost{MAC: mac, IP: ip}).Marshal()
}

// randomMAC returns a MAC in QEMU's locally administered 52:54:00 range.
func randomMAC() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random MAC: %w", err)
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]), nil
}

// sameMAC compares MACs however they are written.
func sameMAC(a, b string) bool {
	ma, errA := net.ParseMAC(a)
	mb, errB := net.ParseMAC(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(a, b)
	}
	return ma.String() == mb.String()
}

// reservationsFor returns the DHCP host entries of network XML netXML that
// reserve an address for mac, on any of its IPv4 ranges.
func reservationsFor(netXML, mac string) ([]libvirtxml.NetworkDHCPHost, error) {
	var n libvirtxml.Network
	if err := n.Unmarshal(netXML); err != nil {
		return nil, fmt.Errorf("parse network XML: %w", err)
	}
	var out []libvirtxml.NetworkDHCPHost
	for _, ip := range n.IPs {
		if ip.DHCP == nil {
			continue
		}
		for _, h := range ip.DHCP.Hosts {
			if sameMAC(h.MAC, mac) {
				out = append(out, h)
			}
		}
	}
	return out, nil
}

// networkHasDHCP says whether network XML netXML hands out IPv4 addresses.
func networkHasDHCP(netXML string) (bool, error) {
	var n libvirtxml.Network
	if err := n.Unmarshal(netXML); err != nil {
		return false, fmt.Errorf("parse network XML: %w", err)
	}
	for _, ip := range n.IPs {
		if ip.DHCP != nil && len(ip.DHCP.Ranges) > 0 && (ip.Family == "" || ip.Family == "ipv4") {
			return true, nil
		}
	}
	return false, nil
}

// capsHaveKVM says whether the host capabilities XML offers kvm domains for
// x86_64 guests.
func capsHaveKVM(capsXML string) (bool, error) {
	var c libvirtxml.Caps
	if err := c.Unmarshal(capsXML); err != nil {
		return false, fmt.Errorf("parse capabilities: %w", err)
	}
	for _, g := range c.Guests {
		if g.OSType != "hvm" || g.Arch.Name != "x86_64" {
			continue
		}
		for _, d := range g.Arch.Domains {
			if d.Type == DomainTypeKVM {
				return true, nil
			}
		}
	}
	return false, nil
}
