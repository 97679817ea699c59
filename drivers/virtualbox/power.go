package virtualbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/shoal-dev/shoal/drivers"
)

// lookup finds VBoxManage and the machine's own VM (info nil: there is
// none) for a step; an error names the step.
func (d *Driver) lookup(ctx context.Context, step string) (*vboxCmd, *vmInfo, *machineState, error) {
	v, err := d.mgr.vbox(ctx, d.cfg.VBoxManage)
	if err != nil {
		return nil, nil, nil, d.errorf(step, err)
	}
	info, st, err := d.ours(ctx, v)
	if err != nil {
		return nil, nil, nil, d.errorf(step, err)
	}
	return v, info, st, nil
}

// existing is lookup for a step that needs the VM: none is ErrVMNotFound.
func (d *Driver) existing(ctx context.Context, step string) (*vboxCmd, *vmInfo, *machineState, error) {
	v, info, st, err := d.lookup(ctx, step)
	if err == nil && info == nil {
		err = d.errorf(step, ErrVMNotFound)
	}
	return v, info, st, err
}

// Start powers the VM on and waits for SSH.
func (d *Driver) Start(ctx context.Context) error {
	v, info, st, err := d.existing(ctx, "start")
	if err != nil {
		return err
	}
	if !st.Complete {
		return d.errorf("start", errors.New("the VM was not fully made (an interrupted create): run create again"))
	}
	return d.start(ctx, v, info, st)
}

// Stop presses the ACPI power button and waits for the guest to power off;
// a guest that has not after the stop timeout is powered off.
func (d *Driver) Stop(ctx context.Context) error {
	v, info, st, err := d.existing(ctx, "stop")
	if err != nil {
		return err
	}
	switch vmState(info.State) {
	case drivers.Stopped:
		return nil
	case drivers.Paused:
		// A paused guest cannot see the button.
		return d.powerOff(ctx, v, st)
	}
	if _, err := d.mgr.run(ctx, v, "controlvm", st.VMName, "acpipowerbutton"); err != nil {
		return d.errorf("stop: acpipowerbutton", err)
	}
	stopped, err := d.waitStopped(ctx, v)
	if err != nil || stopped {
		return err
	}
	// The guest ignored the button (no acpid, hung shutdown): pull the plug.
	return d.powerOff(ctx, v, st)
}

// waitStopped waits, up to the stop timeout, for the VM to be off (or
// gone).
func (d *Driver) waitStopped(ctx context.Context, v *vboxCmd) (bool, error) {
	deadline := time.Now().Add(d.mgr.opts.stopTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false, d.errorf("stop", ctx.Err())
		case <-time.After(d.mgr.opts.pollInterval):
		}
		info, err := d.info(ctx, v)
		if err != nil {
			return false, d.errorf("stop", err)
		}
		if info == nil || vmState(info.State) == drivers.Stopped {
			return true, nil
		}
	}
	return false, nil
}

func (d *Driver) powerOff(ctx context.Context, v *vboxCmd, st *machineState) error {
	_, err := d.mgr.run(ctx, v, "controlvm", st.VMName, "poweroff")
	if err == nil {
		return nil
	}
	// It may have stopped on its own meanwhile: the VM's state says so in
	// any language, the error text only in English.
	if info, ierr := d.info(ctx, v); ierr == nil && (info == nil || vmState(info.State) == drivers.Stopped) {
		return nil
	}
	return d.errorf("poweroff", err)
}

// Kill powers the VM off at once.
func (d *Driver) Kill(ctx context.Context) error {
	v, info, st, err := d.existing(ctx, "kill")
	if err != nil {
		return err
	}
	if vmState(info.State) == drivers.Stopped {
		return nil
	}
	return d.powerOff(ctx, v, st)
}

// Restart stops the VM (gracefully, as Stop) and starts it again.
func (d *Driver) Restart(ctx context.Context) error {
	if err := d.Stop(ctx); err != nil {
		return err
	}
	return d.Start(ctx)
}

// Remove deletes the VM, its disk, its seed and the driver's files. A
// machine whose VM is gone is cleaned up without error; a VM of the same
// name that this machine did not make is left alone.
func (d *Driver) Remove(ctx context.Context) error {
	v, info, st, err := d.lookup(ctx, "remove")
	if err != nil {
		return err
	}
	if info != nil {
		if err := d.destroy(ctx, v, info, st); err != nil {
			return d.errorf("remove", err)
		}
	}
	d.forgetMedium(ctx, v, "dvd", filepath.Join(d.m.Dir, SeedFile), true)
	d.forgetMedium(ctx, v, "disk", filepath.Join(d.m.Dir, DiskFile), true)
	var errs []error
	for _, p := range []string{filepath.Join(d.m.Dir, d.vmName()), filepath.Join(d.m.Dir, ConsoleLog), filepath.Join(d.m.Dir, StateFile)} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return d.errorf("remove", err)
	}
	return nil
}

// destroy powers the VM off, drops its SSH forwarding and unregisters it
// with its disks.
func (d *Driver) destroy(ctx context.Context, v *vboxCmd, info *vmInfo, st *machineState) error {
	if s := vmState(info.State); s != drivers.Stopped {
		if err := d.powerOff(ctx, v, st); err != nil {
			return err
		}
	}
	if _, ok := info.Forwards["ssh"]; ok {
		// Free the host port at once, even if the unregister below fails.
		if _, err := d.mgr.run(ctx, v, "modifyvm", st.VMName, optName(v, "--natpf1", "--nat-pf1"), "delete", "ssh"); err != nil {
			return err
		}
	}
	if _, err := d.mgr.run(ctx, v, "unregistervm", st.VMName, "--delete"); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func optName(v *vboxCmd, legacy, modern string) string {
	if v.modern() {
		return modern
	}
	return legacy
}

// State reads the VM's state from VirtualBox.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	_, info, _, err := d.lookup(ctx, "state")
	if err != nil {
		return drivers.Unknown, err
	}
	if info == nil {
		return drivers.NotFound, nil
	}
	return vmState(info.State), nil
}

// vmState maps VirtualBox's machine states: VBoxManageInfo.cpp's short
// names, which --machinereadable prints untranslated. The snapshot states
// say whether the VM runs meanwhile; settingup is a powered-off VM being
// changed (a clone, a move).
func vmState(s string) drivers.State {
	switch s {
	case "running", "teleporting", "livesnapshotting", "onlinesnapshotting", "deletingsnapshotlive":
		return drivers.Running
	case "paused", "teleportingpausedvm", "deletingsnapshotlivepaused":
		return drivers.Paused
	case "poweroff", "aborted", "saved", "teleported", "aborted-saved",
		"snapshotting", "restoringsnapshot", "deletingsnapshot", "settingup":
		return drivers.Stopped
	case "starting", "restoring", "teleportingin":
		return drivers.Starting
	case "stopping", "saving":
		return drivers.Stopping
	case "stuck", "gurumeditation":
		return drivers.Error
	}
	return drivers.Unknown
}
