package fakevbox

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Exit codes of VBoxManage (RTEXITCODE_*).
const (
	exitOK     = 0
	exitFail   = 1
	exitSyntax = 2
)

// progress is what VBoxManage prints on stderr while it waits for an
// IProgress; it is not an error.
const progress = "0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\n"

// vbox is one invocation: the state, the output streams and the version.
type vbox struct {
	s      *State
	out    io.Writer
	errw   io.Writer
	major  int
	minor  int
	exit   int
	prefix string // "VBoxManage" or "VBoxManage.exe"
	// langCLI is VBoxManage's language, langSVC VBoxSVC's (see i18n.go).
	langCLI, langSVC string
}

// Run answers one VBoxManage invocation (args without the program name)
// against s and returns the exit code.
func Run(s *State, args []string, stdout, stderr io.Writer) int {
	return RunEnv(s, args, func(string) string { return "" }, stdout, stderr)
}

// RunEnv is Run with the caller's environment, from which VBoxManage (and
// VBoxSVC, when no SVCLocale is set) takes its language.
func RunEnv(s *State, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if s.Host.Version == "" {
		s.Host.Version = Version61
	}
	if s.Host.OS == "" {
		s.Host.OS = "linux"
	}
	v := &vbox{s: s, out: stdout, errw: stderr, prefix: "VBoxManage"}
	if s.Host.OS == "windows" {
		v.prefix = "VBoxManage.exe"
	}
	fmt.Sscanf(s.Host.Version, "%d.%d", &v.major, &v.minor)
	v.langCLI = language(s.Host.Language, getenv)
	v.langSVC = v.langCLI
	if s.Host.SVCLocale != "" {
		v.langSVC = language(s.Host.Language, func(k string) string {
			if k == "LC_ALL" {
				return s.Host.SVCLocale
			}
			return ""
		})
	}
	for _, vm := range s.VMs {
		// Empty maps come back from JSON as nil.
		if vm.Settings == nil {
			vm.Settings = map[string]string{}
		}
		if vm.GuestProps == nil {
			vm.GuestProps = map[string]string{}
		}
	}

	for _, f := range s.Faults {
		if f.matches(args) {
			f.Hits++
			io.WriteString(stdout, f.Stdout)
			io.WriteString(stderr, f.Stderr)
			return f.Exit
		}
	}
	v.dispatch(args)
	return v.exit
}

// locked reports whether vm's session is still being unlocked after a
// power-off.
func (v *vbox) locked(vm *VM) bool {
	return vm.UnlockAt != 0 && time.Now().UnixNano() < vm.UnlockAt
}

// poweredOff records that vm's process is exiting: its session stays
// locked for UnlockDelayMs.
func (v *vbox) poweredOff(vm *VM) {
	vm.UnlockAt = 0
	if d := v.s.Host.UnlockDelayMs; d > 0 {
		vm.UnlockAt = time.Now().Add(time.Duration(d) * time.Millisecond).UnixNano()
	}
}

// vmnet reports whether this VirtualBox has host-only networks (7.x on
// macOS) rather than host-only interfaces.
func (v *vbox) vmnet() bool { return v.major >= 7 && v.s.Host.OS == "darwin" }

func (v *vbox) modern() bool { return v.major >= 7 }

// fail prints VBoxManage's error lines and sets exit code 1.
func (v *vbox) fail(lines ...string) {
	for _, l := range lines {
		fmt.Fprintf(v.errw, "%s: error: %s\n", v.prefix, l)
	}
	v.exit = exitFail
}

// syntax prints a syntax error and sets exit code 2.
func (v *vbox) syntax(format string, a ...any) {
	fmt.Fprintf(v.errw, "%s: error: %s\n", v.prefix, fmt.Sprintf(format, a...))
	v.exit = exitSyntax
}

func (v *vbox) notFound(name, file string) {
	v.fail(fmt.Sprintf(v.trAPI("Could not find a registered machine named '%s'"), name),
		"Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports",
		`Context: "FindMachine(Bstr(a->argv[0]).raw(), machine.asOutParam())" at line 1154 of file `+file)
}

func (v *vbox) lockedForSession(name, file string) {
	v.fail(fmt.Sprintf(v.trAPI("The machine '%s' is already locked for a session (or being unlocked)"), name),
		"Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MachineWrap, interface IMachine, callee nsISupports",
		`Context: "LockMachine(a->session, LockType_Write)" at line 640 of file `+file)
}

func (v *vbox) notRunning(name string) {
	v.fail(fmt.Sprintf(v.tr("Machine '%s' is not currently running."), name))
}

func (v *vbox) fileNotFound(path string) {
	v.fail(fmt.Sprintf(v.trAPI("Could not find file for the medium '%s' (%s)"), path, "VERR_FILE_NOT_FOUND"),
		"Details: code VBOX_E_FILE_ERROR (0x80bb0004), component MediumWrap, interface IMedium, callee nsISupports",
		`Context: "OpenMedium(Bstr(pszFilenameOrUuid).raw(), enmDevType, enmAccessMode, fForceNewUuidOnOpen, pMedium.asOutParam())" at line 201 of file VBoxManageDisk.cpp`)
}

func (v *vbox) dispatch(args []string) {
	if len(args) == 0 {
		v.syntax("No command specified")
		return
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "--version", "-v", "-version", "--v":
		v.version()
	case "list":
		v.list(rest)
	case "showvminfo":
		v.showVMInfo(rest)
	case "createvm":
		v.createVM(rest)
	case "registervm":
		v.registerVM(rest)
	case "unregistervm":
		v.unregisterVM(rest)
	case "modifyvm":
		v.modifyVM(rest)
	case "storagectl":
		v.storageCtl(rest)
	case "storageattach":
		v.storageAttach(rest)
	case "clonemedium", "clonehd", "clonevdi":
		v.cloneMedium(rest)
	case "convertfromraw":
		v.convertFromRaw(rest)
	case "modifymedium", "modifyhd":
		v.modifyMedium(rest)
	case "showmediuminfo", "showhdinfo":
		v.showMediumInfo(rest)
	case "closemedium":
		v.closeMedium(rest)
	case "startvm":
		v.startVM(rest)
	case "controlvm":
		v.controlVM(rest)
	case "hostonlyif":
		v.hostOnlyIf(rest)
	case "hostonlynet":
		if !v.vmnet() {
			v.syntax(v.tr("Invalid command '%s'"), cmd)
			return
		}
		v.hostOnlyNet(rest)
	case "guestproperty":
		v.guestProperty(rest)
	default:
		v.syntax(v.tr("Invalid command '%s'"), cmd)
	}
}

func (v *vbox) version() {
	if v.s.Host.KernelModuleWarning {
		// What a Linux host without the vboxdrv module prints first.
		io.WriteString(v.out, `WARNING: The vboxdrv kernel module is not loaded. Either there is no module
         available for the current kernel (6.1.0-13-amd64) or it failed to
         load. Please recompile the kernel module and install it by

           sudo /sbin/vboxconfig

         You will not be able to start VMs until this problem is fixed.
`)
	}
	fmt.Fprintln(v.out, v.s.Host.Version)
}

// options splits args into positional arguments and --name[=value]
// options, the way RTGetOpt reads them. takesValue says which options
// consume the next argument.
func options(args []string, takesValue map[string]bool) (pos []string, opts map[string]string, order []string) {
	opts = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name, val, has := strings.Cut(a, "=")
		if !has && takesValue[name] && i+1 < len(args) {
			i++
			val = args[i]
		}
		opts[name] = val
		order = append(order, name)
	}
	return pos, opts, order
}
