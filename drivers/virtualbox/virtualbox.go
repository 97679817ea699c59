// Package virtualbox is the driver for VirtualBox VMs made from a cloud
// image, through VBoxManage (6.1, 7.0, 7.1 and later).
//
// A machine is a VM with its own disk (a clone of the image, converted once
// to VDI and cached), a NoCloud seed on a DVD, NIC 1 on NAT with SSH
// forwarded from 127.0.0.1, and NIC 2 on a host-only network with a fixed
// address: the cluster talks over NIC 2. VirtualBox cannot run on the
// machines shoal is built on: the driver is tested against a fake VBoxManage
// (internal/fakevbox) that answers as VirtualBox 6.1, 7.0 and 7.1 do, in
// English and Russian, on x86-64 and Apple Silicon hosts.
package virtualbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/remote"
	"strings"

	"github.com/shoal-dev/shoal/drivers"
)

// Name is the driver's name.
const Name = "virtualbox"

// ErrVMNotFound means the machine's VM does not exist (any more).
var ErrVMNotFound = errors.New("the VM does not exist")

// Driver is a VirtualBox machine.
type Driver struct {
	mgr *manager
	m   drivers.Identity
	cfg *Config
}

var (
	_ drivers.Driver    = (*Driver)(nil)
	_ drivers.Addresser = (*Driver)(nil)
)

func newDriver(mgr *manager, m drivers.Identity, cfg *Config) *Driver {
	return &Driver{mgr: mgr, m: m, cfg: cfg}
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

func (d *Driver) errorf(step string, err error) error {
	return fmt.Errorf("virtualbox machine %q: %s: %w", d.m.Name, step, err)
}

// vmName is the VM's name in VirtualBox: the machine's, as docker-machine
// did, so that users find it in VirtualBox's window.
func (d *Driver) vmName() string { return d.m.Name }

// info returns the VM's showvminfo, or nil when VirtualBox has no VM by
// that name.
func (d *Driver) info(ctx context.Context, v *vboxCmd) (*vmInfo, error) {
	out, err := d.mgr.run(ctx, v, "showvminfo", d.vmName(), "--machinereadable")
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseVMInfo(out)
}

// ours returns the VM and the driver's record of it, or nil when the VM is
// missing or is not the one this machine made (a VM of the same name made
// by hand or by another tool is never touched).
func (d *Driver) ours(ctx context.Context, v *vboxCmd) (*vmInfo, *machineState, error) {
	st, err := loadState(d.m.Dir)
	if err != nil {
		return nil, nil, err
	}
	info, err := d.info(ctx, v)
	if err != nil || info == nil || st == nil || st.UUID == "" || !strings.EqualFold(st.UUID, info.UUID) {
		return nil, st, err
	}
	return info, st, nil
}

// SSH returns 127.0.0.1 and the forwarded port, the machine's key and the
// fingerprint of the host key the seed gave the guest.
func (d *Driver) SSH(ctx context.Context) (drivers.Endpoint, error) {
	st, err := loadState(d.m.Dir)
	if err != nil {
		return drivers.Endpoint{}, d.errorf("ssh", err)
	}
	if st == nil || st.SSHPort == 0 {
		return drivers.Endpoint{}, d.errorf("ssh", errors.New("the machine has not been created"))
	}
	return drivers.Endpoint{
		Endpoint: remote.Endpoint{
			Host:               "127.0.0.1",
			Port:               st.SSHPort,
			User:               st.SSHUser,
			KeyPath:            d.m.PrivateKeyPath,
			HostKeyFingerprint: st.HostKeyFingerprint,
		},
	}, nil
}

// Address returns the machine's fixed address on the host-only network:
// the one the other nodes and the host reach it at.
func (d *Driver) Address(ctx context.Context) (string, error) {
	st, err := loadState(d.m.Dir)
	if err != nil {
		return "", d.errorf("address", err)
	}
	if st == nil || st.HostOnlyIP == "" {
		return "", d.errorf("address", errors.New("the machine has not been created"))
	}
	return st.HostOnlyIP, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
