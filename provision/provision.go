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
	// Persist has the hostname and the /etc/hosts block kept over a reboot
	// that rewrites them (the persist step).
	Persist bool
	// Hold, when set, decides whether changes that restart dockerd wait
	// for a roll (Provision; Report.Held).
	Hold Hold
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
	// persist is what the persist step does (Spec.Persist; planPersist).
	persist *persistPlan
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

// Step is one thing a host must have.
type Step interface {
	Name() StepName
	// Check tells whether Apply would change anything.
	Check(ctx context.Context, h *Host) (bool, error)
	Apply(ctx context.Context, h *Host) error
}

// StepError says which step failed on which host.
type StepError struct {
	Host string
	Step StepName
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
	// Held are the changes that restart dockerd which Spec.Hold kept for
	// a roll (nil: none was held).
	Held []Why
}

// Steps is the ordered list of provisioning steps.
func Steps() []Step {
	return []Step{
		hostnameStep{}, hostsStep{}, osReposStep{}, installStep{}, selinuxStep{}, userStep{}, daemonJSONStep{}, engineEnvStep{}, tlsStep{}, firewallStep{}, iptablesStep{}, ipvsStep{}, vmxnet3Step{}, serviceStep{}, firewalldKeepStep{},
	}
}

// Progress receives step events; nil means none.
type Progress func(step string, status ui.Status, detail string)

// checkSpec checks the spec before the host is read: the docker user, the
// ports, the caller's probes' names.
func checkSpec(spec Spec) error {
	if err := validate.DockerUser(spec.DockerUser); err != nil {
		return fmt.Errorf("invalid docker user: %w", err)
	}
	if _, err := wantedPorts(spec); err != nil {
		return err
	}
	for _, p := range spec.Probes {
		if !sectionRE.MatchString(p.Name) || builtinProbe(p.Name) {
			return fmt.Errorf("probe name %q is not allowed", p.Name)
		}
	}
	return nil
}

// Prepare reads the host's facts and OS; it changes nothing.
func Prepare(ctx context.Context, r Runner, spec Spec) (*Host, error) {
	if spec.DockerUser == "" {
		spec.DockerUser = r.User()
	}
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	if spec.Persist {
		// The restore's probe rides the facts probe, after the caller's.
		spec.Probes = append(slices.Clip(spec.Probes), persistProbe())
	}
	facts, tty, err := gatherFactsSudo(ctx, r, spec.DockerUser, probeAddr(spec, r), spec.KnownDaemon, spec.Probes...)
	if err != nil {
		return nil, &StepError{Host: r.Host(), Step: StepFacts, Err: err}
	}
	os := osfamily.ParseOSRelease(facts.Section("os-release"))
	fam, err := osfamily.Detect(os)
	if err != nil {
		return nil, &StepError{Host: r.Host(), Step: StepOS, Err: err}
	}
	if !facts.Has("systemctl") {
		return nil, &StepError{Host: r.Host(), Step: StepOS, Err: errors.New("systemd is required (no systemctl on the host)")}
	}
	h := &Host{R: r, Spec: spec, Facts: facts, OS: os, Family: fam, SudoTTY: tty}
	h.keepRules = (firewalldKeepStep{}).keep(h)
	return h, refuse(ctx, h)
}

// refuse says what cannot end well, before anything is changed.
func refuse(ctx context.Context, h *Host) error {
	host := h.R.Host()
	if _, err := osRepoPlan(h); err != nil {
		return &StepError{Host: host, Step: StepOSRepos, Err: err}
	}
	src, err := (installStep{}).source(h)
	if err == nil && src != "" {
		_, err = installCommands(h, src)
	}
	if err != nil {
		return &StepError{Host: host, Step: StepInstall, Err: err}
	}
	if _, _, err := (daemonJSONStep{}).merge(h); err != nil {
		return &StepError{Host: host, Step: StepDaemonJSON, Err: err}
	}
	if h.Spec.TLS != nil {
		if _, err := (tlsStep{}).Check(ctx, h); err != nil {
			return &StepError{Host: host, Step: StepTLS, Err: err}
		}
	}
	return nil
}

// Plan lists the steps that would change something, as the plan says them.
func Plan(ctx context.Context, h *Host) ([]string, error) {
	c, err := PlanChanges(ctx, h)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(c.Steps))
	for i, s := range c.Steps {
		out[i] = s.String()
	}
	return out, nil
}

// changeOf is the change step s would make, with its detail if it tells
// one.
func changeOf(s Step, h *Host) Change {
	ch := Change{Step: s.Name()}
	if d, ok := s.(interface{ planDetail(*Host) string }); ok {
		ch.Detail = d.planDetail(h)
	}
	return ch
}

// PlanChanges says what provisioning would change on a prepared host: the
// steps (the persist step last) and the engine's versions. It changes
// nothing.
func PlanChanges(ctx context.Context, h *Host) (Changes, error) {
	var c Changes
	for _, s := range Steps() {
		changed, err := s.Check(ctx, h)
		if err != nil {
			return c, &StepError{Host: h.R.Host(), Step: s.Name(), Err: err}
		}
		if changed {
			c.Steps = append(c.Steps, changeOf(s, h))
		}
	}
	p, err := h.planPersist(ctx)
	if err != nil {
		return c, err
	}
	if p != nil && (len(p.files) > 0 || p.enable) {
		c.Steps = append(c.Steps, Change{Step: StepPersist})
	}
	c.Have, c.Want, _, err = EngineChange(h)
	return c, err
}

// Provision runs every step on the host behind r: the facts probe, the
// hold (Spec.Hold), the steps.
func Provision(ctx context.Context, r Runner, spec Spec, progress Progress) (*Report, error) {
	progress = orNone(progress)
	progress(string(StepFacts), ui.Started, "")
	h, err := Prepare(ctx, r, spec)
	if err != nil {
		progress(string(StepFacts), ui.Failed, err.Error())
		return nil, err
	}
	progress(string(StepFacts), ui.Unchanged, h.OS.PrettyName)
	p, err := h.planPersist(ctx)
	if err != nil {
		progress(string(StepPersist), ui.Failed, err.Error())
		return nil, err
	}
	held, err := h.hold(ctx)
	if err != nil {
		return nil, err
	}
	if p != nil && p.enable {
		h.EnableUnit(PersistUnitName)
	}
	rep, err := Apply(ctx, h, progress)
	if rep != nil {
		rep.Held = held
	}
	if err == nil {
		finishPersist(h, rep, progress)
	}
	return rep, err
}

// hold asks Spec.Hold about the changes that restart dockerd; held, the
// engine and its TLS files stay as they are in this run.
func (h *Host) hold(ctx context.Context) ([]Why, error) {
	if h.Spec.Hold == nil {
		return nil, nil
	}
	c, err := PlanChanges(ctx, h)
	if err != nil {
		return nil, err
	}
	whys := NeedsRestart(c)
	if len(whys) == 0 {
		return nil, nil
	}
	held, err := h.Spec.Hold(ctx, whys)
	if err != nil || !held {
		return nil, err
	}
	h.Spec.Install.Mode = validate.InstallSkip
	h.Spec.TLS = nil
	return whys, nil
}

func orNone(progress Progress) Progress {
	if progress == nil {
		return func(string, ui.Status, string) {}
	}
	return progress
}

// Apply runs every step on a prepared host (Prepare read its facts; the
// caller may have changed h.Spec since, from what Plan said).
func Apply(ctx context.Context, h *Host, progress Progress) (*Report, error) {
	progress = orNone(progress)
	h.progress = progress
	for _, w := range warnings(h) {
		progress(string(w.step), ui.Info, w.text)
	}
	a := &applying{h: h, progress: progress, rep: &Report{Facts: h.Facts}}
	// Steps that only write files and run root commands are run together
	// in one session (batchable): on a host that has Docker, every change
	// up to and with the dockerd restart.
	if br, ok := h.R.(BatchRunner); ok {
		a.b = &batch{runner: br}
	}
	steps := Steps()
	if h.persist != nil && len(h.persist.files) > 0 {
		steps = append([]Step{persistStep{}}, steps...)
	}
	for _, s := range steps {
		if err := a.step(ctx, s); err != nil {
			return a.rep, err
		}
	}
	if err := a.flush(ctx); err != nil {
		return a.rep, err
	}
	return a.rep, a.dockerInfo(ctx)
}

// applying is one run of Apply.
type applying struct {
	h        *Host
	progress Progress
	rep      *Report
	b        *batch
}

func (a *applying) flush(ctx context.Context) error {
	if a.b == nil {
		return nil
	}
	return a.b.flush(ctx, a.h, a.rep, a.progress)
}

// failed reports a step's failure, after what was batched before it ran.
func (a *applying) failed(ctx context.Context, s Step, err error) error {
	if ferr := a.flush(ctx); ferr != nil {
		return ferr
	}
	a.progress(string(s.Name()), ui.Failed, "")
	return &StepError{Host: a.h.R.Host(), Step: s.Name(), Err: err}
}

// step checks one step and applies it when it would change something:
// recorded for the batch when it can be, else at once.
func (a *applying) step(ctx context.Context, s Step) error {
	h, name := a.h, string(s.Name())
	changed, err := s.Check(ctx, h)
	if err != nil {
		return a.failed(ctx, s, err)
	}
	if !changed {
		a.progress(name, ui.Unchanged, "")
		return nil
	}
	a.progress(name, ui.Started, "")
	if s.Name() == StepService && (h.restart || h.Facts.Section("active") != "active") {
		a.rep.DockerRestarted = true
	}
	if a.b != nil && batchable(s) {
		if err := a.b.record(ctx, h, s); err != nil {
			return a.failed(ctx, s, err)
		}
		return nil
	}
	if err := a.flush(ctx); err != nil {
		return err
	}
	return a.apply(ctx, s)
}

// apply applies a step at once, after what was batched before it.
func (a *applying) apply(ctx context.Context, s Step) error {
	h, name := a.h, string(s.Name())
	start := time.Now()
	if err := s.Apply(ctx, h); err != nil {
		a.progress(name, ui.Failed, "")
		return &StepError{Host: h.R.Host(), Step: s.Name(), Err: err}
	}
	a.rep.Changed = append(a.rep.Changed, name)
	if s.Name() == StepInstall {
		a.rep.Facts = h.Facts
	}
	a.progress(name, ui.Changed, time.Since(start).Round(time.Millisecond).String())
	return nil
}

// dockerInfo reads the version of the daemon the run leaves.
func (a *applying) dockerInfo(ctx context.Context) error {
	h, rep, info := a.h, a.rep, string(StepDockerInfo)
	// A daemon that answered the probe and was neither installed nor
	// (re)started since costs no second round trip.
	if v := h.Facts.RunningDocker(); v != "" && !rep.DockerRestarted && !slices.Contains(rep.Changed, string(StepInstall)) {
		rep.DockerVersion = v
		rep.Daemon = h.Facts.Daemon()
		a.progress(info, ui.Unchanged, "Docker "+v)
		return nil
	}
	a.progress(info, ui.Started, "")
	version, err := WaitDocker(ctx, h.R, 60*time.Second)
	if err != nil {
		a.progress(info, ui.Failed, "")
		return &StepError{Host: h.R.Host(), Step: StepDockerInfo, Err: err}
	}
	rep.DockerVersion = version
	a.progress(info, ui.Unchanged, "Docker "+version)
	return nil
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
