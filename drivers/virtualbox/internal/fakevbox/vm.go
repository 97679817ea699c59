package fakevbox

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// --- createvm, registervm, unregistervm ---------------------------------------

func (v *vbox) createVM(args []string) {
	_, opts, _ := options(args, map[string]bool{"--name": true, "--ostype": true, "--basefolder": true, "--uuid": true, "--groups": true, "--default": false})
	name := opts["--name"]
	if name == "" {
		v.syntax("%s", v.tr("Parameter --name is required"))
		return
	}
	osType := opts["--ostype"]
	if osType == "" {
		osType = "Other"
	}
	if _, ok := v.osDescription(osType); !ok {
		v.fail("Guest OS type '"+osType+"' is invalid",
			"Details: code E_INVALIDARG (0x80070057), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports")
		return
	}
	// 7.1 takes the VM's platform from the OS type (VBoxManageMisc.cpp);
	// an x86 host makes x86 VMs only (VirtualBoxImpl.cpp, createMachine),
	// an ARM host makes either but runs only ARM ones.
	arch := osArch(osType)
	if arch == "ARM" && !v.arm() {
		v.fail(fmt.Sprintf(v.trAPI("'Creating VMs for platform architecture %s not supported on %s"), "ARM", "x86"),
			"Details: code VBOX_E_PLATFORM_ARCH_NOT_SUPPORTED (0x80bb0012), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports",
			`Context: "CreateMachine(bstrSettingsFile.raw(), bstrName.raw(), platformArch, ComSafeArrayAsInParam(groups), bstrOsTypeId.raw(), createFlags.raw(), bstrCipher.raw(), bstrPasswordId.raw(), Bstr(strPassword).raw(), machine.asOutParam())" at line 437 of file VBoxManageMisc.cpp`)
		return
	}
	base := opts["--basefolder"]
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, "VirtualBox VMs")
	}
	cfg := filepath.Join(base, name, name+".vbox")
	_, statErr := os.Stat(cfg)
	if v.s.FindVM(name) != nil || statErr == nil {
		v.fail(fmt.Sprintf(v.trAPI("Machine settings file '%s' already exists"), cfg),
			"Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MachineWrap, interface IMachine, callee nsISupports",
			`Context: "CreateMachine(bstrSettingsFile.raw(), bstrName.raw(), ComSafeArrayAsInParam(groups), bstrOsTypeId.raw(), createFlags.raw(), machine.asOutParam())" at line 418 of file VBoxManageMisc.cpp`)
		return
	}
	if _, reg := opts["--register"]; !reg {
		fmt.Fprintf(v.out, v.tr("Virtual machine '%s' is created%s.\nUUID: %s\nSettings file: '%s'\n"), name, "", v.s.newUUID(), cfg)
		return
	}
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		v.fail("Could not create the directory '" + filepath.Dir(cfg) + "' (VERR_ACCESS_DENIED)")
		return
	}
	uuid := opts["--uuid"]
	if uuid == "" {
		uuid = v.s.newUUID()
	}
	vm := &VM{
		Name: name, UUID: uuid, OSType: osType, Arch: arch, CfgFile: cfg, Memory: 128, CPUs: 1,
		Settings: map[string]string{},
		// A new VM has a NAT adapter with a fresh MAC, like the GUI's.
		NICs: []*NIC{{Index: 1, Attachment: "nat", Type: "82540EM", MAC: v.s.newMAC(), Cable: true}},
	}
	v.setState(vm, "poweroff")
	if err := os.WriteFile(cfg, []byte(vboxXML(vm)), 0o644); err != nil {
		v.fail("Could not write the settings file '" + cfg + "'")
		return
	}
	v.s.VMs = append(v.s.VMs, vm)
	fmt.Fprintf(v.out, v.tr("Virtual machine '%s' is created%s.\nUUID: %s\nSettings file: '%s'\n"), name, v.tr(" and registered"), uuid, cfg)
}

// vboxXML is a stand-in settings file: enough for registervm to find the
// machine again.
func vboxXML(vm *VM) string {
	return fmt.Sprintf("<?xml version=\"1.0\"?>\n<VirtualBox xmlns=\"http://www.virtualbox.org/\" version=\"1.19-linux\">\n  <Machine uuid=\"{%s}\" name=\"%s\" OSType=\"%s\"/>\n</VirtualBox>\n", vm.UUID, vm.Name, vm.OSType)
}

// unregistered keeps VMs unregistered without --delete, by settings file,
// so that registervm brings them back as they were.
const unregisteredSuffix = ".fakevbox-unregistered.json"

func (v *vbox) registerVM(args []string) {
	pos, _, _ := options(args, nil)
	if len(pos) != 1 {
		v.syntax("Incorrect number of parameters")
		return
	}
	path := pos[0]
	if _, err := os.Stat(path); err != nil {
		v.fail("Could not find file for the VM settings '"+path+"' (VERR_FILE_NOT_FOUND)",
			"Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MachineWrap, interface IMachine, callee nsISupports",
			`Context: "OpenMachine(Bstr(a->argv[0]).raw(), machine.asOutParam())" at line 162 of file VBoxManageMisc.cpp`)
		return
	}
	for _, vm := range v.s.VMs {
		if vm.CfgFile == path {
			v.fail("Cannot register the VM '"+vm.Name+"' {"+vm.UUID+"} because a VM with this UUID already exists",
				"Details: code VBOX_E_OBJECT_IN_USE (0x80bb000c), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports")
			return
		}
	}
	saved, err := os.ReadFile(path + unregisteredSuffix)
	if err != nil {
		v.fail("Settings file '" + path + "' is not a machine the fake knows")
		return
	}
	var vm VM
	if err := jsonUnmarshal(saved, &vm); err != nil {
		v.fail("Invalid settings file '" + path + "'")
		return
	}
	os.Remove(path + unregisteredSuffix)
	v.s.VMs = append(v.s.VMs, &vm)
}

func (v *vbox) unregisterVM(args []string) {
	pos, opts, _ := options(args, nil)
	if len(pos) != 1 {
		v.syntax("Incorrect number of parameters")
		return
	}
	vm := v.s.FindVM(pos[0])
	if vm == nil {
		v.notFound(pos[0], "VBoxManageMisc.cpp")
		return
	}
	// Machine::unregister refuses while a session holds the machine, and
	// for a moment after a power-off, until the VM process has let go.
	if vm.State == "running" || vm.State == "paused" || v.locked(vm) {
		v.fail(fmt.Sprintf(v.trAPI("Cannot unregister the machine '%s' while it is locked"), vm.Name),
			"Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports",
			`Context: "Unregister(CleanupMode_DetachAllReturnHardDisksOnly, ComSafeArrayAsOutParam(aMedia))" at line 201 of file VBoxManageMisc.cpp`)
		return
	}
	out := v.s.VMs[:0]
	for _, x := range v.s.VMs {
		if x != vm {
			out = append(out, x)
		}
	}
	v.s.VMs = out
	_, del := opts["--delete"]
	if !del {
		data, _ := jsonMarshal(vm)
		os.WriteFile(vm.CfgFile+unregisteredSuffix, data, 0o644)
		return
	}
	// --delete removes the hard disks, the settings and the logs; DVD
	// images are left alone (they stay in the media registry).
	for _, a := range vm.Attachments {
		if a.Type == "hdd" {
			os.Remove(a.Medium)
			v.s.removeMedium(a.Medium)
		}
	}
	os.Remove(vm.CfgFile)
	os.Remove(vm.CfgFile + "-prev")
	os.RemoveAll(filepath.Join(filepath.Dir(vm.CfgFile), "Logs"))
	os.Remove(filepath.Dir(vm.CfgFile)) // only when empty, as VirtualBox does
	io.WriteString(v.errw, progress)
}

// --- modifyvm ---------------------------------------------------------------

// vmOpt is a modifyvm option: its 6.1 name, the name 7.0 gave it (same when
// empty), whether it ends in an adapter number, how many values it takes.
type vmOpt struct {
	legacy, modern string
	indexed        bool
}

func vmOpts() []vmOpt {
	return []vmOpt{
		{"--ostype", "--os-type", false},
		{"--memory", "", false},
		{"--cpus", "", false},
		{"--vram", "", false},
		{"--acpi", "", false},
		{"--ioapic", "", false},
		{"--rtcuseutc", "--rtc-use-utc", false},
		{"--graphicscontroller", "--graphicscontroller", false},
		{"--boot", "", true},
		{"--nic", "", true},
		{"--nictype", "--nic-type", true},
		{"--macaddress", "--mac-address", true},
		{"--cableconnected", "--cable-connected", true},
		{"--natpf", "--nat-pf", true},
		{"--hostonlyadapter", "--host-only-adapter", true},
		{"--hostonlynet", "--host-only-net", true}, // 7.x with vmnet only
		{"--uart", "", true},
		{"--uartmode", "--uart-mode", true},
		{"--audio", "", false},
		{"--usb", "", false},
		{"--description", "", false},
	}
}

// lookupVMOpt resolves an option as this version reads it: 6.1 knows only
// the legacy names, 7.x both.
func (v *vbox) lookupVMOpt(arg string) (opt vmOpt, index int, ok bool) {
	for _, o := range vmOpts() {
		names := []string{o.legacy}
		if v.modern() && o.modern != "" {
			names = append(names, o.modern)
		}
		for _, n := range names {
			if !o.indexed {
				if arg == n {
					return o, 0, true
				}
				continue
			}
			if strings.HasPrefix(arg, n) {
				idx, err := strconv.Atoi(arg[len(n):])
				if err == nil && idx >= 1 && idx <= 8 {
					if o.legacy == "--hostonlynet" && !v.vmnet() {
						return vmOpt{}, 0, false
					}
					return o, idx, true
				}
			}
		}
	}
	return vmOpt{}, 0, false
}

func (v *vbox) modifyVM(args []string) {
	if len(args) < 1 {
		v.syntax("Not enough parameters")
		return
	}
	vm := v.s.FindVM(args[0])
	if vm == nil {
		v.notFound(args[0], "VBoxManageModifyVM.cpp")
		return
	}
	// Parse everything first: VBoxManage reports a bad option before it
	// changes anything.
	type change struct {
		opt   vmOpt
		index int
		vals  []string
	}
	var changes []change
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		name, val, hasVal := strings.Cut(rest[i], "=")
		opt, idx, ok := v.lookupVMOpt(name)
		if !ok {
			v.syntax("Unknown option: %s", name)
			return
		}
		nvals := 1
		if (opt.legacy == "--uart" || opt.legacy == "--uartmode" || opt.legacy == "--natpf") && !hasVal && i+1 < len(rest) {
			// "--uart1 0x3F8 4", "--uartmode1 file PATH", "--natpf1 delete NAME".
			next := rest[i+1]
			if (opt.legacy == "--uart" && next != "off") || (opt.legacy == "--uartmode" && next != "disconnected") || (opt.legacy == "--natpf" && next == "delete") {
				nvals = 2
			}
		}
		var vals []string
		if hasVal {
			vals = []string{val}
		} else {
			vals = rest[i+1 : min(i+1+nvals, len(rest))]
			if len(vals) < nvals {
				v.syntax("Missing value for option %s", name)
				return
			}
			i += nvals
		}
		changes = append(changes, change{opt, idx, vals})
	}
	if vm.State == "running" || vm.State == "paused" || v.locked(vm) {
		v.lockedForSession(vm.Name, "VBoxManageModifyVM.cpp")
		return
	}
	for _, c := range changes {
		val := strings.Join(c.vals, " ")
		nic := func() *NIC {
			n := vm.NIC(c.index)
			if n == nil {
				n = &NIC{Index: c.index, Attachment: "none", Type: "82540EM", MAC: v.s.newMAC(), Cable: true}
				vm.NICs = append(vm.NICs, n)
				sort.Slice(vm.NICs, func(i, j int) bool { return vm.NICs[i].Index < vm.NICs[j].Index })
			}
			return n
		}
		switch c.opt.legacy {
		case "--memory":
			vm.Memory = atoiOr(val, vm.Memory)
		case "--cpus":
			vm.CPUs = atoiOr(val, vm.CPUs)
		case "--ostype":
			vm.OSType = val
		case "--boot":
			vm.Settings[fmt.Sprintf("boot%d", c.index)] = val
		case "--nic":
			switch val {
			case "none", "null", "nat", "hostonly", "bridged", "intnet":
			case "hostonlynet":
				if !v.vmnet() {
					v.fail(fmt.Sprintf("Invalid type '%s' specfied for NIC %d", val, c.index))
					return
				}
			default:
				v.fail(fmt.Sprintf("Invalid type '%s' specfied for NIC %d", val, c.index))
				return
			}
			nic().Attachment = val
		case "--nictype":
			nic().Type = val
		case "--macaddress":
			if val == "auto" {
				val = v.s.newMAC()
			}
			nic().MAC = strings.ToUpper(val)
		case "--cableconnected":
			nic().Cable = val == "on"
		case "--hostonlyadapter":
			nic().HostOnlyAdapter = val
		case "--hostonlynet":
			nic().HostOnlyNet = val
		case "--natpf":
			n := nic()
			if c.vals[0] == "delete" {
				name := c.vals[len(c.vals)-1]
				kept := n.Forwards[:0]
				found := false
				for _, f := range n.Forwards {
					if f.Name == name {
						found = true
						continue
					}
					kept = append(kept, f)
				}
				if !found {
					v.fail("Code NS_ERROR_INVALID_ARG (0x80070057) - Invalid argument value (extended info not available)",
						`Context: "RemoveRedirect(Bstr(ValueUnion.psz).raw())" at line 1872 of file VBoxManageModifyVM.cpp`)
					return
				}
				n.Forwards = kept
				continue
			}
			parts := strings.Split(val, ",")
			if len(parts) != 6 {
				v.fail("Invalid NAT rule '" + val + "'")
				return
			}
			for _, f := range n.Forwards {
				if f.Name == parts[0] {
					v.fail("A NAT rule of this name already exists",
						"Details: code NS_ERROR_INVALID_ARG (0x80070057), component NATEngineWrap, interface INATEngine, callee nsISupports",
						`Context: "AddRedirect(Bstr(strName).raw(), proto, Bstr(strHostIp).raw(), RTStrToUInt16(strHostPort), Bstr(strGuestIp).raw(), RTStrToUInt16(strGuestPort))" at line 1849 of file VBoxManageModifyVM.cpp`)
					return
				}
			}
			n.Forwards = append(n.Forwards, Forward{parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]})
		case "--uart":
			vm.Settings[fmt.Sprintf("uart%d", c.index)] = val
		case "--uartmode":
			vm.Settings[fmt.Sprintf("uartmode%d", c.index)] = val
		default:
			vm.Settings[strings.TrimPrefix(c.opt.legacy, "--")] = val
		}
	}
}
