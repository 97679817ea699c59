package fakevbox

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// --- startvm, controlvm -----------------------------------------------------

func (v *vbox) startVM(args []string) {
	pos, opts, _ := options(args, map[string]bool{"--type": true})
	if len(pos) != 1 {
		v.syntax("Incorrect number of parameters")
		return
	}
	vm := v.s.FindVM(pos[0])
	if vm == nil {
		v.notFound(pos[0], "VBoxManageMisc.cpp")
		return
	}
	if vm.State == "running" || vm.State == "paused" || v.locked(vm) {
		v.fail(fmt.Sprintf(v.trAPI("The machine '%s' is already locked by a session (or being locked or unlocked)"), vm.Name),
			"Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports",
			`Context: "LaunchVMProcess(a->session, sessionType.raw(), ComSafeArrayAsInParam(aBstrEnv), progress.asOutParam())" at line 727 of file VBoxManageMisc.cpp`)
		return
	}
	if t := opts["--type"]; t != "" && t != "headless" && t != "gui" && t != "separate" {
		v.syntax("Invalid session type '%s'", t)
		return
	}
	// handleStartVM prints these two lines untranslated (RTPrintf).
	fmt.Fprintf(v.out, "Waiting for VM \"%s\" to power on...\n", vm.Name)
	if vm.Arch == "x86" && v.arm() {
		// ConsoleImpl.cpp: an ARM host runs no x86 VM (unless the hidden
		// VBoxInternal2/EnableX86OnArm is set).
		v.fail(fmt.Sprintf(v.trAPI("Cannot run the machine because its platform architecture %s is not supported on %s"), "x86", "ARM"),
			"Details: code VBOX_E_PLATFORM_ARCH_NOT_SUPPORTED (0x80bb0012), component ConsoleWrap, interface IConsole")
		return
	}
	if v.s.Host.NoVTx {
		// VBoxManage on Windows exits 0 here: only stderr tells.
		fmt.Fprintf(v.errw, "%s: error: VT-x is not available (VERR_VMX_NO_VMX)\n", v.prefix)
		fmt.Fprintf(v.errw, "%s: error: Details: code E_FAIL (0x80004005), component ConsoleWrap, interface IConsole\n", v.prefix)
		v.setState(vm, "poweroff")
		return
	}
	for _, nic := range vm.NICs {
		if nic.Attachment == "hostonly" && !v.hostOnlyIfExists(nic.HostOnlyAdapter) {
			v.fail(fmt.Sprintf("Failed to open/create the internal network 'HostInterfaceNetworking-%s' (VERR_INTNET_FLT_IF_NOT_FOUND).", nic.HostOnlyAdapter),
				fmt.Sprintf("Failed to attach the network LUN (VERR_INTNET_FLT_IF_NOT_FOUND)"),
				"Details: code NS_ERROR_FAILURE (0x80004005), component ConsoleWrap, interface IConsole")
			return
		}
		if nic.Attachment == "hostonlynet" && v.findHostOnlyNet(nic.HostOnlyNet) == nil {
			v.fail(fmt.Sprintf("Host-only network '%s' does not exist", nic.HostOnlyNet),
				"Details: code NS_ERROR_FAILURE (0x80004005), component ConsoleWrap, interface IConsole")
			return
		}
	}
	for _, a := range vm.Attachments {
		if _, err := os.Stat(a.Medium); err != nil {
			v.fail(fmt.Sprintf("Could not open the medium '%s'.", a.Medium),
				fmt.Sprintf("VD: error VERR_FILE_NOT_FOUND opening image file '%s' (VERR_FILE_NOT_FOUND)", a.Medium),
				"Details: code NS_ERROR_FAILURE (0x80004005), component MediumWrap, interface IMedium")
			return
		}
		if a.Type == "hdd" && v.openMedium(a.Medium) == nil {
			return // a disk re-made under a registered path
		}
	}
	v.setState(vm, "running")
	vm.ShutdownIn = nil
	if v.s.Host.GuestAdditions {
		if vm.GuestProps == nil {
			vm.GuestProps = map[string]string{}
		}
		vm.GuestProps["/VirtualBox/GuestInfo/OS/Product"] = "Linux"
		vm.GuestProps["/VirtualBox/GuestInfo/Net/Count"] = strconv.Itoa(len(vm.NICs))
		for _, nic := range vm.NICs {
			i := nic.Index - 1
			vm.GuestProps[fmt.Sprintf("/VirtualBox/GuestInfo/Net/%d/MAC", i)] = nic.MAC
			if nic.Attachment == "nat" {
				vm.GuestProps[fmt.Sprintf("/VirtualBox/GuestInfo/Net/%d/V4/IP", i)] = "10.0.2.15"
			}
			vm.GuestProps[fmt.Sprintf("/VirtualBox/GuestInfo/Net/%d/Status", i)] = "Up"
		}
	}
	fmt.Fprintf(v.out, "VM \"%s\" has been successfully started.\n", vm.Name)
}

func (v *vbox) controlVM(args []string) {
	if len(args) < 2 {
		v.syntax("Not enough parameters")
		return
	}
	vm := v.s.FindVM(args[0])
	if vm == nil {
		v.notFound(args[0], "VBoxManageControlVM.cpp")
		return
	}
	if vm.State != "running" && vm.State != "paused" {
		v.notRunning(vm.Name)
		return
	}
	switch args[1] {
	case "acpipowerbutton":
		if v.s.Host.ShutdownPolls < 0 {
			return // the guest ignores the button
		}
		n := v.s.Host.ShutdownPolls
		vm.ShutdownIn = &n
	case "poweroff":
		vm.ShutdownIn = nil
		v.setState(vm, "poweroff")
		v.poweredOff(vm)
		io.WriteString(v.errw, progress)
	case "natpf1":
		// controlvm NAME natpf1 delete RULE: a running VM's NAT rules.
		if len(args) != 4 || args[2] != "delete" {
			v.syntax("Invalid parameter '%s'", strings.Join(args[2:], " "))
			return
		}
		n := vm.NIC(1)
		kept := n.Forwards[:0]
		for _, f := range n.Forwards {
			if f.Name != args[3] {
				kept = append(kept, f)
			}
		}
		n.Forwards = kept
	case "pause":
		v.setState(vm, "paused")
	case "resume":
		v.setState(vm, "running")
	default:
		v.syntax("Invalid parameter '%s'", args[1])
	}
}
