package virtualbox

import (
	"context"
	"errors"

	"github.com/shoal-dev/shoal/internal/validate"
)

// Adoption is what another tool (docker-machine) recorded of a VM it made.
type Adoption struct {
	SSHPort            int    // the NAT forward to the guest's port 22
	SSHUser            string // "docker" on boot2docker
	HostOnlyIP         string
	HostKeyFingerprint string
}

// Adopt takes over the VM named like the machine, made by another tool:
// afterwards start, stop, kill and rm work on it. It only reads the VM
// (showvminfo) and writes the driver's record; the VM is not changed.
func (d *Driver) Adopt(ctx context.Context, a Adoption) error {
	v, err := d.mgr.vbox(ctx, d.cfg.VBoxManage)
	if err != nil {
		return d.errorf("adopt", err)
	}
	st, err := loadState(d.m.Dir)
	if err != nil {
		return d.errorf("adopt", err)
	}
	if st != nil {
		return d.errorf("adopt", errors.New("the machine already has a VM of its own"))
	}
	info, err := d.info(ctx, v)
	if err != nil {
		return d.errorf("adopt: look for the VM", err)
	}
	if info == nil {
		return d.errorf("adopt", ErrVMNotFound)
	}
	if validate.Port(a.SSHPort) != nil {
		return d.errorf("adopt", errors.New("no SSH port forwarded to the guest"))
	}
	return saveState(d.m.Dir, &machineState{
		VMName: d.vmName(), UUID: info.UUID, CfgFile: info.CfgFile, Complete: true,
		SSHPort: a.SSHPort, SSHUser: a.SSHUser, HostKeyFingerprint: a.HostKeyFingerprint, HostOnlyIP: a.HostOnlyIP,
	})
}
