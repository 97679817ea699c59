package ssh

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/spf13/pflag"
)

// listen starts a TCP listener that stands for the adopted host's sshd:
// it greets as sshd does.
func listen(t *testing.T) (host string, port int) {
	a := drivertest.SSHGreeter(t, nil)
	return a.IP.String(), a.Port
}

// closedPort returns a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func newDriver(t *testing.T, cfg Config) drivers.Driver {
	t.Helper()
	d, err := Spec().New(drivers.Identity{Name: "m", Dir: t.TempDir()}, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// The shared conformance suite (drivers/drivertest) is not run here: it
// expects a driver that makes its host (NotFound before Create and after
// Remove), while an adopted host exists before and after. The lifecycle of
// adoption is TestLifecycleAgainstListener's.

func TestSpecDefaults(t *testing.T) {
	s := Spec()
	if s.Name != "ssh" {
		t.Errorf("Name = %q", s.Name)
	}
	if len(s.Aliases) != 1 || s.Aliases[0] != "generic" {
		t.Errorf("Aliases = %v, want [generic]", s.Aliases)
	}
	c := s.NewConfig().(*Config)
	if c.Port != 22 || c.User != "root" || c.Host != "" {
		t.Errorf("NewConfig = %+v, want port 22, user root, no host", c)
	}
	reg := drivers.NewRegistry(s)
	if got, err := reg.Get("generic"); err != nil || got.Name != "ssh" {
		t.Errorf("Get(generic) = %v, %v", got, err)
	}
}

func parseFlags(t *testing.T, args ...string) *Config {
	t.Helper()
	s := Spec()
	cfg := s.NewConfig().(*Config)
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	s.BindFlags(fs, cfg)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse %v: %v", args, err)
	}
	return cfg
}

func TestFlags(t *testing.T) {
	key := filepath.Join(t.TempDir(), "id")
	want := Config{Host: "192.168.56.104", Port: 2222, User: "hadoop", Key: key}
	ssh := parseFlags(t, "--ssh-host", "192.168.56.104", "--ssh-port", "2222", "--ssh-user", "hadoop", "--ssh-key", key)
	generic := parseFlags(t, "--generic-ip-address", "192.168.56.104", "--generic-ssh-port", "2222", "--generic-ssh-user", "hadoop", "--generic-ssh-key", key)
	if *ssh != want {
		t.Errorf("--ssh-* flags = %+v, want %+v", *ssh, want)
	}
	if *generic != want {
		t.Errorf("--generic-* flags = %+v, want %+v", *generic, want)
	}
	hk := parseFlags(t, "--ssh-host", "h", "--ssh-host-key", "SHA256:abc")
	if hk.HostKey != "SHA256:abc" {
		t.Errorf("--ssh-host-key: HostKey = %q", hk.HostKey)
	}
	// No flags: the defaults stay.
	if d := parseFlags(t); d.Port != 22 || d.User != "root" {
		t.Errorf("defaults after parsing no flags = %+v", d)
	}
}

func TestValidate(t *testing.T) {
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	validate := Spec().Validate
	ok := []Config{
		{Host: "10.0.0.1", Port: 22, User: "root"},
		{Host: "h", Port: 65535, User: "u", Key: key, HostKey: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"},
	}
	for _, c := range ok {
		if err := validate(&c); err != nil {
			t.Errorf("Validate(%+v) = %v", c, err)
		}
	}
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{Port: 22, User: "root"}, "--ssh-host"},
		{Config{Host: "h", Port: 0}, "port"},
		{Config{Host: "h", Port: -1}, "port"},
		{Config{Host: "h", Port: 65536}, "port"},
		{Config{Host: "h", Port: 22, HostKey: "MD5:aa:bb"}, "SHA256"},
		{Config{Host: "h", Port: 22, HostKey: "47DEQpj8HBSa"}, "SHA256"},
		{Config{Host: "h", Port: 22, Key: filepath.Join(t.TempDir(), "missing")}, "--ssh-key"},
		// Issue 10: what reaches the host or an SSH option is refused here.
		{Config{Host: "h", Port: 22, User: "x; touch /tmp/pwned; echo x"}, "--ssh-user"},
		{Config{Host: "h", Port: 22, User: ""}, "--ssh-user"},
		{Config{Host: "bad host!", Port: 22, User: "root"}, "--ssh-host"},
		{Config{Host: "-oProxyCommand=touch /tmp/pwned", Port: 22, User: "root"}, "--ssh-host"},
		{Config{Host: "h", Port: 22, User: "root", HostKey: "SHA256:short"}, "--ssh-host-key"},
		{Config{Host: "h", Port: 22, User: "root", HostKey: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU; id"}, "--ssh-host-key"},
	}
	for _, b := range bad {
		err := validate(&b.cfg)
		if err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", b.cfg)
			continue
		}
		if !strings.Contains(err.Error(), b.want) {
			t.Errorf("Validate(%+v) = %q, want it to mention %q", b.cfg, err, b.want)
		}
	}
}

func TestValidateExpandsHome(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_rsa"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Spec().Validate(&Config{Host: "h", Port: 22, User: "root", Key: "~/.ssh/id_rsa"}); err != nil {
		t.Errorf("Validate with ~/.ssh/id_rsa: %v", err)
	}
	if got := ExpandHome("~/.ssh/id_rsa"); got != filepath.Join(home, ".ssh", "id_rsa") {
		t.Errorf("ExpandHome = %q", got)
	}
	if got := ExpandHome("~"); got != home {
		t.Errorf("ExpandHome(~) = %q", got)
	}
	for _, p := range []string{"/abs/key", "rel/key", "~user/key"} {
		if got := ExpandHome(p); got != p {
			t.Errorf("ExpandHome(%q) = %q, want it unchanged", p, got)
		}
	}
}

func TestEndpoint(t *testing.T) {
	d := newDriver(t, Config{Host: "10.0.0.9", Port: 2200, User: "u", HostKey: "SHA256:x"})
	ep, err := d.SSH(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if ep.Host != "10.0.0.9" || ep.Port != 2200 || ep.User != "u" || ep.HostKeyFingerprint != "SHA256:x" {
		t.Errorf("endpoint = %+v", ep)
	}
	if ep.KeyPath != "" || !ep.UseAgent {
		t.Errorf("no key: want the agent, got KeyPath=%q UseAgent=%v", ep.KeyPath, ep.UseAgent)
	}
	if addr, err := drivers.Address(ctx(t), d); err != nil || addr != "10.0.0.9" {
		t.Errorf("Address = %q, %v", addr, err)
	}

	// A relative key becomes absolute; with a key, no agent.
	t.Chdir(t.TempDir())
	d = newDriver(t, Config{Host: "fd00::9", Port: 22, User: "u", Key: "keys/id"})
	ep, _ = d.SSH(ctx(t))
	wd, _ := os.Getwd()
	if ep.KeyPath != filepath.Join(wd, "keys", "id") || ep.UseAgent {
		t.Errorf("relative key: KeyPath=%q UseAgent=%v", ep.KeyPath, ep.UseAgent)
	}
	if ep.Address() != "[fd00::9]:22" {
		t.Errorf("Address() = %q", ep.Address())
	}
}

func TestNewCopiesConfig(t *testing.T) {
	cfg := &Config{Host: "a", Port: 22, User: "root"}
	d, err := Spec().New(drivers.Identity{Name: "m"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = "changed"
	ep, _ := d.SSH(context.Background())
	if ep.Host != "a" {
		t.Errorf("driver shares its config with the caller: host %q", ep.Host)
	}
}

func TestLifecycleAgainstListener(t *testing.T) {
	host, port := listen(t)
	d := newDriver(t, Config{Host: host, Port: port, User: "root"})
	if d.Name() != "ssh" {
		t.Errorf("Name = %q", d.Name())
	}
	if !drivers.Adopts(d) || !Spec().Adopts {
		t.Errorf("Adopts: driver %v, spec %v; the ssh driver adopts its host", drivers.Adopts(d), Spec().Adopts)
	}
	if err := d.Create(ctx(t)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := d.Create(ctx(t)); err != nil {
		t.Fatalf("Create again: %v", err)
	}
	if st, err := d.State(ctx(t)); err != nil || st != drivers.Running {
		t.Errorf("State = %s, %v; want Running", st, err)
	}
	for name, f := range map[string]func(context.Context) error{"Start": d.Start, "Stop": d.Stop, "Kill": d.Kill} {
		if err := f(ctx(t)); !errors.Is(err, drivers.ErrNotSupported) {
			t.Errorf("%s = %v, want ErrNotSupported", name, err)
		}
	}
	if err := d.Remove(ctx(t)); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	// Remove leaves the host as it is.
	if st, _ := d.State(ctx(t)); st != drivers.Running {
		t.Errorf("State after Remove = %s: the adopted host must be left running", st)
	}
}

func TestUnreachableHost(t *testing.T) {
	port := closedPort(t)
	d := newDriver(t, Config{Host: "127.0.0.1", Port: port, User: "root"})
	st, err := d.State(ctx(t))
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	if st == drivers.Running {
		t.Errorf("State of a closed port = Running")
	}
	c, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	err = d.Create(c)
	if err == nil {
		t.Fatal("Create against a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("Create error %q does not name the address", err)
	}
}

func TestCreateCancelled(t *testing.T) {
	host, port := listen(t)
	d := newDriver(t, Config{Host: host, Port: port, User: "root"})
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Create(c); err == nil {
		t.Fatal("Create with a cancelled context succeeded")
	}
}

// TestCreateWaitIsBounded: with no deadline in the context, create against
// a closed port gives up after Wait with an error that says what to check.
func TestCreateWaitIsBounded(t *testing.T) {
	port := closedPort(t)
	d := newDriver(t, Config{Host: "127.0.0.1", Port: port, User: "root", Wait: 800 * time.Millisecond})
	start := time.Now()
	err := d.Create(context.Background())
	if err == nil {
		t.Fatal("Create against a closed port succeeded")
	}
	if took := time.Since(start); took < 700*time.Millisecond || took > 5*time.Second {
		t.Errorf("Create took %s, want about the 800ms wait", took)
	}
	for _, want := range []string{"127.0.0.1:" + strconv.Itoa(port), "does not answer after 800ms", "--ssh-port", "--ssh-wait"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Create error %q lacks %q", err, want)
		}
	}
}

func TestWaitDefaultAndFlag(t *testing.T) {
	cfg := Spec().NewConfig().(*Config)
	if cfg.Wait != 0 {
		t.Errorf("default Wait = %s, want 0 (DefaultWait at create)", cfg.Wait)
	}
	if DefaultWait <= 0 || DefaultWait > 10*time.Minute {
		t.Errorf("DefaultWait = %s is not a bound", DefaultWait)
	}
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	Spec().BindFlags(fs, cfg)
	if err := fs.Parse([]string{"--ssh-host", "h", "--ssh-wait", "5s"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Wait != 5*time.Second {
		t.Errorf("--ssh-wait 5s gave %s", cfg.Wait)
	}
	cfg.Wait = -time.Second
	if err := Spec().Validate(cfg); err == nil {
		t.Error("a negative --ssh-wait is valid")
	}
}

// A host adopted before is not greeted again: the connection that follows
// says whether it answers, and a greeting costs the host an sshd process.
func TestCreateKnownHostNotGreeted(t *testing.T) {
	port := closedPort(t)
	cfg := Spec().NewConfig().(*Config)
	cfg.Host, cfg.Port, cfg.User, cfg.Wait = "127.0.0.1", port, "root", 800*time.Millisecond
	d, err := Spec().New(drivers.Identity{Name: "known", Known: true}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := d.Create(context.Background()); err != nil {
		t.Errorf("Create of a known host dialled it: %v", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Create of a known host took %s", took)
	}
	d, _ = Spec().New(drivers.Identity{Name: "new"}, cfg)
	if err := d.Create(context.Background()); err == nil {
		t.Error("Create of a new host against a closed port succeeded")
	}
}

// TestResolveSkipsMatch: a `Match user` block in ~/.ssh/config (common, and
// not something shoal can evaluate) does not stop a host given by flags,
// nor its jump host.
func TestResolveSkipsMatch(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Match user deploy\n  IdentityFile ~/.ssh/deploy\nHost bastion\n  HostName 10.0.0.1\n"), 0o600)
	c := &Config{Host: "10.0.0.5", User: "deploy", ProxyJump: "ops@bastion"}
	if err := resolve(c, func(string) bool { return true }); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if c.ProxyJump != "ops@10.0.0.1:22" || c.Key != "" {
		t.Fatalf("resolved %+v", c)
	}
}

// TestResolveRefusedValueOverridden: a value ~/.ssh/config may not give (a
// directory account's CORP\john in Host *) stops nothing when the flag
// sets it, and is named when it would be used.
func TestResolveRefusedValueOverridden(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte("Host *\n  User CORP\\john\n"), 0o600)
	c := &Config{Host: "10.0.0.5", User: "john", ProxyJump: "ops@10.0.0.1"}
	if err := resolve(c, func(n string) bool { return n == "user" }); err != nil {
		t.Fatalf("resolve with --ssh-user given: %v", err)
	}
	c = &Config{Host: "10.0.0.5", User: "root"}
	if err := resolve(c, func(string) bool { return false }); err == nil || !strings.Contains(err.Error(), "User") {
		t.Fatalf("resolve taking the user from ssh_config: want its refusal, got %v", err)
	}
}
