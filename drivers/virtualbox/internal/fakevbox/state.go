// Package fakevbox is a stand-in for VirtualBox's VBoxManage, for tests on
// machines where VirtualBox cannot be installed. The command in
// cmd/VBoxManage runs it: every invocation loads the "VirtualBox" from a JSON
// file (FAKEVBOX_STATE), answers as VBoxManage 6.1 or 7.x does (same output
// formats, same error texts, same exit codes, quirks included), saves the
// file and appends the call to the file's log.
//
// The formats follow VirtualBox's own sources (VBoxManageInfo.cpp,
// VBoxManageList.cpp, VBoxManageHostonly.cpp, VBoxManageGuestProp.cpp) and
// output captured in public bug reports; the places where 6.1 and 7.x
// differ are marked. So do its rules: networks.conf as VBoxNetAdpCtl.cpp
// reads it, the language as VirtualBoxTranslator.cpp picks it (i18n.go),
// the platform as 7.1 takes it from the OS type, the session lock that
// outlives a power-off, and the media registry's UUIDs (MediumImpl.cpp).
package fakevbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Environment variables the fake reads.
const (
	// EnvState names the JSON file holding the fake VirtualBox (required).
	EnvState = "FAKEVBOX_STATE"
	// EnvVersion overrides Host.Version, e.g. "7.1.4r165100".
	EnvVersion = "FAKEVBOX_VERSION"
	// EnvDelay makes every call take this many milliseconds, to widen the
	// window in which overlapping calls are caught.
	EnvDelay = "FAKEVBOX_DELAY_MS"
)

// Versions of VirtualBox the tests use, as `VBoxManage --version` prints them.
const (
	Version52 = "5.2.44r139111"
	Version61 = "6.1.50r161033"
	Version70 = "7.0.20r163906"
	Version71 = "7.1.4r165100"
)

// Host is the machine VirtualBox runs on, as the tests set it up.
type Host struct {
	// Version is what --version prints; FAKEVBOX_VERSION overrides it.
	Version string `json:"version"`
	// OS is the host's GOOS: "linux" (default), "darwin" or "windows".
	// VirtualBox 7 on macOS has host-only networks (vmnet) and no host-only
	// interfaces; everywhere else it is the other way round.
	OS string `json:"os,omitempty"`
	// NetworksConfFile stands for /etc/vbox/networks.conf: VBoxNetAdpCtl
	// reads it again at every `hostonlyif ipconfig`. Empty, or a path with
	// no file: the file does not exist, and only 192.168.56.0/21 is allowed.
	NetworksConfFile string `json:"networksConfFile,omitempty"`
	// Arch is the host's CPU: "amd64" (default) or "arm64" (Apple Silicon,
	// where VirtualBox 7.1 runs ARM guests only).
	Arch string `json:"arch,omitempty"`
	// Language is VirtualBox's own language setting (`VBoxManage
	// setproperty language ru_RU`): it wins over the environment, for
	// VBoxManage and VBoxSVC alike (7.0 and later).
	Language string `json:"language,omitempty"`
	// SVCLocale is the LC_ALL VBoxSVC was started with, e.g. by a GUI in a
	// Russian desktop session; empty: the caller's environment, as when
	// VBoxManage starts VBoxSVC itself.
	SVCLocale string `json:"svcLocale,omitempty"`
	// UnlockDelayMs is how long a VM's session stays locked after the VM
	// powered off, while its process exits: unregistervm and modifyvm fail
	// meanwhile (hashicorp/vagrant#8104, hashicorp/packer#8059).
	UnlockDelayMs int `json:"unlockDelayMs,omitempty"`
	// NoVTx makes startvm fail as it does without VT-x/AMD-V: the error on
	// stderr but exit code 0, as VBoxManage on Windows does.
	NoVTx bool `json:"noVTx,omitempty"`
	// KernelModuleWarning makes --version print the vboxdrv warning of a
	// Linux host without the kernel module before the version.
	KernelModuleWarning bool `json:"kernelModuleWarning,omitempty"`
	// GuestAdditions makes running guests publish /VirtualBox/GuestInfo/*
	// guest properties.
	GuestAdditions bool `json:"guestAdditions,omitempty"`
	// ShutdownPolls is how many showvminfo calls a guest takes to power off
	// after acpipowerbutton (0: the first one sees it off); -1 makes guests
	// ignore the button (a guest stuck in shutdown).
	ShutdownPolls int `json:"shutdownPolls,omitempty"`
}

// State is the whole fake VirtualBox: what VBoxSVC would hold.
type State struct {
	Host         Host           `json:"host"`
	VMs          []*VM          `json:"vms,omitempty"`
	HostOnlyIfs  []*HostOnlyIf  `json:"hostOnlyIfs,omitempty"`
	HostOnlyNets []*HostOnlyNet `json:"hostOnlyNets,omitempty"`
	Media        []*Medium      `json:"media,omitempty"`
	Faults       []*Fault       `json:"faults,omitempty"`
	Calls        []Call         `json:"calls,omitempty"`
	// Seq numbers the UUIDs and MACs the fake hands out, so that runs are
	// reproducible.
	Seq int `json:"seq"`
}

// VM is a registered virtual machine.
type VM struct {
	Name            string            `json:"name"`
	UUID            string            `json:"uuid"`
	OSType          string            `json:"osType"`
	CfgFile         string            `json:"cfgFile"`
	State           string            `json:"state"` // poweroff, running, paused, aborted, ...
	StateChangeTime string            `json:"stateChangeTime"`
	Memory          int               `json:"memory"`
	CPUs            int               `json:"cpus"`
	Settings        map[string]string `json:"settings,omitempty"` // other modifyvm settings by their 6.1 name
	NICs            []*NIC            `json:"nics"`
	Controllers     []*Controller     `json:"controllers,omitempty"`
	Attachments     []*Attachment     `json:"attachments,omitempty"`
	GuestProps      map[string]string `json:"guestProps,omitempty"`
	// ShutdownIn counts the showvminfo calls left until a pending ACPI
	// shutdown completes; nil when none is pending.
	ShutdownIn *int `json:"shutdownIn,omitempty"`
	// UnlockAt is when (Unix nanoseconds) the session of a VM that just
	// powered off is unlocked; 0: it is.
	UnlockAt int64 `json:"unlockAt,omitempty"`
	// Arch is the VM's platform: "x86" or "ARM", from its OS type.
	Arch string `json:"arch,omitempty"`
}

// NIC is one of a VM's eight network adapters.
type NIC struct {
	Index           int       `json:"index"`
	Attachment      string    `json:"attachment"` // none, nat, hostonly, hostonlynet
	Type            string    `json:"type"`
	MAC             string    `json:"mac"`
	Cable           bool      `json:"cable"`
	HostOnlyAdapter string    `json:"hostOnlyAdapter,omitempty"`
	HostOnlyNet     string    `json:"hostOnlyNet,omitempty"`
	Forwards        []Forward `json:"forwards,omitempty"`
}

// Forward is a NAT port-forwarding rule.
type Forward struct {
	Name      string `json:"name"`
	Proto     string `json:"proto"`
	HostIP    string `json:"hostIP"`
	HostPort  string `json:"hostPort"`
	GuestIP   string `json:"guestIP"`
	GuestPort string `json:"guestPort"`
}

// String is the rule as VBoxManage takes and prints it.
func (f Forward) String() string {
	return strings.Join([]string{f.Name, f.Proto, f.HostIP, f.HostPort, f.GuestIP, f.GuestPort}, ",")
}

// Controller is a storage controller.
type Controller struct {
	Name      string `json:"name"`
	Bus       string `json:"bus"`  // sata, ide
	Type      string `json:"type"` // IntelAhci, PIIX4
	PortCount int    `json:"portCount"`
	Bootable  bool   `json:"bootable"`
}

// Attachment is a medium in a controller's slot.
type Attachment struct {
	Controller string `json:"controller"`
	Port       int    `json:"port"`
	Device     int    `json:"device"`
	Type       string `json:"type"` // hdd, dvddrive
	Medium     string `json:"medium"`
}

// Medium is a disk image or ISO VirtualBox knows (its media registry).
type Medium struct {
	Path       string `json:"path"`
	UUID       string `json:"uuid"`
	Kind       string `json:"kind"`   // disk, dvd
	Format     string `json:"format"` // VDI, VMDK, RAW
	CapacityMB int    `json:"capacityMB"`
}

// HostOnlyIf is a host-only interface (vboxnetN).
type HostOnlyIf struct {
	Name    string `json:"name"`
	GUID    string `json:"guid"`
	IP      string `json:"ip"`
	Netmask string `json:"netmask"`
	HWAddr  string `json:"hwAddr"`
}

// HostOnlyNet is a VirtualBox 7 host-only network (vmnet on macOS).
type HostOnlyNet struct {
	Name    string `json:"name"`
	GUID    string `json:"guid"`
	Enabled bool   `json:"enabled"`
	Netmask string `json:"netmask"`
	LowerIP string `json:"lowerIP"`
	UpperIP string `json:"upperIP"`
}

// Fault makes calls whose arguments match answer Stdout, Stderr and Exit
// instead of doing their work.
type Fault struct {
	// Args is matched against the call's arguments one by one: "*" matches
	// any one argument, a final "**" any rest.
	Args   []string `json:"args"`
	Stdout string   `json:"stdout,omitempty"`
	Stderr string   `json:"stderr,omitempty"`
	Exit   int      `json:"exit"`
	// Times is how many calls it answers; 0 means all of them.
	Times int `json:"times,omitempty"`
	// Hits counts the calls it answered.
	Hits int `json:"hits,omitempty"`
}

func (f *Fault) matches(args []string) bool {
	if f.Times > 0 && f.Hits >= f.Times {
		return false
	}
	for i, want := range f.Args {
		if want == "**" && i == len(f.Args)-1 {
			return true
		}
		if i >= len(args) || (want != "*" && want != args[i]) {
			return false
		}
	}
	return len(args) == len(f.Args)
}

// Call is one VBoxManage invocation as the log keeps it.
type Call struct {
	Args   []string `json:"args"`
	Exit   int      `json:"exit"`
	Stderr string   `json:"stderr,omitempty"`
}

// Load reads the state file at path.
func Load(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("fake VBoxManage state %s: %w", path, err)
	}
	return &s, nil
}

// Save writes the state file at path (temp file and rename).
func (s *State) Save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// FindVM returns the VM called name (or with that UUID), or nil.
func (s *State) FindVM(nameOrUUID string) *VM {
	for _, vm := range s.VMs {
		if vm.Name == nameOrUUID || vm.UUID == nameOrUUID {
			return vm
		}
	}
	return nil
}

// NIC returns the VM's adapter n (1-based).
func (vm *VM) NIC(n int) *NIC {
	for _, nic := range vm.NICs {
		if nic.Index == n {
			return nic
		}
	}
	return nil
}

func (s *State) findMedium(path string) *Medium {
	for _, m := range s.Media {
		if m.Path == path || m.UUID == path {
			return m
		}
	}
	return nil
}

func (s *State) removeMedium(path string) {
	out := s.Media[:0]
	for _, m := range s.Media {
		if m.Path != path {
			out = append(out, m)
		}
	}
	s.Media = out
}

// next returns the next sequence number.
func (s *State) next() int {
	s.Seq++
	return s.Seq
}

func (s *State) newUUID() string {
	n := s.next()
	return fmt.Sprintf("%08x-fa6e-4b0c-8000-%012x", n, n)
}

// newMAC returns a MAC in VirtualBox's 08:00:27 range, as showvminfo prints
// it (twelve upper-case hex digits, no separators).
func (s *State) newMAC() string {
	n := s.next()
	return fmt.Sprintf("080027%06X", 0xA00000+n)
}
