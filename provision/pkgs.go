package provision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/provision/osfamily"
)

// DefaultLockWait bounds the wait for another package manager (a first
// boot's unattended-upgrades, a yum-cron run) to let go of its lock.
const DefaultLockWait = 10 * time.Minute

// needPackages tells whether provisioning will install packages from the
// OS's repositories: Docker, or container-selinux beside a Docker that is
// there.
func needPackages(h *Host) bool {
	if src, err := (installStep{}).source(h); err == nil && src != "" {
		return true
	}
	return selinuxEnforcing(h) && h.Facts.Has("rpm") && !h.Facts.RPMInstalled("container-selinux")
}

// osRepoPlan is what the OS's own repositories need (the RHEL family only).
func osRepoPlan(h *Host) (osfamily.OSRepoPlan, error) {
	if _, ok := h.Family.(osfamily.RHEL); !ok {
		var p osfamily.OSRepoPlan
		if h.Spec.Install.OSMirror != "" {
			p.Note = "os_mirror is not used: " + h.OS.PrettyName + " is not an end-of-life CentOS release and keeps its own repositories"
		}
		return p, nil
	}
	return osfamily.PlanOSRepos(h.OS, h.Facts.RepoDir(), h.Facts.Reach(), h.Spec.Install.OSMirror, needPackages(h))
}

// osReposStep points an end-of-life CentOS release's base, updates and
// extras repositories at the vault (engine os_mirror). The files it
// replaces are renamed to *.repo.shoal-orig, never changed.
type osReposStep struct{}

func (osReposStep) Name() StepName { return StepOSRepos }

func (osReposStep) Check(_ context.Context, h *Host) (bool, error) {
	p, err := osRepoPlan(h)
	return len(p.MoveAside) > 0 || p.Write != "", err
}

func (osReposStep) Apply(ctx context.Context, h *Host) error {
	p, err := osRepoPlan(h)
	if err != nil {
		return err
	}
	// Written first: a run cut short between the two leaves the old files
	// in place, and the next run moves them.
	if p.Write != "" {
		if err := h.R.WriteFile(ctx, osfamily.MirrorRepoFile, []byte(p.Write), 0o644, ""); err != nil {
			return err
		}
	}
	var mv []string
	for _, f := range p.MoveAside {
		q := shell.Quote(f)
		mv = append(mv, "mv -n "+q+" "+shell.Quote(f+osfamily.RepoBackupExt))
	}
	if len(mv) > 0 {
		if _, err := h.R.RunSudo(ctx, strings.Join(mv, " && ")); err != nil {
			return err
		}
	}
	// The repositories changed: read them again.
	f, err := GatherFacts(ctx, h.R, h.Spec.DockerUser, probeAddr(h.Spec, h.R), RunningDaemon{}, h.Spec.Probes...)
	if err != nil {
		return err
	}
	h.Facts = f
	return nil
}

// installCommands is every command the install step sends for src, in
// order: what the RHEL family needs first (RHEL 7's extras repository, the
// removal of conflicting packages when allowed), then the family's install.
func installCommands(h *Host, src string) ([]string, error) {
	var cmds []string
	if el, ok := h.Family.(osfamily.RHEL); ok {
		if src == "repo" {
			c, err := el.ResolveConflicts(h.OS, osfamily.Conflicts(h.Facts.RPMInstalled), h.Spec.Install.ReplaceConflicting)
			if err != nil {
				return nil, err
			}
			if c != "" {
				cmds = append(cmds, c)
			}
		}
		c, err := osfamily.RHEL7Extras(h.OS, h.Facts.RepoDir().Repos, h.Facts.Has("subscription-manager"))
		if err != nil {
			return nil, err
		}
		if c != "" {
			cmds = append(cmds, c)
		}
	}
	rest, err := h.Family.InstallDocker(h.OS, src, h.Spec.Install, h.Facts.RPMInstalled)
	if err != nil {
		return nil, err
	}
	return append(cmds, rest...), nil
}

// lockWait decides, from who holds the package lock and how long shoal
// has waited, whether to wait on: nil and false when the lock is free, an
// error when the bound has passed.
func lockWait(holders []string, waited, bound time.Duration) (bool, error) {
	if len(holders) == 0 {
		return false, nil
	}
	if waited >= bound {
		return false, fmt.Errorf("the package manager's lock is still held by %s after %s: on a freshly booted host this is usually "+
			"unattended-upgrades (or yum-cron, dnf-automatic); let it finish and run again, or stop it", strings.Join(holders, ", "), bound)
	}
	return true, nil
}

// lockTimes are how long to wait for the package lock at most, and how
// often to look.
func (s Spec) lockTimes() (bound, poll time.Duration) {
	bound, poll = s.LockWait, s.lockPoll
	if bound <= 0 {
		bound = DefaultLockWait
	}
	if poll <= 0 {
		poll = 2 * time.Second
	}
	return bound, poll
}

// waitPackageLock waits, bounded and saying so, until no other process
// holds the package manager's lock.
func waitPackageLock(ctx context.Context, h *Host, step StepName) error {
	bound, poll := h.Spec.lockTimes()
	start := time.Now()
	for {
		res, err := h.R.RunSudo(ctx, h.Family.LockHolders())
		if err != nil {
			return fmt.Errorf("looking for the package manager's lock: %w", err)
		}
		holders := osfamily.ParseLockHolders(string(res.Stdout))
		waited := time.Since(start)
		wait, err := lockWait(holders, waited, bound)
		if err != nil || !wait {
			if len(holders) == 0 && waited > poll {
				h.say(step, ui.Info, fmt.Sprintf("the package lock is free after %s", waited.Round(time.Second)))
			}
			return err
		}
		h.say(step, ui.Info, fmt.Sprintf("waiting for the package lock, held by %s (%s of at most %s)",
			strings.Join(holders, ", "), waited.Round(time.Second), bound))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// lockRetries is how often a package command that lost the race for the
// lock to another process is run again, after waiting for the lock.
const lockRetries = 3

// runPackageCmd runs a package manager command, and runs it again when
// another process took the lock just before it (unattended-upgrades runs
// apt several times in a row).
func runPackageCmd(ctx context.Context, h *Host, step StepName, cmd string) error {
	for try := 0; ; try++ {
		_, err := h.R.RunSudo(ctx, cmd)
		var re *sshrun.RunError
		if err == nil || try >= lockRetries || !errors.As(err, &re) || !osfamily.IsLockError(re.Stderr) {
			return err
		}
		h.say(step, ui.Info, "another process took the package lock first: waiting for it, then again")
		if err := waitPackageLock(ctx, h, step); err != nil {
			return err
		}
	}
}

// checkPin asks the repository, once docker-ce.repo is in place, whether
// it has the pinned version, so that a missing one is an error that lists
// what there is rather than dnf's "No match for argument".
func checkPin(ctx context.Context, h *Host) error {
	if h.Spec.Install.Version == "" {
		return nil
	}
	root := strings.TrimRight(h.Spec.Install.RepoURL, "/")
	root = cmp.Or(root, osfamily.DefaultRepoURL)
	switch fam := h.Family.(type) {
	case osfamily.RHEL:
		res, err := h.R.RunSudo(ctx, fam.ListVersionsCmd())
		if err != nil {
			return fmt.Errorf("listing the docker-ce versions the repository offers: %w", err)
		}
		repo := root + "/linux/" + osfamily.DockerRepoDir(h.OS, fam.Major, h.Spec.Install.Version) + "/" + strconv.Itoa(fam.Major)
		return osfamily.CheckPin(osfamily.ParseVersions(string(res.Stdout)), h.Spec.Install.Version, repo)
	case osfamily.Debian:
		res, err := h.R.RunSudo(ctx, osfamily.MadisonCmd)
		if err != nil {
			return fmt.Errorf("listing the docker-ce versions the repository offers: %w", err)
		}
		return osfamily.CheckPin(osfamily.ParseMadison(string(res.Stdout)), h.Spec.Install.Version, root+"/linux (for this release)")
	}
	return nil
}

// say reports an event of the run, when someone listens.
func (h *Host) say(step StepName, st ui.Status, detail string) {
	if h.progress != nil {
		h.progress(string(step), st, detail)
	}
}

// planDetail says in the plan what installing removes (replace_conflicting).
func (installStep) planDetail(h *Host) string {
	src, err := (installStep{}).source(h)
	if err != nil || src != "repo" {
		return ""
	}
	if _, ok := h.Family.(osfamily.RHEL); !ok || !h.Spec.Install.ReplaceConflicting {
		return ""
	}
	if c := osfamily.Conflicts(h.Facts.RPMInstalled); len(c) > 0 {
		return "removes " + strings.Join(c, ", ") + " first: replace_conflicting"
	}
	return ""
}

// planDetail says in the plan which repository files os_mirror replaces.
func (osReposStep) planDetail(h *Host) string {
	p, err := osRepoPlan(h)
	if err != nil || len(p.MoveAside) == 0 {
		return ""
	}
	return "sets aside " + strings.Join(p.MoveAside, ", ") + " for " + h.Spec.Install.OSMirror
}
