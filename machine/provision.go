package machine

// Provisioning a stored machine: its spec, the run, the plan.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/provision"
	"github.com/shoal-dev/shoal/provision/osfamily"
)

// Provision provisions a stored machine again.
func (m *Manager) Provision(ctx context.Context, name string) (*Machine, error) {
	unlock, err := m.Store.Lock(ctx, "machine", name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	mach, err := m.Load(name)
	if err != nil {
		return nil, err
	}
	if err := m.refreshAddress(ctx, mach); err != nil {
		return mach, err
	}
	return mach, m.provision(ctx, mach)
}

func (m *Manager) provision(ctx context.Context, mach *Machine) error {
	if _, err := m.RenewCerts(time.Now()); err != nil {
		return err
	}
	logf, err := m.OpenLog(mach)
	if err != nil {
		return err
	}
	defer logf.Close()
	m.Progress.Event(mach.Name, "ssh", ui.Started, "")
	client, err := m.Connect(ctx, mach, logf)
	if err != nil {
		m.Progress.Event(mach.Name, "ssh", ui.Failed, "")
		return &unreachableError{err}
	}
	defer client.Close()
	m.Progress.Event(mach.Name, "ssh", ui.Unchanged, client.User()+"@"+client.Host())
	if !mach.JustCreated {
		// Its dockerd may restart: not while a roll or rotate runs.
		unlock, err := m.lockSwarmOf(ctx, mach, client)
		if err != nil {
			return err
		}
		defer unlock()
	}
	rep, err := m.ProvisionWith(ctx, mach, client)
	if err != nil {
		return err
	}
	if mach.Swarm == nil {
		return nil
	}
	engine := m.EngineLogin(ctx, mach, client, rep, logf)
	if engine != client {
		defer engine.Close()
	}
	return m.bootstrap(ctx, mach, engine, rep.DockerRestarted)
}

// EngineLogin is the connection to talk to the machine's engine over
// after provisioning with client. When provisioning just put the login
// user in the docker group, only a new login is in it: one is made now,
// so that the engine's API goes over plain channels instead of a sudo'd
// `docker system dial-stdio` session for each of its connections, and the
// keeper keeps that login for the next run instead of logging in afresh
// once this one is done. When it fails, client serves (through sudo).
// The caller closes a connection other than client.
func (m *Manager) EngineLogin(ctx context.Context, mach *Machine, client *sshrun.Client, rep *provision.Report, transcript io.Writer) *sshrun.Client {
	if !LoginOutdated(rep) || client.User() != mach.DockerUser {
		return client
	}
	fresh, err := m.Connect(ctx, mach, transcript)
	if err != nil {
		fmt.Fprintf(transcript, "# a new login for the docker group failed (the engine goes through sudo): %v\n", err)
		return client
	}
	return fresh
}

// OpenLog starts the machine's provision.log (the last run's transcript).
func (m *Manager) OpenLog(mach *Machine) (*os.File, error) {
	logf, err := os.OpenFile(filepath.Join(mach.Dir, store.ProvisionLog), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "# shoal provisioning of %s, %s\n", mach.Name, time.Now().UTC().Format(time.RFC3339))
	return logf, nil
}

// OpenIdleLog is OpenLog for a run over many hosts: the file is open only
// while written to, and closed after idle without a write (a host waiting
// for the others holds no descriptor for its log).
func (m *Manager) OpenIdleLog(mach *Machine, idle time.Duration) (io.WriteCloser, error) {
	logf, err := m.OpenLog(mach)
	if err != nil {
		return nil, err
	}
	if err := logf.Close(); err != nil {
		return nil, err
	}
	return fsutil.NewIdleFile(logf.Name(), idle), nil
}

// ProvisionWith provisions the machine over an open connection.
func (m *Manager) ProvisionWith(ctx context.Context, mach *Machine, client *sshrun.Client) (*provision.Report, error) {
	rep, _, _, err := m.ProvisionHolding(ctx, mach, client, nil)
	return rep, err
}

// provisionSpec turns the stored machine into what provisioning wants.
func (m *Manager) provisionSpec(mach *Machine) (provision.Spec, error) {
	e := mach.Engine
	hosts, registries, ports, err := m.swarmNeeds(mach)
	if err != nil {
		return provision.Spec{}, err
	}
	opts, err := EngineOptions(e.Opts, e.StorageDriver)
	if err != nil {
		return provision.Spec{}, fmt.Errorf("%s: %w", mach.Name, err)
	}
	spec := provision.Spec{
		Hostname:   mach.Hostname,
		DockerUser: mach.DockerUser,
		Install: osfamily.Install{Mode: validate.InstallMode(e.Install), Version: e.Version, RepoURL: e.RepoURL,
			OSMirror: e.OSMirror, ReplaceConflicting: e.ReplaceConflicting},
		Daemon: provision.DaemonSettings{
			InsecureRegistries: concat(e.InsecureRegistries, opts.InsecureRegistries, registries),
			RegistryMirrors:    concat(e.RegistryMirrors, opts.RegistryMirrors),
			Labels:             concat(e.Labels, opts.Labels),
			Defaults:           opts.Defaults,
		},
		DockerEnv:      e.Env,
		Hosts:          hosts,
		SwarmAddr:      swarmAddr(mach),
		AuthorizedKeys: mach.AuthorizedKeys,
		FirewallPorts:  ports,
	}
	if e.TLS && e.CertDir == "" {
		tls, err := m.serverTLS(mach)
		if err != nil {
			return spec, fmt.Errorf("%s: TLS certificates: %w", mach.Name, err)
		}
		spec.TLS = tls
	}
	return spec, nil
}

// concat joins lists into a new one (nil when all are empty).
func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// PlanProvision says what provisioning would change on the machine (the
// persist step's too); it changes nothing.
func (m *Manager) PlanProvision(ctx context.Context, mach *Machine, client *sshrun.Client) (provision.Changes, error) {
	spec, err := m.provisionSpec(mach)
	if err != nil {
		return provision.Changes{}, err
	}
	spec.Persist = true
	h, err := provision.Prepare(ctx, client, spec)
	if err != nil {
		return provision.Changes{}, err
	}
	return provision.PlanChanges(ctx, h)
}

// swarmAddr is the address (or interface) the machine's swarm traffic
// uses, as the swarm stage will advertise it.
func swarmAddr(mach *Machine) string {
	if mach.Swarm != nil && mach.Swarm.AdvertiseAddr != "" {
		return mach.Swarm.AdvertiseAddr
	}
	return mach.Address
}

// Hold decides whether changes that restart dockerd (a new engine, new
// TLS files) wait for a roll (provision.Hold).
type Hold = provision.Hold

// ProvisionHolding provisions the machine over an open connection with one
// facts probe, as ProvisionWith does, but keeps its engine and TLS files as
// they are when hold says so (then held is true, and why says why).
//
// probes ride the facts probe's round trip (their answers in Report.Facts).
func (m *Manager) ProvisionHolding(ctx context.Context, mach *Machine, client *sshrun.Client, hold Hold, probes ...provision.Probe) (rep *provision.Report, held bool, why string, err error) {
	if err := m.pinHostKey(mach, client); err != nil {
		return nil, false, "", err
	}
	spec, err := m.provisionSpec(mach)
	if err != nil {
		return nil, false, "", err
	}
	spec.Probes = probes
	// What is set must survive a reboot that rewrites it (the persist step).
	spec.Persist = true
	spec.Hold = hold
	if mach.Daemon != nil {
		spec.KnownDaemon = provision.RunningDaemon(*mach.Daemon)
	}
	progress := func(step string, st ui.Status, detail string) { m.Progress.Event(mach.Name, step, st, detail) }
	rep, err = provision.Provision(ctx, client, spec, progress)
	if rep != nil {
		held, why = len(rep.Held) > 0, provision.JoinWhys(rep.Held)
	}
	if err != nil || LoginOutdated(rep) {
		// The login's groups are those of its start: a new docker group
		// member is one only on a new login, so the next run makes one
		// (or this one does: EngineLogin).
		client.Forget()
	}
	if err != nil {
		return rep, held, why, err
	}
	return rep, held, why, m.keepDaemon(mach, rep.Daemon)
}

// pinHostKey records the host key the connection saw, when it is new.
func (m *Manager) pinHostKey(mach *Machine, client *sshrun.Client) error {
	fp := sshrun.Fingerprint(client.HostKey())
	if fp == mach.SSH.HostKeyFingerprint {
		return nil
	}
	if old := mach.SSH.HostKeyFingerprint; old != "" {
		m.Progress.Event(mach.Name, "host-key", ui.Changed, fmt.Sprintf("pinned %s (was %s)", fp, old))
	}
	mach.SSH.HostKeyFingerprint = fp
	return m.Store.Save(mach.Machine)
}

// LoginOutdated tells whether provisioning changed the docker user's
// groups, which a login made before it does not have.
func LoginOutdated(rep *provision.Report) bool {
	return rep != nil && slices.Contains(rep.Changed, string(provision.StepUser))
}

// keepDaemon records the daemon a provisioning left running (none: it was
// restarted, or not seen) in the machine's config, when that changed.
func (m *Manager) keepDaemon(mach *Machine, d provision.RunningDaemon) error {
	var have provision.RunningDaemon
	if mach.Daemon != nil {
		have = provision.RunningDaemon(*mach.Daemon)
	}
	if m.ReadOnly || d == have {
		return nil
	}
	mach.Daemon = nil
	if d != (provision.RunningDaemon{}) {
		sd := store.Daemon(d)
		mach.Daemon = &sd
	}
	return m.Store.Save(mach.Machine)
}
