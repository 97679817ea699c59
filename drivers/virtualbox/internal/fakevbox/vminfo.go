package fakevbox

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// --- list -----------------------------------------------------------------

func (v *vbox) list(args []string) {
	if len(args) == 0 {
		v.syntax("Missing subcommand for \"list\" command.")
		return
	}
	switch args[0] {
	case "vms":
		for _, vm := range v.s.VMs {
			fmt.Fprintf(v.out, "\"%s\" {%s}\n", vm.Name, vm.UUID)
		}
	case "runningvms":
		for _, vm := range v.s.VMs {
			if vm.State == "running" || vm.State == "paused" {
				fmt.Fprintf(v.out, "\"%s\" {%s}\n", vm.Name, vm.UUID)
			}
		}
	case "hostonlyifs":
		if v.vmnet() {
			v.syntax("Unknown subcommand \"%s\".", args[0])
			return
		}
		for _, h := range v.s.HostOnlyIfs {
			// VBoxManageList.cpp, listNetworkInterfaces: the labels
			// are translated (7.x), GUID and DHCP are not.
			fmt.Fprintf(v.out, v.tr("Name:            %s\n"), h.Name)
			fmt.Fprintf(v.out, "GUID:            %s\n", h.GUID)
			fmt.Fprintf(v.out, "DHCP:            %s\n", v.tr("Disabled"))
			fmt.Fprintf(v.out, v.tr("IPAddress:       %s\n"), h.IP)
			fmt.Fprintf(v.out, v.tr("NetworkMask:     %s\n"), h.Netmask)
			fmt.Fprintf(v.out, "IPV6Address:     fe80::800:27ff:fe00:%x\n", len(h.Name))
			fmt.Fprintf(v.out, "IPV6NetworkMaskPrefixLength: 64\n")
			fmt.Fprintf(v.out, "HardwareAddress: %s\n", h.HWAddr)
			fmt.Fprintf(v.out, "MediumType:      Ethernet\n")
			fmt.Fprintf(v.out, "Wireless:        No\n")
			fmt.Fprintf(v.out, "Status:          Up\n")
			fmt.Fprintf(v.out, v.tr("VBoxNetworkName: %s\n\n"), "HostInterfaceNetworking-"+h.Name)
		}
	case "hostonlynets":
		if !v.vmnet() {
			// Only builds with VBOX_WITH_VMNET (macOS) know this list.
			v.syntax("Unknown subcommand \"%s\".", args[0])
			return
		}
		for _, n := range v.s.HostOnlyNets {
			// VBoxManageList.cpp, listHostOnlyNetworks: note the empty
			// line after GUID, inside the record.
			fmt.Fprintf(v.out, v.tr("Name:            %s\n"), n.Name)
			fmt.Fprintf(v.out, "GUID:            %s\n\n", n.GUID)
			state := v.tr("Disabled")
			if n.Enabled {
				state = v.tr("Enabled")
			}
			fmt.Fprintf(v.out, v.tr("State:           %s\n"), state)
			fmt.Fprintf(v.out, v.tr("NetworkMask:     %s\n"), n.Netmask)
			fmt.Fprintf(v.out, v.tr("LowerIP:         %s\n"), n.LowerIP)
			fmt.Fprintf(v.out, v.tr("UpperIP:         %s\n"), n.UpperIP)
			fmt.Fprintf(v.out, "VBoxNetworkName: hostonly-%s\n\n", n.Name)
		}
	case "systemproperties":
		v.systemProperties()
	default:
		v.syntax("Unknown subcommand \"%s\".", args[0])
	}
}

// systemProperties prints a few lines of `list systemproperties`. 7.1 adds
// the platform architectures this host runs (VBoxManageList.cpp: "x86" or
// "ARMv8", printed untranslated); an ARM host runs ARM guests only unless
// the hidden VBoxInternal2/EnableX86OnArm is set.
func (v *vbox) systemProperties() {
	fmt.Fprintf(v.out, "API version:                     %d_%d\n", v.major, v.minor)
	fmt.Fprintf(v.out, "Minimum guest RAM size:          4 Megabytes\n")
	fmt.Fprintf(v.out, "Maximum guest RAM size:          2097152 Megabytes\n")
	if v.modern() {
		fmt.Fprintf(v.out, "User language:                   %s\n", v.s.Host.Language)
	}
	if v.major > 7 || (v.major == 7 && v.minor >= 1) {
		fmt.Fprintf(v.out, "Host platform properties:\n\n")
		arch := "x86"
		if v.arm() {
			arch = "ARMv8"
		}
		fmt.Fprintf(v.out, "Supported platform architectures: %s\n\n", arch)
	}
}

// arm reports an ARM host (VirtualBox 7.1 on Apple Silicon).
func (v *vbox) arm() bool { return v.s.Host.Arch == "arm64" }

// --- showvminfo -------------------------------------------------------------

// osDescription is the Description of the guest OS types the fake knows.
func (v *vbox) osDescription(id string) (string, bool) {
	switch id {
	case "Linux26_64":
		if v.modern() {
			return "Linux 2.6 / 3.x / 4.x / 5.x (64-bit)", true
		}
		return "Linux 2.6 / 3.x / 4.x (64-bit)", true
	case "Ubuntu_64":
		return "Ubuntu (64-bit)", true
	case "Debian_64":
		return "Debian (64-bit)", true
	case "RedHat_64":
		return "Red Hat (64-bit)", true
	case "Other_64":
		return "Other/Unknown (64-bit)", true
	}
	if v.major > 7 || (v.major == 7 && v.minor >= 1) {
		// 7.1's ARM types (Main/src-all/Global.cpp): the OS type gives
		// the VM's platform.
		switch id {
		case "Debian_arm64":
			return "Debian (ARM 64-bit)", true
		case "Ubuntu_arm64":
			return "Ubuntu (ARM 64-bit)", true
		case "Oracle_arm64":
			return "Oracle Linux (ARM 64-bit)", true
		case "Fedora_arm64":
			return "Fedora (ARM 64-bit)", true
		case "Other_arm64":
			return "Other/Unknown (ARM 64-bit)", true
		}
	}
	return "", false
}

// osArch is the platform an OS type makes a VM for.
func osArch(id string) string {
	if strings.HasSuffix(id, "_arm64") {
		return "ARM"
	}
	return "x86"
}

func (v *vbox) showVMInfo(args []string) {
	pos, opts, _ := options(args, nil)
	if len(pos) != 1 {
		v.syntax("Incorrect number of parameters")
		return
	}
	vm := v.s.FindVM(pos[0])
	if vm == nil {
		v.notFound(pos[0], "VBoxManageInfo.cpp")
		return
	}
	v.advanceShutdown(vm)
	_, mr := opts["--machinereadable"]
	if !mr {
		fmt.Fprintf(v.out, "Name:                        %s\nUUID:                        %s\nState:                       %s (since %s)\n", vm.Name, vm.UUID, vm.State, vm.StateChangeTime)
		return
	}
	w := v.out
	q := func(k, val string) {
		fmt.Fprintf(w, "%s=\"%s\"\n", k, strings.ReplaceAll(strings.ReplaceAll(val, `\`, `\\`), `"`, `\"`))
	}
	n := func(k string, val int) { fmt.Fprintf(w, "%s=%d\n", k, val) }
	set := func(k, def string) string {
		if s, ok := vm.Settings[k]; ok {
			return s
		}
		return def
	}
	q("name", vm.Name)
	if v.modern() {
		// VirtualBox 7.0 prints this line even in --machinereadable mode
		// (VBoxManageInfo.cpp): parsers must skip lines without '='.
		fmt.Fprintln(w, "Encryption:     disabled")
	}
	q("groups", "/")
	desc, _ := v.osDescription(vm.OSType)
	q("ostype", desc)
	q("UUID", vm.UUID)
	q("CfgFile", vm.CfgFile)
	q("SnapFldr", filepath.Join(filepath.Dir(vm.CfgFile), "Snapshots"))
	q("LogFldr", filepath.Join(filepath.Dir(vm.CfgFile), "Logs"))
	q("hardwareuuid", vm.UUID)
	n("memory", vm.Memory)
	q("pagefusion", "off")
	n("vram", atoiOr(set("vram", "8"), 8))
	n("cpuexecutioncap", 100)
	q("hpet", "off")
	if v.modern() {
		q("cpu-profile", "host")
	}
	q("chipset", "piix3")
	q("firmware", "BIOS")
	n("cpus", vm.CPUs)
	q("pae", "on")
	q("longmode", "on")
	q("triplefaultreset", "off")
	q("apic", "on")
	q("x2apic", "on")
	q("nested-hw-virt", "off")
	n("cpuid-portability-level", 0)
	q("bootmenu", "messageandmenu")
	for i := 1; i <= 4; i++ {
		def := map[int]string{1: "floppy", 2: "dvd", 3: "disk", 4: "none"}[i]
		q(fmt.Sprintf("boot%d", i), set(fmt.Sprintf("boot%d", i), def))
	}
	q("acpi", set("acpi", "on"))
	q("ioapic", set("ioapic", "on"))
	q("biosapic", "apic")
	n("biossystemtimeoffset", 0)
	q("rtcuseutc", set("rtcuseutc", "off"))
	q("hwvirtex", "on")
	q("nestedpaging", "on")
	q("largepages", "off")
	q("vtxvpid", "on")
	q("vtxux", "on")
	q("paravirtprovider", "default")
	q("effparavirtprovider", "kvm")
	q("VMState", vm.State)
	q("VMStateChangeTime", vm.StateChangeTime)
	q("graphicscontroller", set("graphicscontroller", "vmsvga"))
	n("monitorcount", 1)
	q("accelerate3d", "off")
	q("teleporterenabled", "off")
	n("teleporterport", 0)
	q("teleporteraddress", "")
	q("teleporterpassword", "")
	q("tracing-enabled", "off")
	q("tracing-allow-vm-access", "off")
	q("tracing-config", "")
	q("autostart-enabled", "off")
	n("autostart-delay", 0)
	q("defaultfrontend", "")
	q("vmprocpriority", "default")
	for i, c := range vm.Controllers {
		q(fmt.Sprintf("storagecontrollername%d", i), c.Name)
		q(fmt.Sprintf("storagecontrollertype%d", i), c.Type)
		n(fmt.Sprintf("storagecontrollerinstance%d", i), 0)
		n(fmt.Sprintf("storagecontrollermaxportcount%d", i), 30)
		n(fmt.Sprintf("storagecontrollerportcount%d", i), c.PortCount)
		q(fmt.Sprintf("storagecontrollerbootable%d", i), onOff(c.Bootable))
	}
	for _, c := range vm.Controllers {
		for port := 0; port < c.PortCount; port++ {
			a := vm.attachment(c.Name, port, 0)
			key := fmt.Sprintf("%s-%d-%d", c.Name, port, 0)
			if a == nil {
				q(key, "none")
				continue
			}
			q(key, a.Medium)
			uuid := ""
			if m := v.s.findMedium(a.Medium); m != nil {
				uuid = m.UUID
			}
			q(fmt.Sprintf("%s-ImageUUID-%d-%d", c.Name, port, 0), uuid)
			if a.Type == "dvddrive" {
				if v.modern() {
					q(fmt.Sprintf("%s-tempeject-%d-%d", c.Name, port, 0), "off")
					q(fmt.Sprintf("%s-IsEjected-%d-%d", c.Name, port, 0), "off")
				} else {
					// Before 7.0 these keys lacked the port and
					// device (VBoxManageInfo.cpp's own note).
					q(c.Name+"-tempeject", "off")
					q(c.Name+"-IsEjected", "off")
				}
			}
			if v.modern() {
				q(fmt.Sprintf("%s-hot-pluggable-%d-%d", c.Name, port, 0), "off")
				q(fmt.Sprintf("%s-nonrotational-%d-%d", c.Name, port, 0), "off")
				q(fmt.Sprintf("%s-discard-%d-%d", c.Name, port, 0), "off")
			}
		}
	}
	for i := 1; i <= 8; i++ {
		nic := vm.NIC(i)
		if nic == nil || nic.Attachment == "none" {
			q(fmt.Sprintf("nic%d", i), "none")
			continue
		}
		attachment := nic.Attachment
		switch nic.Attachment {
		case "nat":
			q(fmt.Sprintf("natnet%d", i), "nat")
		case "hostonly":
			q(fmt.Sprintf("hostonlyadapter%d", i), nic.HostOnlyAdapter)
		case "hostonlynet":
			q(fmt.Sprintf("hostonly-network%d", i), nic.HostOnlyNet)
			attachment = "hostonlynetwork"
		}
		q(fmt.Sprintf("macaddress%d", i), nic.MAC)
		q(fmt.Sprintf("cableconnected%d", i), onOff(nic.Cable))
		q(fmt.Sprintf("nic%d", i), attachment)
		q(fmt.Sprintf("nictype%d", i), nic.Type)
		q(fmt.Sprintf("nicspeed%d", i), "0")
		if nic.Attachment == "nat" {
			q("mtu", "0")
			q("sockSnd", "64")
			q("sockRcv", "64")
			q("tcpWndSnd", "64")
			q("tcpWndRcv", "64")
			for j, f := range nic.Forwards {
				q(fmt.Sprintf("Forwarding(%d)", j), f.String())
			}
		}
	}
	q("hidpointing", "ps2mouse")
	q("hidkeyboard", "ps2kbd")
	uart := set("uart1", "off")
	q("uart1", strings.Replace(uart, " ", ",", 1))
	if uart != "off" {
		mode := set("uartmode1", "disconnected")
		// The file path is printed with its backslashes as they are.
		fmt.Fprintf(w, "uartmode1=\"%s\"\n", strings.Replace(mode, " ", ",", 1))
		q("uarttype1", "16550A")
	}
	for i := 2; i <= 4; i++ {
		q(fmt.Sprintf("uart%d", i), "off")
	}
	q("audio", "none")
	q("clipboard", "disabled")
	q("draganddrop", "disabled")
	if vm.State == "running" {
		q("SessionName", "headless")
		q("VideoMode", "720,400,0")
	}
	q("vrde", "off")
	q("usb", "off")
	q("ehci", "off")
	q("xhci", "off")
	if v.s.Host.GuestAdditions && vm.State == "running" {
		q("GuestAdditionsRunLevel", "2")
		q("GuestAdditionsVersion", strings.SplitN(v.s.Host.Version, "r", 2)[0])
	}
}

// advanceShutdown moves a pending ACPI shutdown on: a guest takes a few
// looks to power off, or never does.
func (v *vbox) advanceShutdown(vm *VM) {
	if vm.ShutdownIn == nil || vm.State != "running" {
		return
	}
	if *vm.ShutdownIn <= 0 {
		vm.ShutdownIn = nil
		v.setState(vm, "poweroff")
		v.poweredOff(vm)
		return
	}
	left := *vm.ShutdownIn - 1
	vm.ShutdownIn = &left
}

func (v *vbox) setState(vm *VM, state string) {
	vm.State = state
	vm.StateChangeTime = time.Now().UTC().Format("2006-01-02T15:04:05.000000000")
}

func (vm *VM) attachment(ctl string, port, device int) *Attachment {
	for _, a := range vm.Attachments {
		if a.Controller == ctl && a.Port == port && a.Device == device {
			return a
		}
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}
