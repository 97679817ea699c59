package dmimport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/remote"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	sshdriver "github.com/shoal-dev/shoal/drivers/ssh"
	"github.com/shoal-dev/shoal/drivers/virtualbox"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
)

// Import writes the shoal machine: the key and the engine's client
// certificates copied into its folder, the host key pinned.
func Import(ctx context.Context, m *machine.Manager, p Plan) error {
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
	if err := fill(ctx, m, p, own); err != nil {
		os.RemoveAll(dir)
		return err
	}
	return nil
}

// copyFile copies a regular file of the docker-machine store (within
// bounds) into shoal's.
func copyFile(src, dst string, mode os.FileMode) error {
	data, err := store.ReadRegular(src, maxDMFile)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(dst, data, mode)
}

// fill writes the machine into its new folder: the engine's client
// certificates copied into own, the driver's part, config.json.
func fill(ctx context.Context, m *machine.Manager, p Plan, own string) error {
	for f, mode := range map[string]os.FileMode{"ca.pem": 0o644, "cert.pem": 0o644, "key.pem": 0o600} {
		if err := copyFile(filepath.Join(p.CertDir, f), filepath.Join(own, f), mode); err != nil {
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
	var err error
	if p.VirtualBox != nil {
		err = adoptVM(ctx, m, p, mach)
	} else {
		err = sshMachine(p, own, mach)
	}
	if err != nil {
		return err
	}
	return m.Store.Save(mach)
}

// sshMachine makes a generic machine an ssh one: its key copied, the host
// key pinned.
func sshMachine(p Plan, own string, mach *store.Machine) error {
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
	mach.SSH = remote.Endpoint{Host: p.Host, Port: p.Port, User: p.User, KeyPath: cfg.Key, UseAgent: cfg.Key == "", HostKeyFingerprint: p.Fingerprint}
	return nil
}

// virtualboxSpec is the virtualbox driver and a new config of it.
func virtualboxSpec(m *machine.Manager) (*drivers.Spec, *virtualbox.Config, error) {
	spec, err := m.Drivers.Get("virtualbox")
	if err != nil {
		return nil, nil, err
	}
	cfg, ok := spec.NewConfig().(*virtualbox.Config)
	if !ok {
		return nil, nil, fmt.Errorf("virtualbox driver: unexpected config %T", spec.NewConfig())
	}
	return spec, cfg, nil
}

// vmAdopterDriver is a driver that adopts a VirtualBox VM.
type vmAdopterDriver interface {
	Adopt(context.Context, virtualbox.Adoption) error
}

// vmAdopter is the virtualbox driver of the machine id, which adopts a VM.
func vmAdopter(spec *drivers.Spec, id drivers.Identity, cfg *virtualbox.Config) (vmAdopterDriver, error) {
	d, err := spec.New(id, cfg)
	if err != nil {
		return nil, err
	}
	adopter, ok := d.(vmAdopterDriver)
	if !ok {
		return nil, errors.New("the virtualbox driver cannot adopt a VM")
	}
	return adopter, nil
}

// adoptVM makes a docker-machine VirtualBox machine a virtualbox one: the
// VM is adopted as it is (read with showvminfo, not changed), its key
// becomes the machine's key.
func adoptVM(ctx context.Context, m *machine.Manager, p Plan, mach *store.Machine) error {
	spec, cfg, err := virtualboxSpec(m)
	if err != nil {
		return err
	}
	vmSettings(cfg, p.VirtualBox)
	cfg.SSHUser = p.User
	dir := m.Store.MachineDir(p.Name)
	key := filepath.Join(dir, store.KeyFile)
	if err := copyFile(p.KeyPath, key, 0o600); err != nil {
		return err
	}
	adopter, err := vmAdopter(spec, drivers.Identity{Name: p.Name, Dir: dir, PrivateKeyPath: key}, cfg)
	if err != nil {
		return err
	}
	if err := adopter.Adopt(ctx, virtualbox.Adoption{SSHPort: p.Port, SSHUser: p.User, HostOnlyIP: p.Address, HostKeyFingerprint: p.Fingerprint}); err != nil {
		return err
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	mach.DriverConfig = raw
	mach.SSH = remote.Endpoint{Host: p.Host, Port: p.Port, User: p.User, KeyPath: key, HostKeyFingerprint: p.Fingerprint}
	return nil
}

// vmSettings keeps the VM's size and host-only network as docker-machine
// recorded them (the driver's defaults where it recorded none).
func vmSettings(cfg *virtualbox.Config, vb *dmVirtualBox) {
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
}
