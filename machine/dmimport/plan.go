package dmimport

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/validate"
	"golang.org/x/crypto/ssh"
)

// PlanStore reads the docker-machine store at root and decides, machine
// by machine, what shoal can take over. It only reads files.
func PlanStore(root string, only []string, inShoal func(string) bool) ([]Plan, error) {
	dir := filepath.Join(root, "machines")
	// Opening a FIFO would block: only a folder is listed.
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("docker-machine store %s: machines is not a folder", root)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("docker-machine store %s: %w", root, err)
	}
	return planEntries(dir, entries, only, inShoal), nil
}

// planEntries plans the store's machines (only those named, if any); a
// name asked for that is not there is a plan that says so.
func planEntries(dir string, entries []os.DirEntry, only []string, inShoal func(string) bool) []Plan {
	want := map[string]bool{}
	for _, n := range only {
		want[n] = true
	}
	var plans []Plan
	for _, e := range entries {
		if !e.IsDir() || (len(only) > 0 && !want[e.Name()]) {
			continue
		}
		delete(want, e.Name())
		plans = append(plans, planOne(filepath.Join(dir, e.Name()), e.Name(), inShoal))
	}
	for n := range want {
		plans = append(plans, Plan{Name: n, Reason: "not in the docker-machine store"})
	}
	sort.Slice(plans, func(i, j int) bool { return plans[i].Name < plans[j].Name })
	return plans
}

// maxDMFile bounds a certificate or key read from a docker-machine store.
const maxDMFile = 64 << 10

func planOne(dir, name string, inShoal func(string) bool) Plan {
	p := Plan{Name: name, CertDir: dir}
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
	if why := missingCerts(dir); why != "" {
		return why
	}
	if h.HostOptions != nil && h.HostOptions.EngineOptions != nil && !h.HostOptions.EngineOptions.TLSVerify {
		return "its engine does not verify TLS clients"
	}
	return ""
}

// missingCerts says which of the engine's client certificate files dir
// lacks ("" when it has them all).
func missingCerts(dir string) string {
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if err := regularFile(filepath.Join(dir, f)); err != nil {
			return "no " + f + " (the client certificate for its engine): " + err.Error()
		}
	}
	return ""
}

// checkDMDriver checks the common fields shoal takes from a config.json:
// they become an SSH address and login.
func checkDMDriver(d Driver) error {
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

// decodeDriver reads config.json's Driver part into d, whose common
// fields are *common, and checks those; it says why not ("" when fine).
func decodeDriver(raw json.RawMessage, d any, common *Driver) string {
	err := json.Unmarshal(raw, d)
	if err == nil {
		err = checkDMDriver(*common)
	}
	if err != nil {
		return "config.json: Driver: " + err.Error()
	}
	return ""
}

func planGeneric(p *Plan, dir string, raw json.RawMessage) {
	var d dmGeneric
	if p.Reason = decodeDriver(raw, &d, &d.Driver); p.Reason != "" {
		return
	}
	if d.EnginePort != 0 {
		if err := validate.Port(d.EnginePort); err != nil {
			p.Reason = "config.json: Driver: EnginePort: " + err.Error()
			return
		}
	}
	p.Driver, p.Host, p.User, p.Port, p.EnginePort, p.Address = "ssh", d.IPAddress, d.SSHUser, d.SSHPort, d.EnginePort, d.IPAddress
	p.Port = cmp.Or(p.Port, 22)
	p.User = cmp.Or(p.User, "root")
	p.EnginePort = cmp.Or(p.EnginePort, 2376)
	// docker-machine copies the user's key to the machine's id_rsa.
	p.KeyPath, p.KeyOutside = pickKey(dir, []string{d.SSHKeyPath, filepath.Join(dir, "id_rsa"), d.SSHKey})
	if p.Host == "" {
		p.Driver, p.Reason = "", "the generic driver's IPAddress is empty"
	}
}

func planVirtualBox(p *Plan, dir string, raw json.RawMessage) {
	var d dmVirtualBox
	if p.Reason = decodeDriver(raw, &d, &d.Driver); p.Reason != "" {
		return
	}
	// SSH goes through VirtualBox's NAT forward on this computer.
	p.Driver, p.Host, p.Port, p.User, p.Address, p.EnginePort, p.VirtualBox = "virtualbox", "127.0.0.1", d.SSHPort, d.SSHUser, d.IPAddress, 2376, &d
	p.User = cmp.Or(p.User, "docker")
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
		key = cmp.Or(key, rk)
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
