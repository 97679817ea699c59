package virtualbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/drivers/driverutil"
)

// ErrNotInstalled means no VBoxManage was found: VirtualBox is not
// installed, or not where shoal looks.
var ErrNotInstalled = errors.New("VirtualBox is not installed: VBoxManage not found")

// ErrTooOld means the VirtualBox found is older than 6.1.
var ErrTooOld = errors.New("VirtualBox is too old")

// ErrRangeRefused means VirtualBox refuses the host-only network's range.
var ErrRangeRefused = errors.New("VirtualBox refuses this host-only network range")

// ErrUnsupportedHost means VirtualBox on this host cannot run the VMs the
// driver makes (x86-64 guests): VirtualBox 7.1 on Apple Silicon runs ARM
// guests only.
var ErrUnsupportedHost = errors.New("VirtualBox on this host cannot run x86-64 VMs")

// minVersion is the oldest VirtualBox the driver supports: 6.1 is the first
// with the networks.conf range rules and `clonemedium`/`modifymedium`
// everywhere; 6.0 and older are out of support.
const minMajor, minMinor = 6, 1

// CommandError is a VBoxManage call that failed: it exited non-zero, or
// printed "error:" on stderr with exit code 0 (VBoxManage on Windows does
// that, e.g. when VT-x is missing).
type CommandError struct {
	Path     string
	Args     []string
	ExitCode int
	Stdout   string
	Stderr   string
}

func (e *CommandError) Error() string {
	status := fmt.Sprintf("exit status %d", e.ExitCode)
	if e.ExitCode == 0 {
		status = "exit status 0 but it reported an error"
	}
	msg := fmt.Sprintf("VBoxManage %s: %s: %s", strings.Join(e.Args, " "), status, errorLines(e.Stderr, 3))
	if h := e.Hint(); h != "" {
		msg += " (hint: " + h + ")"
	}
	return msg
}

// errorLines returns the first n "error:" lines of VBoxManage's stderr,
// without the "VBoxManage: error: " prefix, joined by "; ": VBoxManage
// says what failed first, then the COM details and the source line.
func errorLines(stderr string, n int) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if _, msg, ok := strings.Cut(l, "error: "); ok {
			lines = append(lines, msg)
		}
	}
	if len(lines) == 0 {
		if s := strings.TrimSpace(stderr); s != "" {
			return s
		}
		return "(no output)"
	}
	if len(lines) > n {
		lines = lines[:n] // the first lines say what; Context lines say where
	}
	return strings.Join(lines, "; ")
}

// Hint says what to do about the errors VirtualBox users meet most.
func (e *CommandError) Hint() string {
	switch {
	case strings.Contains(e.Stderr, "VERR_VMX_NO_VMX"), strings.Contains(e.Stderr, "VERR_SVM_NO_SVM"),
		strings.Contains(e.Stderr, "VT-x is not available"), strings.Contains(e.Stderr, "AMD-V is not available"):
		return "enable VT-x/AMD-V in the firmware (BIOS/UEFI) settings; on Windows turn Hyper-V off, VirtualBox cannot use VT-x next to it"
	case strings.Contains(e.Stderr, "vboxdrv"), strings.Contains(e.Stderr, "VERR_VM_DRIVER"):
		return "the VirtualBox kernel module is not loaded: run 'sudo /sbin/vboxconfig'"
	case e.notFound():
		return "the VM was removed outside shoal"
	}
	return ""
}

// VirtualBox translates its messages (7.0 and later: VBoxManage's into
// Russian, VBoxSVC's into Russian and Turkish), following its own language
// setting or the environment; LC_ALL covers only the environment. So the
// driver tells errors apart by the COM result codes of the "Details: code
// NAME (0x...)" line, which are never translated.
const (
	codeObjectNotFound     = "0x80bb0001" // VBOX_E_OBJECT_NOT_FOUND
	codeInvalidObjectState = "0x80bb0007" // VBOX_E_INVALID_OBJECT_STATE
	codeAccessDenied       = "0x80070005" // E_ACCESSDENIED
)

// notFound: the VM (or medium) named does not exist.
func (e *CommandError) notFound() bool {
	return strings.Contains(strings.ToLower(e.Stderr), codeObjectNotFound)
}

// lockedOut: the machine's session is held: by a running VM, by another
// client, or for a moment after a power-off while the VM process exits
// ("Cannot unregister the machine ... while it is locked", "is already
// locked for a session (or being unlocked)"). The same call works once the
// session is free.
func (e *CommandError) lockedOut() bool {
	return strings.Contains(strings.ToLower(e.Stderr), codeInvalidObjectState)
}

// hostOnlyConfig reports the calls that set a host-only address: there
// E_ACCESSDENIED is VirtualBox refusing the range, not a busy object.
func hostOnlyConfig(args []string) bool {
	return len(args) >= 2 && ((args[0] == "hostonlyif" && args[1] == "ipconfig") || (args[0] == "hostonlynet" && args[1] == "add"))
}

// notReady: "The object is not ready" (E_ACCESSDENIED from an object being
// set up or torn down): the same call a moment later works.
func (e *CommandError) notReady() bool {
	return !hostOnlyConfig(e.Args) && strings.Contains(strings.ToLower(e.Stderr), codeAccessDenied)
}

// transient: the same call a moment later works.
func (e *CommandError) transient() bool { return e.lockedOut() || e.notReady() }

// accessDenied: VirtualBox refused a host-only address (networks.conf).
func (e *CommandError) accessDenied() bool {
	return hostOnlyConfig(e.Args) && strings.Contains(strings.ToLower(e.Stderr), codeAccessDenied)
}

// syntax: VBoxManage does not know the command or an option (exit 2).
func (e *CommandError) syntax() bool { return e.ExitCode == 2 }

func asCommandError(err error) (*CommandError, bool) {
	var ce *CommandError
	ok := errors.As(err, &ce)
	return ce, ok
}

func isNotFound(err error) bool {
	ce, ok := asCommandError(err)
	return ok && ce.notFound()
}

// options are the manager's knobs: the defaults suit real use, tests turn
// them to point at the fake and go fast.
type options struct {
	goos string
	// getenv and lookPath find VBoxManage; searchDirs are the install
	// folders tried after PATH.
	getenv     func(string) string
	lookPath   func(string) (string, error)
	searchDirs []string
	// env is added to VBoxManage's environment.
	env []string
	// retries and retryDelay govern transient errors ("object is not
	// ready"): attempt n waits n*retryDelay first.
	retries    int
	retryDelay time.Duration
	// lockWait bounds the retries of a call refused because the machine's
	// session is locked, as it is for a moment after a power-off.
	lockWait time.Duration
	// pollInterval is how often a stopping VM is looked at.
	pollInterval time.Duration
	// stopTimeout is how long a guest gets to shut down after the ACPI
	// power button before it is powered off.
	stopTimeout time.Duration
	// sshTimeout bounds the wait for SSH after a start.
	sshTimeout time.Duration
	// networksConf is VirtualBox's list of allowed host-only ranges.
	networksConf string
	// cacheDir is where converted images go when the config names none.
	cacheDir func() (string, error)
	// freePort picks the host port forwarded to the guest's SSH.
	freePort func() (int, error)
	// waitSSH returns when something speaking SSH answers at addr, within
	// the bound.
	waitSSH func(ctx context.Context, addr string, bound time.Duration) error
}

func defaultOptions() options {
	return options{
		goos:         runtime.GOOS,
		getenv:       os.Getenv,
		lookPath:     exec.LookPath,
		searchDirs:   defaultSearchDirs(runtime.GOOS),
		retries:      5,
		retryDelay:   500 * time.Millisecond,
		lockWait:     30 * time.Second,
		pollInterval: time.Second,
		stopTimeout:  90 * time.Second,
		sshTimeout:   10 * time.Minute,
		networksConf: "/etc/vbox/networks.conf",
		cacheDir: func() (string, error) {
			d, err := os.UserCacheDir()
			if err != nil {
				return "", err
			}
			return filepath.Join(d, "shoal", "virtualbox"), nil
		},
		freePort: freeLocalPort,
		waitSSH:  driverutil.WaitSSH,
	}
}

// defaultSearchDirs are the folders VirtualBox's installers put VBoxManage
// in, for when it is not on PATH.
func defaultSearchDirs(goos string) []string {
	switch goos {
	case "darwin":
		return []string{"/usr/local/bin", "/Applications/VirtualBox.app/Contents/MacOS"}
	case "windows":
		return []string{`C:\Program Files\Oracle\VirtualBox`}
	default:
		return []string{"/usr/bin", "/usr/local/bin", "/usr/lib/virtualbox", "/opt/VirtualBox"}
	}
}

// manager is the process's one door to VBoxManage. VBoxManage is not safe
// to run concurrently (VBoxSVC answers "object is not ready" and sessions
// clash), so calls go through sem one at a time; every driver made by one
// Spec shares its manager.
type manager struct {
	opts options
	sem  ctxMutex

	mu    sync.Mutex          // guards found
	found map[string]*vboxCmd // by configured path ("" = searched for)

	// image serialises conversions into the cache, network the finding or
	// making of host-only networks, alloc the choice of addresses and ports:
	// machines created at once must not each convert the image, make an
	// interface for the same network or pick the same address.
	image   ctxMutex
	network ctxMutex
	alloc   ctxMutex
}

func newManager(o options) *manager {
	return &manager{opts: o, sem: newCtxMutex(), image: newCtxMutex(), network: newCtxMutex(), alloc: newCtxMutex(), found: map[string]*vboxCmd{}}
}

// ctxMutex is a mutex whose Lock gives up when the context ends.
type ctxMutex chan struct{}

func newCtxMutex() ctxMutex { return make(ctxMutex, 1) }

func (m ctxMutex) Lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case m <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m ctxMutex) Unlock() { <-m }

// vboxCmd is a VBoxManage found and its version.
type vboxCmd struct {
	path    string
	version version
}

// modern reports VirtualBox 7.0 or newer: modifyvm's options got new
// names (--nat-pf1, --host-only-adapter2, ...) and the old ones are
// deprecated.
func (v *vboxCmd) modern() bool { return v.version.Major >= 7 }

// locate finds VBoxManage: the configured path, else PATH, else
// VBOX_MSI_INSTALL_PATH / VBOX_INSTALL_PATH (Windows), else the install
// folders.
func (m *manager) locate(configured string) (string, error) {
	if configured != "" {
		st, err := os.Stat(configured)
		if err != nil || st.IsDir() {
			return "", fmt.Errorf("%w: --virtualbox-vboxmanage %s does not exist", ErrNotInstalled, configured)
		}
		return configured, nil
	}
	o := m.opts
	for _, name := range []string{"VBoxManage", "vboxmanage"} {
		if p, err := o.lookPath(name); err == nil {
			return p, nil
		}
	}
	dirs := o.installDirs()
	exe := "VBoxManage"
	if o.goos == "windows" {
		exe = "VBoxManage.exe"
	}
	if p := findFile(dirs, exe); p != "" {
		return p, nil
	}
	where := "PATH"
	if len(dirs) > 0 {
		where += ", " + strings.Join(dirs, ", ")
	}
	return "", fmt.Errorf("%w (looked on %s). Install VirtualBox 6.1 or newer (https://www.virtualbox.org/wiki/Downloads), or give VBoxManage's path with --virtualbox-vboxmanage", ErrNotInstalled, where)
}

// installDirs are the folders VBoxManage may be in, off PATH: on Windows
// those the installer's variables name first.
func (o options) installDirs() []string {
	dirs := append([]string(nil), o.searchDirs...)
	if o.goos != "windows" {
		return dirs
	}
	for _, env := range []string{"VBOX_MSI_INSTALL_PATH", "VBOX_INSTALL_PATH"} {
		if d := o.getenv(env); d != "" {
			dirs = append([]string{d}, dirs...)
		}
	}
	return dirs
}

// findFile is the path of the first regular file named name in dirs, ""
// for none.
func findFile(dirs []string, name string) string {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// vbox returns the VBoxManage to use, found and version-checked once per
// process. A failure is not remembered: the user may install VirtualBox and
// retry in a long-running process.
func (m *manager) vbox(ctx context.Context, configured string) (*vboxCmd, error) {
	m.mu.Lock()
	v := m.found[configured]
	m.mu.Unlock()
	if v != nil {
		return v, nil
	}
	path, err := m.locate(configured)
	if err != nil {
		return nil, err
	}
	out, err := m.exec(ctx, path, []string{"--version"})
	if err != nil {
		return nil, fmt.Errorf("cannot run %s: %w", path, err)
	}
	ver, err := parseVersion(out)
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", path, err)
	}
	if !ver.atLeast(minMajor, minMinor) {
		return nil, fmt.Errorf("%w: %s is version %s; shoal needs VirtualBox %d.%d or newer", ErrTooOld, path, ver, minMajor, minMinor)
	}
	v = &vboxCmd{path: path, version: ver}
	m.mu.Lock()
	m.found[configured] = v
	m.mu.Unlock()
	return v, nil
}

// run calls VBoxManage with args and returns its stdout, retrying the
// transient errors with a growing pause: "not ready" a few times, a locked
// session for up to lockWait.
func (m *manager) run(ctx context.Context, v *vboxCmd, args ...string) (string, error) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		out, err := m.exec(ctx, v.path, args)
		ce, ok := asCommandError(err)
		if !ok || !retryable(ce, attempt, time.Since(start), m.opts) {
			return out, err
		}
		pause := min(time.Duration(attempt+1)*m.opts.retryDelay, time.Second)
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("%w (while retrying after: %v)", ctx.Err(), err)
		case <-time.After(pause):
		}
	}
}

// retryable decides whether a failed call is tried again.
func retryable(ce *CommandError, attempt int, elapsed time.Duration, o options) bool {
	switch {
	case ce.lockedOut():
		return elapsed < o.lockWait
	case ce.notReady():
		return attempt < o.retries
	}
	return false
}

// exec runs VBoxManage once, alone.
func (m *manager) exec(ctx context.Context, path string, args []string) (string, error) {
	if err := m.sem.Lock(ctx); err != nil {
		return "", err
	}
	defer m.sem.Unlock()
	cmd := exec.CommandContext(ctx, path, args...)
	// English output where VirtualBox takes the language from the
	// environment: LC_ALL wins over LC_MESSAGES and LANG, and "C.UTF-8"
	// means no translation (VirtualBoxTranslator.cpp) while keeping UTF-8,
	// in which VBoxManage reads its arguments: a path with non-ASCII
	// letters would not survive plain "C". Where C.UTF-8 does not exist it
	// falls back to C. The last value of a variable is the one the command
	// sees.
	cmd.Env = append(append(os.Environ(), m.opts.env...), "LC_ALL=C.UTF-8")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return stdout.String(), fmt.Errorf("VBoxManage %s: %w", strings.Join(args, " "), ctx.Err())
	}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return stdout.String(), &CommandError{Path: path, Args: args, ExitCode: exitErr.ExitCode(), Stdout: stdout.String(), Stderr: stderr.String()}
	case err != nil:
		return "", fmt.Errorf("run %s: %w", path, err)
	case strings.Contains(stderr.String(), "error:"):
		// Exit code 0 but an error: VBoxManage does not always set its
		// exit code (seen on Windows, e.g. VERR_VMX_NO_VMX).
		return stdout.String(), &CommandError{Path: path, Args: args, ExitCode: 0, Stdout: stdout.String(), Stderr: stderr.String()}
	}
	return stdout.String(), nil
}
