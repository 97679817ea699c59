package virtualbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/drivers/virtualbox/internal/fakevbox"
	"github.com/shoal-dev/shoal/internal/cloudinit"
)

// fakeBin is the folder holding the fake VBoxManage built by TestMain.
var fakeBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fakevbox-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	exe := "VBoxManage"
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, exe), "./internal/fakevbox/cmd/VBoxManage")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the fake VBoxManage:", err)
		return 1
	}
	fakeBin = dir
	return m.Run()
}

// harness is one fake VirtualBox host with a store around it.
type harness struct {
	t        *testing.T
	root     string // every path under it prints as $T in call logs
	state    string // the fake's state file
	machines string // the store's machines/ folder
	image    string // a qcow2 cloud image
	mgr      *manager
	pubKey   string
	// silent makes the fake SSH servers accept and close without a
	// banner, as VirtualBox's NAT does before the guest's sshd is up.
	silent atomic.Bool
}

// newHarness sets up a fake VirtualBox host answering as version.
func newHarness(t *testing.T, host fakevbox.Host) *harness {
	t.Helper()
	root := t.TempDir()
	h := &harness{t: t, root: root, state: filepath.Join(root, "vbox.json"), machines: filepath.Join(root, "store", "machines")}
	if err := os.MkdirAll(h.machines, 0o700); err != nil {
		t.Fatal(err)
	}
	if host.OS == "" {
		host.OS = "linux"
	}
	// The fake VirtualBox reads the networks.conf the driver checks.
	host.NetworksConfFile = filepath.Join(root, "networks.conf")
	s := &fakevbox.State{Host: host}
	if err := s.Save(h.state); err != nil {
		t.Fatal(err)
	}
	h.image = filepath.Join(root, "images", "cloud.qcow2")
	os.MkdirAll(filepath.Dir(h.image), 0o755)
	if err := fakevbox.WriteQCOW2(h.image, 2<<30); err != nil {
		t.Fatal(err)
	}
	_, pub, err := cloudinit.GenerateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	h.pubKey = pub + " user@test"
	fake := filepath.Join(fakeBin, "VBoxManage")
	o := defaultOptions()
	o.goos = host.OS
	o.getenv = func(string) string { return "" }
	o.lookPath = func(name string) (string, error) {
		if name == "VBoxManage" {
			return fake, nil
		}
		return "", exec.ErrNotFound
	}
	o.searchDirs = nil
	o.env = []string{fakevbox.EnvState + "=" + h.state, fakevbox.EnvVersion + "=" + host.Version}
	o.retries = 3
	o.retryDelay = time.Millisecond
	o.pollInterval = time.Millisecond
	o.stopTimeout = time.Second // a loaded machine takes a while for three calls
	o.sshTimeout = 5 * time.Second
	o.networksConf = host.NetworksConfFile
	o.cacheDir = func() (string, error) { return filepath.Join(root, "cache"), nil }
	o.freePort = h.sshServer
	h.mgr = newManager(o)
	return h
}

// sshServer starts a server greeting like sshd on a port of its own, as
// the forwarded port of a booted VM would.
func (h *harness) sshServer() (int, error) {
	return drivertest.SSHGreeter(h.t, h.silent.Load).Port, nil
}

func (h *harness) config() *Config {
	c := spec(h.mgr).NewConfig().(*Config)
	c.Image = h.image
	return c
}

func (h *harness) machine(name string) drivers.Identity {
	dir := filepath.Join(h.machines, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		h.t.Fatal(err)
	}
	return drivers.Identity{Name: name, Dir: dir, PublicKey: h.pubKey, PrivateKeyPath: filepath.Join(dir, "id_ed25519")}
}

func (h *harness) driver(name string, cfg *Config) *Driver {
	if cfg == nil {
		cfg = h.config()
	}
	return newDriver(h.mgr, h.machine(name), cfg)
}

func (h *harness) fake() *fakevbox.State {
	h.t.Helper()
	s, err := fakevbox.Load(h.state)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) editFake(f func(*fakevbox.State)) {
	h.t.Helper()
	s := h.fake()
	f(s)
	if err := s.Save(h.state); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) fault(f fakevbox.Fault) {
	h.editFake(func(s *fakevbox.State) { s.Faults = append(s.Faults, &f) })
}

func (h *harness) clearFaults() {
	h.editFake(func(s *fakevbox.State) { s.Faults = nil })
}

// mark returns the number of calls so far: callsSince(mark) are the ones
// after.
func (h *harness) mark() int { return len(h.fake().Calls) }

var reCacheKey = regexp.MustCompile(`-[0-9a-f]{16}\.`)

// callsSince returns the calls after mark, one string each, with the
// run's variable parts replaced: $T for the temp folder, $UUID, $PORT,
// $NATMAC, $HOMAC of the machines' state, $KEY for image cache keys.
func (h *harness) callsSince(mark int) []string {
	h.t.Helper()
	var repl []string
	entries, _ := os.ReadDir(h.machines)
	for _, e := range entries {
		st, _ := loadState(filepath.Join(h.machines, e.Name()))
		if st == nil {
			continue
		}
		suffix := ""
		if e.Name() != "n1" {
			suffix = "(" + e.Name() + ")"
		}
		if st.UUID != "" {
			repl = append(repl, st.UUID, "$UUID"+suffix)
		}
		if st.SSHPort != 0 {
			repl = append(repl, ","+strconv.Itoa(st.SSHPort)+",", ",$PORT"+suffix+",")
		}
		if st.NATMAC != "" {
			repl = append(repl, st.NATMAC, "$NATMAC"+suffix, st.HostOnlyMAC, "$HOMAC"+suffix)
		}
	}
	repl = append(repl, h.root, "$T")
	r := strings.NewReplacer(repl...)
	var out []string
	for _, c := range h.fake().Calls[mark:] {
		line := r.Replace(strings.Join(c.Args, " "))
		line = reCacheKey.ReplaceAllString(line, "-$$KEY.")
		if c.Exit != 0 {
			line += fmt.Sprintf("  => exit %d", c.Exit)
		}
		out = append(out, line)
	}
	return out
}

func (h *harness) wantCalls(mark int, want []string) {
	h.t.Helper()
	got := h.callsSince(mark)
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	h.t.Errorf("VBoxManage calls differ\n--- got:\n%s\n--- want:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantState(t *testing.T, d *Driver, want drivers.State) {
	t.Helper()
	got, err := d.State(ctx(t))
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	if got != want {
		t.Fatalf("State = %s, want %s", got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
