package provision

import (
	"context"
	"maps"
	"strings"
)

// selinuxEnforcing tells whether Docker on this host must work with SELinux
// enforcing. shoal never changes the mode: it makes Docker fit it.
func selinuxEnforcing(h *Host) bool {
	return h.Family.SELinux() && h.Facts.Section("selinux") == "Enforcing"
}

// selinuxFlagSet tells whether dockerd already gets --selinux-enabled on its
// command line (CentOS 7's own docker package does, through
// /etc/sysconfig/docker): setting it in daemon.json as well would stop
// dockerd with "the following directives are specified both as a flag and
// in the configuration file".
func selinuxFlagSet(h *Host) bool {
	return h.Facts.Section("docker-sysconfig") != "" || strings.Contains(h.Facts.Section("unit"), "--selinux-enabled")
}

// daemonSettings is Spec.Daemon plus what the host's OS needs: on an
// SELinux-enforcing host, containers get SELinux labels.
func (h *Host) daemonSettings() DaemonSettings {
	d := h.Spec.Daemon
	if selinuxEnforcing(h) && !selinuxFlagSet(h) {
		// A copy: the caller's map is not ours to change.
		defaults := maps.Clone(d.Defaults)
		if defaults == nil {
			defaults = map[string]any{}
		}
		if _, ok := defaults["selinux-enabled"]; !ok {
			defaults["selinux-enabled"] = true
		}
		d.Defaults = defaults
	}
	return d
}

// selinuxStep installs container-selinux, the policy that lets containers
// run under SELinux, where Docker is there without it.
type selinuxStep struct{}

func (selinuxStep) Name() string { return "selinux" }

func (selinuxStep) Check(ctx context.Context, h *Host) (bool, error) {
	if !selinuxEnforcing(h) || !h.Facts.Has("rpm") || h.Facts.RPMInstalled("container-selinux") {
		return false, nil
	}
	// A pending Docker install brings container-selinux with it; after the
	// install the facts are read again and this check is exact.
	pending, err := (installStep{}).Check(ctx, h)
	return !pending, err
}

func (selinuxStep) Apply(ctx context.Context, h *Host) error {
	if _, err := h.R.RunSudo(ctx, h.Family.InstallPackages("container-selinux")); err != nil {
		return err
	}
	// A running dockerd labels containers with the policy it started with.
	h.restart = true
	return nil
}
