package main

import (
	"github.com/shoal-dev/shoal/internal/sshrun"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers"
	sshdriver "github.com/shoal-dev/shoal/drivers/ssh"
	"github.com/shoal-dev/shoal/drivers/virtualbox"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
)

// dmMachine is a docker-machine config.json (libmachine's host, config
// version 3): the driver's fields depend on DriverName.
type dmMachine struct {
	ConfigVersion int
	Driver        json.RawMessage
	DriverName    string
	HostOptions   *dmHostOptions
	Name          string
}

// dmGeneric is the generic driver's part: the common fields plus the
// engine port and the key the user gave (copied to SSHKeyPath).
type dmGeneric struct {
	dmDriver
	EnginePort int
	SSHKey     string
}

// dmVirtualBox is the virtualbox driver's part that shoal's driver keeps.
type dmVirtualBox struct {
	dmDriver
	CPU          int
	Memory       int
	DiskSize     int
	HostOnlyCIDR string
}

// importPlan is what `machine import` does with one docker-machine machine.
type importPlan struct {
	Name       string
	DriverName string // docker-machine's
	// Driver is shoal's driver; empty when the machine is not importable,
	// and Reason says why.
	Driver  string
	Reason  string
	Host    string
	Port    int
	User    string
	KeyPath string // in the docker-machine store ("" = the ssh-agent)
	// KeyOutside says KeyPath is outside the machine's folder: it is copied
	// only once confirmed.
	KeyOutside bool
	EnginePort int
	CertDir    string // the docker-machine machine's folder: ca.pem cert.pem key.pem
	Address    string // the engine's address
	VirtualBox *dmVirtualBox
	// Fingerprint is the host key seen at import.
	Fingerprint string
}

// defaultDMStore is docker-machine's store: $MACHINE_STORAGE_PATH, else
// ~/.docker/machine.
func defaultDMStore() string {
	if p := os.Getenv("MACHINE_STORAGE_PATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".docker", "machine")
	}
	return filepath.Join(home, ".docker", "machine")
}

// planImport reads the docker-machine store at root and decides, machine
// by machine, what shoal can take over. It only reads files.
func planImport(root string, only []string, inShoal func(string) bool) ([]importPlan, error) {
	dir := filepath.Join(root, "machines")
	// Opening a FIFO would block: only a folder is listed.
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("docker-machine store %s: machines is not a folder", root)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("docker-machine store %s: %w", root, err)
	}
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	var plans []importPlan
	for _, e := range entries {
		if !e.IsDir() || (len(only) > 0 && !want[e.Name()]) {
			continue
		}
		delete(want, e.Name())
		plans = append(plans, planOne(filepath.Join(dir, e.Name()), e.Name(), inShoal))
	}
	for n := range want {
		plans = append(plans, importPlan{Name: n, Reason: "not in the docker-machine store"})
	}
	sort.Slice(plans, func(i, j int) bool { return plans[i].Name < plans[j].Name })
	return plans, nil
}

// maxDMFile bounds a certificate or key read from a docker-machine store.
const maxDMFile = 64 << 10

func planOne(dir, name string, inShoal func(string) bool) importPlan {
	p := importPlan{Name: name, CertDir: dir}
	// A hostile store may hold a FIFO or a link to a device here.
	data, err := store.ReadRegular(filepath.Join(dir, "config.json"), store.MaxConfigSize)
	if err != nil {
		p.Reason = "no config.json: " + err.Error()
		return p
	}
	var h dmMachine
	if err := json.Unmarshal(data, &h); err != nil {
		p.Reason = "config.json is not valid: " + err.Error()
		return p
	}
	p.DriverName = h.DriverName
	if p.Reason = checkDMHost(dir, name, h, inShoal); p.Reason != "" {
		return p
	}
	switch h.DriverName {
	case "generic":
		planGeneric(&p, dir, h.Driver)
	case "none":
		p.Reason = "the none driver has no host shoal could reach over SSH"
	case "virtualbox":
		planVirtualBox(&p, dir, h.Driver)
	default:
		p.Reason = fmt.Sprintf("shoal has no %s driver: adopt the host with 'machine create -d ssh --ssh-host ADDRESS ...'", h.DriverName)
	}
	return p
}

// checkDMHost says why a machine cannot be imported whatever its driver
// ("" when it can).
func checkDMHost(dir, name string, h dmMachine, inShoal func(string) bool) string {
	if err := validate.Name(name); err != nil {
		return err.Error()
	}
	if h.Name != "" && h.Name != name {
		return fmt.Sprintf("config.json names it %q", h.Name)
	}
	if inShoal(name) {
		return "shoal's store already has a machine of that name"
	}
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if err := regularFile(filepath.Join(dir, f)); err != nil {
			return "no " + f + " (the client certificate for its engine): " + err.Error()
		}
	}
	if h.HostOptions != nil && h.HostOptions.EngineOptions != nil && !h.HostOptions.EngineOptions.TLSVerify {
		return "its engine does not verify TLS clients"
	}
	return ""
}

// checkDMDriver checks the common fields shoal takes from a config.json:
// they become an SSH address and login.
func checkDMDriver(d dmDriver) error {
	if d.IPAddress != "" {
		if err := validate.Host(d.IPAddress); err != nil {
			return fmt.Errorf("IPAddress: %w", err)
		}
	}
	if d.SSHUser != "" {
		if err := validate.UserName(d.SSHUser); err != nil {
			return fmt.Errorf("SSHUser: %w", err)
		}
	}
	if d.SSHPort != 0 {
		if err := validate.Port(d.SSHPort); err != nil {
			return fmt.Errorf("SSHPort: %w", err)
		}
	}
	return nil
}

func planGeneric(p *importPlan, dir string, raw json.RawMessage) {
	var d dmGeneric
	if err := json.Unmarshal(raw, &d); err != nil {
		p.Reason = "config.json: Driver: " + err.Error()
		return
	}
	if err := checkDMDriver(d.dmDriver); err != nil {
		p.Reason = "config.json: Driver: " + err.Error()
		return
	}
	if d.EnginePort != 0 {
		if err := validate.Port(d.EnginePort); err != nil {
			p.Reason = "config.json: Driver: EnginePort: " + err.Error()
			return
		}
	}
	p.Driver, p.Host, p.User, p.Port, p.EnginePort, p.Address = "ssh", d.IPAddress, d.SSHUser, d.SSHPort, d.EnginePort, d.IPAddress
	if p.Port == 0 {
		p.Port = 22
	}
	if p.User == "" {
		p.User = "root"
	}
	if p.EnginePort == 0 {
		p.EnginePort = 2376
	}
	// docker-machine copies the user's key to the machine's id_rsa.
	p.KeyPath, p.KeyOutside = pickKey(dir, []string{d.SSHKeyPath, filepath.Join(dir, "id_rsa"), d.SSHKey})
	if p.Host == "" {
		p.Driver, p.Reason = "", "the generic driver's IPAddress is empty"
	}
}

func planVirtualBox(p *importPlan, dir string, raw json.RawMessage) {
	var d dmVirtualBox
	if err := json.Unmarshal(raw, &d); err != nil {
		p.Reason = "config.json: Driver: " + err.Error()
		return
	}
	if err := checkDMDriver(d.dmDriver); err != nil {
		p.Reason = "config.json: Driver: " + err.Error()
		return
	}
	// SSH goes through VirtualBox's NAT forward on this computer.
	p.Driver, p.Host, p.Port, p.User, p.Address, p.EnginePort, p.VirtualBox = "virtualbox", "127.0.0.1", d.SSHPort, d.SSHUser, d.IPAddress, 2376, &d
	if p.User == "" {
		p.User = "docker"
	}
	// The VM's key is the machine's id_rsa, and nothing else.
	key, outside := pickKey(dir, []string{filepath.Join(dir, "id_rsa")})
	switch {
	case key == "" || outside:
		p.Driver, p.Reason = "", "no id_rsa (the VM's SSH key) in its folder"
	case p.Port == 0 || p.Address == "":
		p.Driver, p.Reason = "", "no SSH port or address recorded: start it with docker-machine first"
	default:
		p.KeyPath = key
	}
}

// regularFile checks that p is a regular file (a link to one is fine):
// nothing else is read from a docker-machine store.
func regularFile(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	return nil
}

// pickKey chooses the machine's SSH key among the candidates: a regular
// file that holds an SSH private key, one inside the machine's folder
// (symlinks resolved) first. outside says the key chosen is elsewhere: a
// config.json may name any file, so it is used only once confirmed.
func pickKey(dir string, candidates []string) (key string, outside bool) {
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", false
	}
	for _, k := range candidates {
		if k == "" || !isPrivateKey(k) {
			continue
		}
		rk, err := filepath.EvalSymlinks(k)
		if err != nil {
			continue
		}
		if within(rdir, rk) {
			return rk, false
		}
		if key == "" {
			key = rk
		}
	}
	return key, key != ""
}

// within says whether p is below dir (both absolute and resolved).
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// isPrivateKey says whether k is a regular file holding an SSH private key
// (one with a passphrase too).
func isPrivateKey(k string) bool {
	data, err := store.ReadRegular(k, maxDMFile)
	if err != nil {
		return false
	}
	_, err = ssh.ParseRawPrivateKey(data)
	var pm *ssh.PassphraseMissingError
	return err == nil || errors.As(err, &pm)
}

// scanHostKey reads the host key the SSH server at addr offers, without
// logging in.
func scanHostKey(ctx context.Context, addr string) (ssh.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	var key ssh.PublicKey
	errSeen := errors.New("host key seen")
	_, _, _, err = ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User: "shoal-import",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errSeen
		},
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA},
	})
	if key != nil {
		return key, nil
	}
	return nil, err
}

func newImport(g *globals) *cobra.Command {
	var dmRoot string
	var yes bool
	cmd := &cobra.Command{
		Use:   "import [--docker-machine-storage-path DIR] [-y] [NAME...]",
		Short: "Bring machines over from a docker-machine store",
		Long: `Bring the machines of a docker-machine store into shoal's (all, or the NAMEs).
generic machines become ssh machines with their address, user, port and key
(copied into shoal's store, as are the client certificates of their engine);
virtualbox machines become virtualbox machines that adopt the VM as it is
(boot2docker: ls, env, ssh, start, stop and rm work, provision does not).
Other drivers are listed with the reason they are not imported.

Each host's SSH key is read and shown; it is pinned once confirmed (on a
terminal, or with --yes). A login key that config.json names outside the
machine's folder is shown too, and copied only once confirmed; only regular
files are read, within bounds, and only SSH private keys are taken as keys. Nothing on the hosts changes: their engines keep
docker-machine's TLS set-up, so 'machine env' works at once, and 'machine
provision' puts them under shoal's provisioning without restarting dockerd
unless something must change. 'machine regenerate-certs' moves an engine to
shoal's certificates (dockerd restarts). The docker-machine store is only read.`,
		Example: `  machine import --yes
  machine import --docker-machine-storage-path ~/old/.docker/machine dev1`,
		ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return machineNames(dmRoot, args, toComplete), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				if err := validate.Name(n); err != nil {
					return cli.Invalid(err)
				}
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			root, err := filepath.Abs(dmRoot)
			if err != nil {
				return err
			}
			if root == m.Store.Root {
				return usageErr("the docker-machine store and shoal's are the same folder (%s): give shoal another with --storage-path", root)
			}
			plans, err := planImport(root, args, m.Store.Exists)
			if err != nil {
				return cli.Invalid(err)
			}
			// The hosts are asked in parallel, each within scanHostKey's bound.
			var wg sync.WaitGroup
			for i := range plans {
				p := &plans[i]
				if p.Driver == "" {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					addr := net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
					key, err := scanHostKey(cmd.Context(), addr)
					if err != nil {
						p.Driver, p.Reason = "", fmt.Sprintf("its SSH server at %s does not answer: %v", addr, err)
						return
					}
					p.Fingerprint = ssh.FingerprintSHA256(key)
				}()
			}
			wg.Wait()
			out := cmd.OutOrStdout()
			printPlans(out, plans)
			n := 0
			for _, p := range plans {
				if p.Driver != "" {
					n++
				}
			}
			if n == 0 {
				return errors.New("nothing to import")
			}
			if !yes {
				if !cli.IsTerminal(cmd.InOrStdin()) {
					return usageErr("not a terminal to ask on: check the host keys (and SSH keys) above and pass --yes to import")
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Import %d machine(s) and pin the host keys above%s? (y/n): ", n, keysQuestion(plans))
				var answer string
				fmt.Fscanln(cmd.InOrStdin(), &answer)
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return &cli.ExitError{Code: 1, Err: errors.New("nothing imported")}
				}
			}
			var errs []error
			for _, p := range plans {
				if p.Driver == "" {
					continue
				}
				if err := importOne(cmd.Context(), m, p); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
					continue
				}
				fmt.Fprintf(out, "Imported %s\n", p.Name)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVar(&dmRoot, "docker-machine-storage-path", defaultDMStore(), "docker-machine's store ($MACHINE_STORAGE_PATH, else ~/.docker/machine)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "pin the host keys shown without asking")
	return cmd
}

func printPlans(w io.Writer, plans []importPlan) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDOCKER-MACHINE DRIVER\tIMPORT AS\tSSH\tHOST KEY / REASON")
	for _, p := range plans {
		if p.Driver == "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\tnot importable: %s\n", p.Name, p.DriverName, p.Reason)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s@%s\t%s\n", p.Name, p.DriverName, p.Driver, p.User, net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), p.Fingerprint)
	}
	tw.Flush()
	for _, p := range plans {
		if p.Driver != "" && p.KeyOutside {
			fmt.Fprintf(w, "%s: its config.json names the SSH key %s, outside its docker-machine folder: it is copied into shoal's store only once you confirm\n", p.Name, p.KeyPath)
		}
	}
}

// keysQuestion adds the keys outside their machine's folder to the
// question that confirms an import.
func keysQuestion(plans []importPlan) string {
	for _, p := range plans {
		if p.Driver != "" && p.KeyOutside {
			return " and copy the SSH keys named outside their folders"
		}
	}
	return ""
}

// importOne writes the shoal machine: the key and the engine's client
// certificates copied into its folder, the host key pinned.
func importOne(ctx context.Context, m *machine.Manager, p importPlan) error {
	unlock, err := m.Store.Lock(ctx, "machine", p.Name)
	if err != nil {
		return err
	}
	defer unlock()
	dir := m.Store.MachineDir(p.Name)
	// A folder already there is not ours to fill (nor to remove on failure).
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s already exists in shoal's store", dir)
	}
	own := filepath.Join(dir, "docker-machine")
	if err := os.MkdirAll(own, 0o700); err != nil {
		return err
	}
	copyFile := func(src, dst string, mode os.FileMode) error {
		data, err := store.ReadRegular(src, maxDMFile)
		if err != nil {
			return err
		}
		return fsutil.WriteFileAtomic(dst, data, mode)
	}
	for f, mode := range map[string]os.FileMode{"ca.pem": 0o644, "cert.pem": 0o644, "key.pem": 0o600} {
		if err := copyFile(filepath.Join(p.CertDir, f), filepath.Join(own, f), mode); err != nil {
			os.RemoveAll(dir)
			return err
		}
	}
	mach := &store.Machine{
		Setup: store.Setup{
			Hostname:   p.Name,
			DockerUser: p.User,
			Engine:     store.Engine{Install: "auto", TLS: true, TLSPort: p.EnginePort, CertDir: own},
		},
		Name: p.Name, Driver: p.Driver,
		// docker-machine named the host after the machine.
		Address: p.Address,
		Created: time.Now().UTC(),
	}
	if p.VirtualBox != nil {
		err = adoptVM(ctx, m, p, mach)
	} else {
		err = sshMachine(p, own, mach, copyFile)
	}
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	if err := m.Store.Save(mach); err != nil {
		os.RemoveAll(dir)
		return err
	}
	return nil
}

// sshMachine makes a generic machine an ssh one: its key copied, the host
// key pinned.
func sshMachine(p importPlan, own string, mach *store.Machine, copyFile func(src, dst string, mode os.FileMode) error) error {
	cfg := sshdriver.Config{Host: p.Host, Port: p.Port, User: p.User, HostKey: p.Fingerprint}
	if p.KeyPath != "" {
		cfg.Key = filepath.Join(own, "id_rsa")
		if err := copyFile(p.KeyPath, cfg.Key, 0o600); err != nil {
			return err
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	mach.DriverConfig = raw
	mach.SSH = sshrun.Endpoint{Host: p.Host, Port: p.Port, User: p.User, KeyPath: cfg.Key, UseAgent: cfg.Key == "", HostKeyFingerprint: p.Fingerprint}
	return nil
}

// adoptVM makes a docker-machine VirtualBox machine a virtualbox one: the
// VM is adopted as it is (read with showvminfo, not changed), its key
// becomes the machine's key.
func adoptVM(ctx context.Context, m *machine.Manager, p importPlan, mach *store.Machine) error {
	spec, err := m.Drivers.Get("virtualbox")
	if err != nil {
		return err
	}
	cfg, ok := spec.NewConfig().(*virtualbox.Config)
	if !ok {
		return fmt.Errorf("virtualbox driver: unexpected config %T", spec.NewConfig())
	}
	vb := p.VirtualBox
	if vb.CPU > 0 {
		cfg.CPUs = vb.CPU
	}
	if vb.Memory > 0 {
		cfg.Memory = vb.Memory
	}
	if vb.DiskSize > 0 {
		cfg.DiskSize = vb.DiskSize
	}
	if vb.HostOnlyCIDR != "" {
		cfg.HostOnlyCIDR = vb.HostOnlyCIDR
	}
	cfg.SSHUser = p.User
	dir := m.Store.MachineDir(p.Name)
	key := filepath.Join(dir, store.KeyFile)
	data, err := store.ReadRegular(p.KeyPath, maxDMFile)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(key, data, 0o600); err != nil {
		return err
	}
	d, err := spec.New(drivers.Identity{Name: p.Name, Dir: dir, PrivateKeyPath: key}, cfg)
	if err != nil {
		return err
	}
	adopter, ok := d.(interface {
		Adopt(context.Context, virtualbox.Adoption) error
	})
	if !ok {
		return errors.New("the virtualbox driver cannot adopt a VM")
	}
	if err := adopter.Adopt(ctx, virtualbox.Adoption{SSHPort: p.Port, SSHUser: p.User, HostOnlyIP: p.Address, HostKeyFingerprint: p.Fingerprint}); err != nil {
		return err
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	mach.DriverConfig = raw
	mach.SSH = sshrun.Endpoint{Host: p.Host, Port: p.Port, User: p.User, KeyPath: key, HostKeyFingerprint: p.Fingerprint}
	return nil
}
