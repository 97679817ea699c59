// Package provision makes a host that answers SSH a well-configured Docker
// node: hostname, /etc/hosts, the docker user, Docker installed, daemon.json
// merged, the daemon's TLS, the service. Each step checks the host's real
// state first and changes only what differs, so a second run is a no-op.
package provision

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/provision/osfamily"
)

// Runner is what provisioning needs of a connection to the host.
type Runner interface {
	Host() string
	User() string
	Run(ctx context.Context, cmd string) (sshrun.Result, error)
	RunSudo(ctx context.Context, cmd string) (sshrun.Result, error)
	WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode, owner string) error
}

// Spec is what the host should be.
type Spec struct {
	Hostname   string
	DockerUser string
	Install    osfamily.Install
	Daemon     DaemonSettings
	// Hosts is the cluster block of /etc/hosts (empty: no block).
	Hosts []HostEntry
	// AuthorizedKeys are added to the docker user's authorized_keys.
	AuthorizedKeys []string
	// TLS, when set, makes dockerd listen on tcp with TLS verification.
	TLS *TLS
	// DockerEnv is dockerd's environment, K=V (a systemd drop-in).
	DockerEnv []string
	// FirewallPorts are opened besides SwarmPorts (and the TLS port) when
	// firewalld or ufw runs: PORT/tcp or PORT/udp, e.g. the registry's
	// "5000/tcp".
	FirewallPorts []string
	// SwarmAddr is the address (or interface) swarm traffic uses on the
	// host; its interface's firewalld zone gets the ports. Empty: the
	// address shoal connects to.
	SwarmAddr string
	// LockWait bounds the wait for another process to release the package
	// manager's lock (0: DefaultLockWait).
	LockWait time.Duration
	// lockPoll is how often the lock is looked at (0: every 2s); tests
	// shorten it.
	lockPoll time.Duration
	// Probes are the caller's own read-only probes, run in the facts
	// probe's round trip; their answers are in Report.Facts.
	Probes []Probe
	// KnownDaemon is the daemon the last run left (Report.Daemon): while
	// it runs, the first probe takes its version from here.
	KnownDaemon RunningDaemon
}

// TLS is the daemon's certificate material (PEM) and port.
type TLS struct {
	CA, Cert, Key []byte
	Port          int
}

// Host is the state the steps share while provisioning one host.
type Host struct {
	R      Runner
	Spec   Spec
	Facts  *Facts
	OS     osfamily.OS
	Family osfamily.Family

	// restart is set by steps whose change dockerd only sees after a restart.
	restart bool
	// reload is set when a systemd unit file changed.
	reload bool
	// restartSocket is set when dockerd's local socket moves to
	// docker.socket's (socketMoves): the socket unit restarts with it.
	restartSocket bool
	// daemonJSON is set when this run replaced daemon.json: a dockerd that
	// then does not start gets the host's old file back.
	daemonJSON bool
	// reenable are units to enable (again) after the reload, before
	// dockerd starts (EnableUnit).
	reenable []string
	// first are files written before any step, as a step of their own
	// (WriteFirst).
	first      []sshrun.File
	firstLabel string
	// SudoTTY tells that sudo on this host needs a pty (requiretty) and the
	// runner was switched to giving it one.
	SudoTTY bool
	// keepRules put back the runtime-only firewalld rules that the reload
	// of dockerd's first start with firewalld drops (firewalldKeepStep);
	// dockerdStarted tells that this run started or restarted dockerd.
	keepRules      []string
	dockerdStarted bool
	// progress hears about waits and warnings while steps run (nil: none).
	progress Progress
}

// EnableUnit asks the docker-service step to reload systemd and enable
// unit (again: its links follow [Install] as it is now) before dockerd is
// started or restarted: one systemd reload for the run, not one a unit.
func (h *Host) EnableUnit(unit string) {
	h.reload = true
	h.reenable = append(h.reenable, unit)
}

// WriteFirst has Apply write files before any step, reported as a step
// named label (in the steps' one session where the runner can).
func (h *Host) WriteFirst(label string, files []sshrun.File) {
	h.first, h.firstLabel = files, label
}

// filesStep writes the WriteFirst files, as a step named by the caller.
type filesStep struct{ label string }

func (s filesStep) Name() string                                 { return s.label }
func (filesStep) Check(_ context.Context, h *Host) (bool, error) { return len(h.first) > 0, nil }
func (filesStep) Apply(ctx context.Context, h *Host) error       { return writeFiles(ctx, h.R, h.first) }

// Step is one thing a host must have.
type Step interface {
	Name() string
	// Check tells whether Apply would change anything.
	Check(ctx context.Context, h *Host) (bool, error)
	Apply(ctx context.Context, h *Host) error
}

// StepError says which step failed on which host.
type StepError struct {
	Host string
	Step string
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s: step %q: %v", e.Host, e.Step, e.Err)
}
func (e *StepError) Unwrap() error { return e.Err }

// Report says what a run did.
type Report struct {
	Changed []string
	// DockerRestarted tells whether dockerd was (re)started.
	DockerRestarted bool
	// DockerVersion is what `docker info` says at the end.
	DockerVersion string
	// Daemon is the running daemon as the run left it, when the probe saw
	// it and it was neither installed nor restarted since (else zero): the
	// next run's Spec.KnownDaemon.
	Daemon RunningDaemon
	// Facts are what the probe found before any change (after the install,
	// when Docker was installed).
	Facts *Facts
}

// Steps is the ordered list of provisioning steps.
func Steps() []Step {
	return []Step{
		hostnameStep{}, hostsStep{}, osReposStep{}, installStep{}, selinuxStep{}, userStep{}, daemonJSONStep{}, engineEnvStep{}, tlsStep{}, firewallStep{}, iptablesStep{}, ipvsStep{}, vmxnet3Step{}, serviceStep{}, firewalldKeepStep{},
	}
}

// Progress receives step events; nil means none.
type Progress func(step string, status ui.Status, detail string)

// Prepare reads the host's facts and OS; it changes nothing.
func Prepare(ctx context.Context, r Runner, spec Spec) (*Host, error) {
	if spec.DockerUser == "" {
		spec.DockerUser = r.User()
	}
	if err := validate.DockerUser(spec.DockerUser); err != nil {
		return nil, fmt.Errorf("invalid docker user: %w", err)
	}
	if _, err := wantedPorts(spec); err != nil {
		return nil, err
	}
	for _, p := range spec.Probes {
		if !sectionRE.MatchString(p.Name) || builtinProbe(p.Name) {
			return nil, fmt.Errorf("probe name %q is not allowed", p.Name)
		}
	}
	facts, tty, err := gatherFactsSudo(ctx, r, spec.DockerUser, probeAddr(spec, r), spec.KnownDaemon, spec.Probes...)
	if err != nil {
		return nil, &StepError{Host: r.Host(), Step: "facts", Err: err}
	}
	os := osfamily.ParseOSRelease(facts.Section("os-release"))
	fam, err := osfamily.Detect(os)
	if err != nil {
		return nil, &StepError{Host: r.Host(), Step: "os", Err: err}
	}
	if !facts.Has("systemctl") {
		return nil, &StepError{Host: r.Host(), Step: "os", Err: errors.New("systemd is required (no systemctl on the host)")}
	}
	h := &Host{R: r, Spec: spec, Facts: facts, OS: os, Family: fam, SudoTTY: tty}
	h.keepRules = (firewalldKeepStep{}).keep(h)
	// Refuse what cannot end well before anything is changed.
	if _, err := osRepoPlan(h); err != nil {
		return nil, &StepError{Host: r.Host(), Step: (osReposStep{}).Name(), Err: err}
	}
	src, err := (installStep{}).source(h)
	if err == nil && src != "" {
		_, err = installCommands(h, src)
	}
	if err != nil {
		return nil, &StepError{Host: r.Host(), Step: (installStep{}).Name(), Err: err}
	}
	if _, _, err := (daemonJSONStep{}).merge(h); err != nil {
		return nil, &StepError{Host: r.Host(), Step: "daemon.json", Err: err}
	}
	if spec.TLS != nil {
		if _, err := (tlsStep{}).Check(ctx, h); err != nil {
			return nil, &StepError{Host: r.Host(), Step: "docker-tls", Err: err}
		}
	}
	return h, nil
}

// Plan lists the steps that would change something.
func Plan(ctx context.Context, h *Host) ([]string, error) {
	var out []string
	for _, s := range Steps() {
		changed, err := s.Check(ctx, h)
		if err != nil {
			return nil, &StepError{Host: h.R.Host(), Step: s.Name(), Err: err}
		}
		if changed {
			name := s.Name()
			if d, ok := s.(interface{ planDetail(*Host) string }); ok {
				if detail := d.planDetail(h); detail != "" {
					name += " (" + detail + ")"
				}
			}
			out = append(out, name)
		}
	}
	return out, nil
}

// Provision runs every step on the host behind r.
func Provision(ctx context.Context, r Runner, spec Spec, progress Progress) (*Report, error) {
	if progress == nil {
		progress = func(string, ui.Status, string) {}
	}
	progress("facts", ui.Started, "")
	h, err := Prepare(ctx, r, spec)
	if err != nil {
		progress("facts", ui.Failed, err.Error())
		return nil, err
	}
	progress("facts", ui.Unchanged, h.OS.PrettyName)
	return Apply(ctx, h, progress)
}

// Apply runs every step on a prepared host (Prepare read its facts; the
// caller may have changed h.Spec since, from what Plan said).
func Apply(ctx context.Context, h *Host, progress Progress) (*Report, error) {
	if progress == nil {
		progress = func(string, ui.Status, string) {}
	}
	r := h.R
	h.progress = progress
	for _, w := range warnings(h) {
		progress(w.step, ui.Info, w.text)
	}
	rep := &Report{Facts: h.Facts}
	// Steps that only write files and run root commands are run together
	// in one session (batchable): on a host that has Docker, every change
	// up to and with the dockerd restart.
	var b *batch
	if br, ok := r.(BatchRunner); ok {
		b = &batch{runner: br}
	}
	flush := func() error {
		if b == nil {
			return nil
		}
		return b.flush(ctx, h, rep, progress)
	}
	steps := Steps()
	if len(h.first) > 0 {
		steps = append([]Step{filesStep{h.firstLabel}}, steps...)
	}
	for _, s := range steps {
		changed, err := s.Check(ctx, h)
		if err != nil {
			if ferr := flush(); ferr != nil {
				return rep, ferr
			}
			progress(s.Name(), ui.Failed, "")
			return rep, &StepError{Host: r.Host(), Step: s.Name(), Err: err}
		}
		if !changed {
			progress(s.Name(), ui.Unchanged, "")
			continue
		}
		progress(s.Name(), ui.Started, "")
		if s.Name() == (serviceStep{}).Name() && (h.restart || h.Facts.Section("active") != "active") {
			rep.DockerRestarted = true
		}
		if b != nil && batchable(s) {
			if err := b.record(ctx, h, s); err != nil {
				if ferr := flush(); ferr != nil {
					return rep, ferr
				}
				progress(s.Name(), ui.Failed, "")
				return rep, &StepError{Host: r.Host(), Step: s.Name(), Err: err}
			}
			continue
		}
		if err := flush(); err != nil {
			return rep, err
		}
		start := time.Now()
		if err := s.Apply(ctx, h); err != nil {
			progress(s.Name(), ui.Failed, "")
			return rep, &StepError{Host: r.Host(), Step: s.Name(), Err: err}
		}
		rep.Changed = append(rep.Changed, s.Name())
		if s.Name() == (installStep{}).Name() {
			rep.Facts = h.Facts
		}
		progress(s.Name(), ui.Changed, time.Since(start).Round(time.Millisecond).String())
	}
	if err := flush(); err != nil {
		return rep, err
	}
	// A daemon that answered the probe and was neither installed nor
	// (re)started since costs no second round trip.
	if v := h.Facts.RunningDocker(); v != "" && !rep.DockerRestarted && !slices.Contains(rep.Changed, (installStep{}).Name()) {
		rep.DockerVersion = v
		rep.Daemon = h.Facts.Daemon()
		progress("docker-info", ui.Unchanged, "Docker "+v)
		return rep, nil
	}
	progress("docker-info", ui.Started, "")
	version, err := WaitDocker(ctx, r, 60*time.Second)
	if err != nil {
		progress("docker-info", ui.Failed, "")
		return rep, &StepError{Host: r.Host(), Step: "docker-info", Err: err}
	}
	rep.DockerVersion = version
	progress("docker-info", ui.Unchanged, "Docker "+version)
	return rep, nil
}

// EngineChange tells whether provisioning would install Docker on a host
// that has it already (another version or source asked for), and the
// versions: a change that restarts dockerd, which a swarm node takes one
// at a time.
func EngineChange(h *Host) (have, want string, change bool, err error) {
	have = h.Facts.DockerVersion()
	src, err := (installStep{}).source(h)
	if err != nil || have == "" {
		return have, h.Spec.Install.Version, false, err
	}
	return have, h.Spec.Install.Version, src != "", nil
}
