package fakevbox

import (
	"fmt"
	"io"
	"os"
)

// --- storage ----------------------------------------------------------------

func (v *vbox) storageCtl(args []string) {
	pos, opts, _ := options(args, map[string]bool{"--name": true, "--add": true, "--controller": true, "--portcount": true, "--bootable": true, "--hostiocache": true})
	if len(pos) != 1 {
		v.syntax("Incorrect number of parameters")
		return
	}
	vm := v.s.FindVM(pos[0])
	if vm == nil {
		v.notFound(pos[0], "VBoxManageStorageController.cpp")
		return
	}
	if vm.State == "running" || v.locked(vm) {
		v.lockedForSession(vm.Name, "VBoxManageStorageController.cpp")
		return
	}
	name := opts["--name"]
	for _, c := range vm.Controllers {
		if c.Name == name {
			v.fail("Storage controller named '"+name+"' already exists",
				"Details: code VBOX_E_OBJECT_IN_USE (0x80bb000c), component SessionMachine, interface IMachine, callee nsISupports",
				`Context: "AddStorageController(Bstr(pszCtl).raw(), StorageBus_SATA, ctl.asOutParam())" at line 1085 of file VBoxManageStorageController.cpp`)
			return
		}
	}
	c := &Controller{Name: name, Bus: opts["--add"], Type: opts["--controller"], PortCount: atoiOr(opts["--portcount"], 1), Bootable: opts["--bootable"] != "off"}
	if c.Type == "" {
		c.Type = "IntelAhci"
	}
	vm.Controllers = append(vm.Controllers, c)
}

func (v *vbox) storageAttach(args []string) {
	pos, opts, _ := options(args, map[string]bool{"--storagectl": true, "--port": true, "--device": true, "--type": true, "--medium": true, "--nonrotational": true, "--discard": true})
	if len(pos) != 1 {
		v.syntax("Incorrect number of parameters")
		return
	}
	vm := v.s.FindVM(pos[0])
	if vm == nil {
		v.notFound(pos[0], "VBoxManageStorageController.cpp")
		return
	}
	var ctl *Controller
	for _, c := range vm.Controllers {
		if c.Name == opts["--storagectl"] {
			ctl = c
		}
	}
	if ctl == nil {
		v.fail("Could not find a controller named '" + opts["--storagectl"] + "'")
		return
	}
	port, device := atoiOr(opts["--port"], 0), atoiOr(opts["--device"], 0)
	if port >= ctl.PortCount {
		v.fail(fmt.Sprintf("The port %d is out of range (0..%d)", port, ctl.PortCount-1))
		return
	}
	medium := opts["--medium"]
	kept := vm.Attachments[:0]
	for _, a := range vm.Attachments {
		if !(a.Controller == ctl.Name && a.Port == port && a.Device == device) {
			kept = append(kept, a)
		}
	}
	vm.Attachments = kept
	if medium == "none" || medium == "" {
		return
	}
	if _, err := os.Stat(medium); err != nil {
		v.fileNotFound(medium)
		return
	}
	kind := "disk"
	if opts["--type"] == "dvddrive" {
		kind = "dvd"
	}
	if kind == "dvd" && v.s.findMedium(medium) == nil {
		v.s.Media = append(v.s.Media, &Medium{Path: medium, UUID: v.s.newUUID(), Kind: kind, Format: "RAW", CapacityMB: int(fileSize(medium) >> 20)})
	} else if kind == "disk" && v.openMedium(medium) == nil {
		return
	}
	vm.Attachments = append(vm.Attachments, &Attachment{Controller: ctl.Name, Port: port, Device: device, Type: opts["--type"], Medium: medium})
}

// mediumArgs drops the optional leading "disk"/"dvd"/"floppy".
func mediumArgs(pos []string) (kind string, rest []string) {
	if len(pos) > 0 && (pos[0] == "disk" || pos[0] == "dvd" || pos[0] == "floppy") {
		return pos[0], pos[1:]
	}
	return "disk", pos
}

func (v *vbox) cloneMedium(args []string) {
	pos, opts, _ := options(args, map[string]bool{"--format": true, "--variant": true})
	_, pos = mediumArgs(pos)
	if len(pos) != 2 {
		v.syntax("Incorrect number of parameters")
		return
	}
	src, dst := pos[0], pos[1]
	// The source is opened, and so stays in the media registry after the
	// clone (canonical/multipass#2373).
	from := v.openMedium(src)
	if from == nil {
		return
	}
	size := int64(from.CapacityMB) << 20
	if _, err := os.Stat(dst); err == nil || v.s.findMedium(dst) != nil {
		v.fail(v.tr("Failed to clone medium"),
			fmt.Sprintf("Could not create the clone medium '%s' (VERR_ALREADY_EXISTS)", dst),
			"Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MediumWrap, interface IMedium")
		return
	}
	format := opts["--format"]
	if format == "" {
		format = "VDI"
	}
	uuid := v.s.newUUID()
	if err := writeVDI(dst, size, uuid); err != nil {
		v.fail(fmt.Sprintf("Could not create the clone medium '%s' (VERR_PATH_NOT_FOUND)", dst))
		return
	}
	v.s.Media = append(v.s.Media, &Medium{Path: dst, UUID: uuid, Kind: "disk", Format: format, CapacityMB: int(size >> 20)})
	io.WriteString(v.errw, progress)
	fmt.Fprintf(v.out, v.tr("Clone medium created in format '%s'. UUID: %s\n"), format, uuid)
}

func (v *vbox) convertFromRaw(args []string) {
	pos, _, _ := options(args, map[string]bool{"--format": true, "--variant": true, "--uuid": true})
	if len(pos) != 2 {
		v.syntax("Incorrect number of parameters")
		return
	}
	src, dst := pos[0], pos[1]
	st, err := os.Stat(src)
	if err != nil {
		fmt.Fprintf(v.errw, "%s: error: Cannot open file \"%s\": VERR_FILE_NOT_FOUND\n", v.prefix, src)
		v.exit = exitFail
		return
	}
	if _, err := os.Stat(dst); err == nil {
		fmt.Fprintf(v.errw, "%s: error: Cannot create the disk image \"%s\": VERR_ALREADY_EXISTS\n", v.prefix, dst)
		v.exit = exitFail
		return
	}
	fmt.Fprintf(v.out, "Converting from raw image file=\"%s\" to file=\"%s\"...\n", src, dst)
	fmt.Fprintf(v.out, "Creating dynamic image with size %d bytes (%dMB)...\n", st.Size(), (st.Size()+(1<<20)-1)>>20)
	if err := writeVDI(dst, st.Size(), v.s.newUUID()); err != nil {
		fmt.Fprintf(v.errw, "%s: error: Cannot create the disk image \"%s\": VERR_PATH_NOT_FOUND\n", v.prefix, dst)
		v.exit = exitFail
	}
}

// openMedium opens a disk image as IVirtualBox::OpenMedium does: one the
// media registry has under that path is the registered medium, and its
// file must still carry the registered UUID (Medium::i_queryInfo,
// MediumImpl.cpp); any other is registered now, with the file's UUID.
func (v *vbox) openMedium(path string) *Medium {
	if _, err := os.Stat(path); err != nil {
		v.fileNotFound(path)
		return nil
	}
	if m := v.s.findMedium(path); m != nil {
		if got := vdiUUID(path); got != "" && got != m.UUID {
			code := "NS_ERROR_FAILURE"
			if v.s.Host.OS == "windows" {
				code = "E_FAIL"
			}
			v.fail(fmt.Sprintf(v.trAPI("UUID {%s} of the medium '%s' does not match the value {%s} stored in the media registry ('%s')"), got, path, m.UUID, v.registryFile()),
				fmt.Sprintf("Details: code %s (0x80004005), component MediumWrap, interface IMedium", code))
			return nil
		}
		return m
	}
	format, size, err := readImage(path)
	if err != nil {
		v.fail(fmt.Sprintf("Could not open the medium '%s'.", path),
			fmt.Sprintf("VD: error VERR_NOT_SUPPORTED opening image file '%s' (%v) (VERR_NOT_SUPPORTED)", path, err),
			"Details: code VBOX_E_IPRT_ERROR (0x80bb0005), component MediumWrap, interface IMedium, callee nsISupports")
		return nil
	}
	uuid := vdiUUID(path)
	if uuid == "" {
		uuid = v.s.newUUID()
	}
	m := &Medium{Path: path, UUID: uuid, Kind: "disk", Format: format, CapacityMB: int(size >> 20)}
	v.s.Media = append(v.s.Media, m)
	return m
}

// registryFile is where VBoxSVC keeps the global media registry.
func (v *vbox) registryFile() string {
	if v.s.Host.OS == "darwin" {
		return "/Users/user/Library/VirtualBox/VirtualBox.xml"
	}
	return "/home/user/.config/VirtualBox/VirtualBox.xml"
}

func (v *vbox) modifyMedium(args []string) {
	pos, opts, _ := options(args, map[string]bool{"--resize": true, "--resizebyte": true, "--type": true})
	_, pos = mediumArgs(pos)
	if len(pos) != 1 {
		v.syntax("Incorrect number of parameters")
		return
	}
	m := v.openMedium(pos[0])
	if m == nil {
		return
	}
	if r, ok := opts["--resize"]; ok {
		mb := atoiOr(r, -1)
		if mb < 0 {
			v.syntax("Invalid parameter '%s'", r)
			return
		}
		if mb < m.CapacityMB {
			v.fail("Failed to resize medium",
				fmt.Sprintf("Shrinking is not yet supported for medium '%s'", m.Path),
				"Details: code VBOX_E_NOT_SUPPORTED (0x80bb0009), component MediumWrap, interface IMedium")
			return
		}
		m.CapacityMB = mb
		writeVDI(m.Path, int64(mb)<<20, m.UUID)
		io.WriteString(v.errw, progress)
	}
}

func (v *vbox) showMediumInfo(args []string) {
	pos, _, _ := options(args, nil)
	_, pos = mediumArgs(pos)
	if len(pos) != 1 {
		v.syntax("Incorrect number of parameters")
		return
	}
	m := v.openMedium(pos[0])
	if m == nil {
		return
	}
	fmt.Fprintf(v.out, "UUID:           %s\n", m.UUID)
	fmt.Fprintf(v.out, "Parent UUID:    base\n")
	fmt.Fprintf(v.out, "State:          created\n")
	fmt.Fprintf(v.out, "Type:           normal (base)\n")
	fmt.Fprintf(v.out, "Location:       %s\n", m.Path)
	fmt.Fprintf(v.out, "Storage format: %s\n", m.Format)
	fmt.Fprintf(v.out, "Format variant: dynamic default\n")
	fmt.Fprintf(v.out, v.tr("Capacity:       %d MBytes\n"), m.CapacityMB)
	fmt.Fprintf(v.out, "Size on disk:   2 MBytes\n")
	fmt.Fprintf(v.out, "Encryption:     disabled\n")
	fmt.Fprintf(v.out, "Property:       AllocationBlockSize=1048576\n")
	for _, vm := range v.s.VMs {
		for _, a := range vm.Attachments {
			if a.Medium == m.Path {
				fmt.Fprintf(v.out, "In use by VMs:  %s (UUID: %s)\n", vm.Name, vm.UUID)
			}
		}
	}
}

func (v *vbox) closeMedium(args []string) {
	pos, opts, _ := options(args, nil)
	_, pos = mediumArgs(pos)
	if len(pos) != 1 {
		v.syntax("Incorrect number of parameters")
		return
	}
	path := pos[0]
	m := v.s.findMedium(path)
	if m == nil {
		if _, err := os.Stat(path); err != nil {
			v.fileNotFound(path)
			return
		}
	}
	for _, vm := range v.s.VMs {
		for _, a := range vm.Attachments {
			if a.Medium == path {
				v.fail(fmt.Sprintf("Cannot close medium '%s' because it is still attached to 1 virtual machines", path),
					"Details: code VBOX_E_OBJECT_IN_USE (0x80bb000c), component MediumWrap, interface IMedium, callee nsISupports")
				return
			}
		}
	}
	v.s.removeMedium(path)
	if _, del := opts["--delete"]; del {
		os.Remove(path)
		io.WriteString(v.errw, progress)
	}
}
