package machine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/provision"
)

// Remove deletes the host (what the driver made) and forgets the machine.
// With force, errors of the driver do not stop the machine being forgotten.
func (m *Manager) Remove(ctx context.Context, name string, force bool) error {
	unlock, err := m.Store.Lock(ctx, "machine", name)
	if err != nil {
		return err
	}
	defer unlock()
	mach, err := m.Load(name)
	if err != nil {
		if force && !errors.Is(err, store.ErrNotFound) {
			return m.Store.Remove(name)
		}
		return err
	}
	if err := m.removeHost(ctx, mach, force); err != nil {
		return err
	}
	if err := m.Store.Remove(name); err != nil {
		return err
	}
	m.Progress.Event(name, "remove", ui.Changed, "")
	return nil
}

// removeHost takes the machine out of its swarm and has its driver remove
// the host (an adopted one is only cleaned); with force, their errors stop
// nothing.
func (m *Manager) removeHost(ctx context.Context, mach *Machine, force bool) error {
	name := mach.Name
	m.Progress.Event(name, "remove", ui.Started, mach.Driver.Name())
	if err := m.leaveSwarm(ctx, mach); err != nil && !force {
		m.Progress.Event(name, "remove", ui.Failed, err.Error())
		return fmt.Errorf("%s: leave the swarm: %w (use -f to remove anyway)", name, err)
	}
	m.forget(ctx, mach)
	if err := mach.Driver.Remove(ctx); err != nil && !force {
		m.Progress.Event(name, "remove", ui.Failed, err.Error())
		return fmt.Errorf("%s: remove (%s driver): %w (use -f to forget it anyway)", name, mach.Driver.Name(), err)
	}
	return nil
}

// forget takes off a host that stays (an adopted one) what would bring
// shoal's settings back: the boot unit that restores the hostname and the
// /etc/hosts block, and its cluster's SSH mesh (provision.ForgetScript).
// A host that does not answer, or where the script fails (a sudo that
// asks a password shoal was not given), keeps them: that is said, and the
// machine is forgotten all the same, as asked.
func (m *Manager) forget(ctx context.Context, mach *Machine) {
	if !drivers.Adopts(mach.Driver) {
		return // the driver deletes the host
	}
	kept := "its " + provision.PersistUnitName + " and SSH mesh files stay"
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := m.Connect(cctx, mach, io.Discard)
	if err != nil {
		m.Progress.Event(mach.Name, "forget", ui.Failed, "unreachable: "+kept)
		return
	}
	defer c.Close()
	if _, err := c.RunSudo(ctx, provision.ForgetScript(mach.DockerUser, mach.Cluster)); err != nil {
		m.Progress.Event(mach.Name, "forget", ui.Failed, kept+": "+err.Error())
		return
	}
	m.Progress.Event(mach.Name, "forget", ui.Changed, provision.PersistUnitName+" removed")
}

// Start powers the host on; a changed address gets new certificates.
func (m *Manager) Start(ctx context.Context, name string) error {
	mach, err := m.Load(name)
	if err != nil {
		return err
	}
	m.Progress.Event(name, "start", ui.Started, "")
	if err := mach.Driver.Start(ctx); err != nil {
		m.Progress.Event(name, "start", ui.Failed, err.Error())
		return fmt.Errorf("%s: start: %w", name, err)
	}
	m.Progress.Event(name, "start", ui.Changed, "")
	addr, err := drivers.Address(ctx, mach.Driver)
	if err == nil && addr != mach.Address && mach.Engine.TLS {
		m.Progress.Event(name, "address", ui.Info, fmt.Sprintf("%s -> %s: new server certificate", mach.Address, addr))
		return m.RegenerateCerts(ctx, name)
	}
	return nil
}

// Stop shuts the host down.
func (m *Manager) Stop(ctx context.Context, name string) error {
	return m.simple(ctx, name, "stop", func(d drivers.Driver) error { return d.Stop(ctx) })
}

// Kill powers the host off at once.
func (m *Manager) Kill(ctx context.Context, name string) error {
	return m.simple(ctx, name, "kill", func(d drivers.Driver) error { return d.Kill(ctx) })
}

// Restart stops and starts the host.
func (m *Manager) Restart(ctx context.Context, name string) error {
	if err := m.Stop(ctx, name); err != nil {
		return err
	}
	return m.Start(ctx, name)
}

func (m *Manager) simple(ctx context.Context, name, verb string, f func(drivers.Driver) error) error {
	mach, err := m.Load(name)
	if err != nil {
		return err
	}
	m.Progress.Event(name, verb, ui.Started, "")
	if err := f(mach.Driver); err != nil {
		m.Progress.Event(name, verb, ui.Failed, err.Error())
		return fmt.Errorf("%s: %s: %w", name, verb, err)
	}
	m.Progress.Event(name, verb, ui.Changed, "")
	return nil
}

// RegenerateCerts issues a new server certificate and installs it.
func (m *Manager) RegenerateCerts(ctx context.Context, name string) error {
	mach, err := m.Load(name)
	if err != nil {
		return err
	}
	if !mach.Engine.TLS {
		return fmt.Errorf("%s: the engine has no TLS (created with --engine-tls=false)", name)
	}
	if mach.Engine.CertDir != "" {
		// An imported engine moves to shoal's certificates.
		mach.Engine.CertDir = ""
		if err := m.Store.Save(mach.Machine); err != nil {
			return err
		}
	}
	os.Remove(mach.Dir + "/" + store.ServerCertFile)
	_, err = m.Provision(ctx, name)
	return err
}

// State asks the driver.
func (m *Manager) State(ctx context.Context, name string) (drivers.State, error) {
	mach, err := m.Load(name)
	if err != nil {
		return drivers.Unknown, err
	}
	return mach.Driver.State(ctx)
}

// URL is the Docker Engine's address for the docker CLI.
func URL(mach *store.Machine) string {
	if !mach.Engine.TLS || mach.Address == "" {
		return ""
	}
	port := mach.Engine.TLSPort
	port = cmp.Or(port, 2376)
	return fmt.Sprintf("tcp://%s:%d", hostPort(mach.Address), port)
}

func hostPort(addr string) string {
	for _, c := range addr {
		if c == ':' {
			return "[" + addr + "]"
		}
	}
	return addr
}
