package provision

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/validate"
)

// Paths on the host.
const (
	daemonJSONPath   = "/etc/docker/daemon.json"
	daemonJSONBackup = "/etc/docker/daemon.json.shoal-orig"
	tlsDir           = "/etc/docker/shoal"
	dropInDir        = "/etc/systemd/system/docker.service.d"
	dropInPath       = dropInDir + "/shoal.conf"
)

// daemonJSONNew is the merged file before dockerd has checked it;
// daemonJSONPrev the host's file before this run's change, kept for the
// case that dockerd does not start with the new one.
const (
	daemonJSONNew  = "/etc/docker/daemon.json.shoal-new"
	daemonJSONPrev = "/etc/docker/daemon.json.shoal-prev"
)

type hostnameStep struct{}

func (hostnameStep) Name() StepName { return StepHostname }
func (hostnameStep) Check(_ context.Context, h *Host) (bool, error) {
	return h.Facts.Section("hostname") != h.Spec.Hostname, nil
}
func (hostnameStep) Apply(ctx context.Context, h *Host) error {
	q := shell.Quote(h.Spec.Hostname)
	// What `hostnamectl set-hostname` does (the static and the running
	// name), without starting systemd-hostnamed over D-Bus: that costs a
	// busy host a second, and minimal hosts and containers lack it.
	// /etc/hostname is written in place: in a container it is a bind
	// mount that cannot be renamed over.
	if _, err := h.R.RunSudo(ctx, fmt.Sprintf("printf '%%s\\n' %[1]s > /etc/hostname && hostname %[1]s", q)); err != nil {
		return err
	}
	// dockerd reads the hostname when it starts: a running one would keep
	// the old name in `docker info` and as its swarm node's hostname.
	h.restart = true
	return nil
}

type hostsStep struct{}

func (hostsStep) Name() StepName { return StepHosts }
func (hostsStep) want(h *Host) (string, string, error) {
	cur := h.Facts.sections["hosts"]
	want, err := EditHosts(cur, h.Spec.Hostname, h.Spec.Hosts)
	return cur, want, err
}
func (s hostsStep) Check(_ context.Context, h *Host) (bool, error) {
	cur, want, err := s.want(h)
	return cur != want, err
}
func (s hostsStep) Apply(ctx context.Context, h *Host) error {
	_, want, err := s.want(h)
	if err != nil {
		return err
	}
	return h.R.WriteFile(ctx, "/etc/hosts", []byte(want), 0o644, "")
}

type installStep struct{}

func (installStep) Name() StepName { return StepInstall }

// unlessOK is src, or "" when the Docker there will do (ok).
func unlessOK(ok bool, src string) string {
	if ok {
		return ""
	}
	return src
}

// source says where Docker must come from: "" when what is there will do.
func (installStep) source(h *Host) (string, error) {
	have := h.Facts.DockerVersion()
	want := h.Spec.Install.Version
	ok := have != "" && (want == "" || versionMatches(have, want))
	switch h.Spec.Install.Mode {
	case validate.InstallSkip:
		if have == "" {
			return "", fmt.Errorf("Docker is not installed and --engine-install=skip")
		}
		return "", nil
	case "", validate.InstallAuto:
		return unlessOK(ok, string(validate.InstallRepo)), nil
	case validate.InstallRepo, validate.InstallDistro:
		return unlessOK(ok, string(h.Spec.Install.Mode)), nil
	}
	return "", fmt.Errorf("unknown --engine-install %q (auto, repo, distro or skip)", h.Spec.Install.Mode)
}

func (s installStep) Check(_ context.Context, h *Host) (bool, error) {
	src, err := s.source(h)
	return src != "", err
}

func (s installStep) Apply(ctx context.Context, h *Host) error {
	src, err := s.source(h)
	if err != nil {
		return err
	}
	cmds, err := installCommands(h, src)
	if err != nil {
		return err
	}
	pid := h.Facts.Section("dockerd-pid")
	running := h.Facts.Section("active") == "active" && pid != "" && pid != "0"
	// A package's scripts may start dockerd (Debian's do).
	h.dockerdStarted = true
	if err := s.runInstall(ctx, h, src, cmds); err != nil {
		return err
	}
	// The unit, the group, the packages and the version are new: read them
	// again.
	f, err := GatherFacts(ctx, h.R, h.Spec.DockerUser, probeAddr(h.Spec, h.R), RunningDaemon{}, h.Spec.Probes...)
	if err != nil {
		return err
	}
	h.Facts = f
	// A running dockerd that the package's scripts did not restart still
	// runs the old binary: the service step restarts it (once).
	if running && f.Section("dockerd-pid") == pid {
		h.restart = true
	}
	return checkInstalled(f.DockerVersion(), src, h.Spec.Install.Version)
}

// runInstall runs the install commands once the package manager is free.
func (s installStep) runInstall(ctx context.Context, h *Host, src string, cmds []string) error {
	if err := waitPackageLock(ctx, h, s.Name()); err != nil {
		return err
	}
	for i, c := range cmds {
		if i == len(cmds)-1 && src == "repo" {
			// The repository is in place: a pin it lacks is an error that
			// lists what it has, before the package manager's own.
			if err := checkPin(ctx, h); err != nil {
				return err
			}
		}
		if err := runPackageCmd(ctx, h, s.Name(), c); err != nil {
			return err
		}
	}
	return nil
}

// checkInstalled checks that the install left dockerd, at version have,
// on the PATH and that it is the version asked for (want, if any).
func checkInstalled(have, src, want string) error {
	if have == "" {
		return fmt.Errorf("Docker was installed from %s but dockerd is not on the PATH", src)
	}
	if want != "" && !versionMatches(have, want) {
		return fmt.Errorf("installed Docker %s, but %s was asked for", have, want)
	}
	return nil
}

// versionMatches says whether have (24.0.9) is the wanted version, which
// may be a prefix (24.0 or 24).
func versionMatches(have, want string) bool {
	return have == want || strings.HasPrefix(have, want+".")
}

type userStep struct{}

func (userStep) Name() StepName { return StepUser }

func (userStep) missingKeys(h *Host) []string {
	have := map[string]bool{}
	for _, l := range strings.Split(h.Facts.Section("authorized-keys"), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			have[f[0]+" "+f[1]] = true
		}
	}
	var out []string
	for _, k := range h.Spec.AuthorizedKeys {
		if f := strings.Fields(k); len(f) >= 2 && !have[f[0]+" "+f[1]] {
			out = append(out, strings.TrimSpace(k))
		}
	}
	return out
}

func (s userStep) Check(_ context.Context, h *Host) (bool, error) {
	groups, exists := h.Facts.UserGroups()
	return !exists || !containsString(groups, "docker") || len(s.missingKeys(h)) > 0, nil
}

func (s userStep) Apply(ctx context.Context, h *Host) error {
	u := shell.Quote(h.Spec.DockerUser)
	var cmds []string
	if _, exists := h.Facts.UserGroups(); !exists {
		// A group of the user's name (say "docker", once Docker is in) makes
		// a plain useradd fail: "group docker exists".
		cmds = append(cmds, fmt.Sprintf("if getent group %[1]s >/dev/null; then useradd -m -s /bin/bash -g %[1]s %[1]s; else useradd -m -s /bin/bash %[1]s; fi", u))
	}
	// Braces: a bare `a || b` inside the && chain would let a failed
	// useradd through whenever groupadd succeeds.
	cmds = append(cmds, "{ getent group docker >/dev/null || groupadd docker; }", "usermod -aG docker "+u)
	if keys := s.missingKeys(h); len(keys) > 0 {
		// An empty home would make the .ssh below /.ssh: stop instead.
		cmds = append(cmds, fmt.Sprintf(`home=$(getent passwd %s | cut -d: -f6) && [ -n "$home" ] && d="$home/.ssh" && f="$d/authorized_keys"`, u),
			fmt.Sprintf(`install -d -m 700 -o %s -g "$(id -gn %s)" "$d" && touch "$f" && chown %s "$f" && chmod 600 "$f"`, u, u, u),
			appendKeys(keys))
	}
	_, err := h.R.RunSudo(ctx, strings.Join(cmds, " && "))
	return err
}

// appendKeys appends keys to the file "$f", one a line. A file whose last
// line has no newline gets one first: the new key must not run into the
// old last key.
func appendKeys(keys []string) string {
	cmds := []string{`{ [ -z "$(tail -c 1 "$f")" ] || printf '\n' >> "$f"; }`}
	for _, k := range keys {
		cmds = append(cmds, `printf '%s\n' `+shell.Quote(k)+` >> "$f"`)
	}
	return strings.Join(cmds, " && ")
}

type daemonJSONStep struct{}

func (daemonJSONStep) Name() StepName { return StepDaemonJSON }
func (daemonJSONStep) merge(h *Host) ([]byte, bool, error) {
	exists := h.Facts.Section("daemon-json-exists") == "yes"
	return MergeDaemonJSON([]byte(h.Facts.sections["daemon-json"]), exists, h.daemonSettings())
}
func (s daemonJSONStep) Check(_ context.Context, h *Host) (bool, error) {
	out, changed, err := s.merge(h)
	if err != nil || !changed {
		return changed, err
	}
	// A key the command line sets too (a drop-in's --label, carried by
	// the TLS drop-in) would keep dockerd from starting.
	if keys := flagConflicts(carriedExecStart(h.Facts.Section("unit")), out); len(keys) > 0 {
		return false, fmt.Errorf("docker.service's command line (a drop-in in %s) sets %s, which %s would set too, and dockerd refuses both: move them into daemon.json or drop the engine settings that add them", dropInDir, strings.Join(keys, ", "), daemonJSONPath)
	}
	return true, nil
}
func (s daemonJSONStep) Apply(ctx context.Context, h *Host) error {
	out, _, err := s.merge(h)
	if err != nil {
		return err
	}
	prep := "mkdir -p /etc/docker"
	if h.Facts.Section("daemon-json-exists") == "yes" && h.Facts.Section("daemon-json-backup") != "yes" {
		prep += " && cp -p " + daemonJSONPath + " " + daemonJSONBackup
	}
	if _, err := h.R.RunSudo(ctx, prep); err != nil {
		return err
	}
	if err := h.R.WriteFile(ctx, daemonJSONNew, out, 0o644, ""); err != nil {
		return err
	}
	if _, err := h.R.RunSudo(ctx, installDaemonJSONCmd); err != nil {
		return daemonJSONRefused(err)
	}
	h.daemonJSON = true
	h.restart = true
	return nil
}

// installDaemonJSONCmd puts the merged file in place once the host's own
// dockerd has checked it, where it can (--validate came with Docker 23; an
// older one is checked by starting it, and serviceFailed puts the old file
// back when it does not start). A refused file is removed: the host's file
// stays and the running dockerd is not touched.
const installDaemonJSONCmd = `if command -v dockerd >/dev/null && dockerd --help 2>&1 | grep -q -e '--validate'; then ` +
	`dockerd --validate --config-file ` + daemonJSONNew + ` >/dev/null || { rc=$?; rm -f ` + daemonJSONNew + `; exit $rc; }; fi; ` +
	`rm -f ` + daemonJSONPrev + ` && { [ ! -e ` + daemonJSONPath + ` ] || cp -p ` + daemonJSONPath + ` ` + daemonJSONPrev + `; } && ` +
	`mv -f ` + daemonJSONNew + ` ` + daemonJSONPath

// daemonJSONRefused says what installDaemonJSONCmd's failure left.
func daemonJSONRefused(err error) error {
	return fmt.Errorf("the host's dockerd refused the merged %s (dockerd --validate): the file and the running dockerd are as they were: %w", daemonJSONPath, err)
}

// restoreDaemonJSONCmd puts back the file installDaemonJSONCmd replaced (or
// removes the one it made) and starts dockerd again.
const restoreDaemonJSONCmd = `if [ -e ` + daemonJSONPrev + ` ]; then mv -f ` + daemonJSONPrev + ` ` + daemonJSONPath + `; else rm -f ` + daemonJSONPath + `; fi && ` +
	`{ systemctl reset-failed docker.service docker.socket; systemctl restart docker; }`

func fsMode(m int) fs.FileMode { return fs.FileMode(m) }

// FilesWriter is an optional capability of a Runner, checked with a type
// assertion: several files written in one round trip.
type FilesWriter interface {
	WriteFiles(ctx context.Context, files []sshrun.File) error
}

// writeFiles writes files in order, in one round trip when r can.
func writeFiles(ctx context.Context, r Runner, files []sshrun.File) error {
	if fw, ok := r.(FilesWriter); ok {
		return fw.WriteFiles(ctx, files)
	}
	made := map[string]bool{}
	for _, f := range files {
		if d := path.Dir(f.Path); f.DirMode != 0 && !made[d] {
			if _, err := r.RunSudo(ctx, fmt.Sprintf("[ -d %s ] || install -d -m %04o %s", shell.Quote(d), uint32(f.DirMode.Perm()), shell.Quote(d))); err != nil {
				return err
			}
			made[d] = true
		}
		if err := r.WriteFile(ctx, f.Path, f.Data, f.Mode, f.Owner); err != nil {
			return err
		}
	}
	return nil
}
