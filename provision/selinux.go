package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/shoal-dev/shoal/provision/osfamily"
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
	if selinuxEnforcing(h) && !selinuxFlagSet(h) && !overlayWithoutSELinux(h) {
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

func (selinuxStep) Name() StepName { return StepSELinux }

func (selinuxStep) Check(ctx context.Context, h *Host) (bool, error) {
	if !selinuxEnforcing(h) || !h.Facts.Has("rpm") || h.Facts.RPMInstalled("container-selinux") {
		return false, nil
	}
	// A pending Docker install brings container-selinux with it; after the
	// install the facts are read again and this check is exact.
	pending, err := (installStep{}).Check(ctx, h)
	return !pending, err
}

func (s selinuxStep) Apply(ctx context.Context, h *Host) error {
	if err := waitPackageLock(ctx, h, s.Name()); err != nil {
		return err
	}
	if err := runPackageCmd(ctx, h, s.Name(), h.Family.InstallPackages("container-selinux")); err != nil {
		return err
	}
	// A running dockerd labels containers with the policy it started with.
	h.restart = true
	return nil
}

// overlayWithoutSELinux tells that dockerd would refuse selinux-enabled:
// its storage driver is overlay2 (the default) and the kernel cannot label
// overlay files (no security_inode_copy_up, as on CentOS 7 before 7.4).
// Unknown (no /proc/kallsyms answer) counts as able.
func overlayWithoutSELinux(h *Host) bool {
	if h.Facts.Section("overlay-selinux") != "no" {
		return false
	}
	var dj struct {
		Driver string `json:"storage-driver"`
	}
	_ = json.Unmarshal([]byte(h.Facts.sections["daemon-json"]), &dj)
	return dj.Driver == "" || strings.HasPrefix(dj.Driver, "overlay")
}

// warning is something the user must hear although nothing failed.
type warning struct {
	step StepName
	text string
}

// warnings lists what provisioning leaves short of the best on this host.
func warnings(h *Host) []warning {
	var out []warning
	if selinuxEnforcing(h) && !selinuxFlagSet(h) && overlayWithoutSELinux(h) {
		out = append(out, warning{StepSELinux, fmt.Sprintf("SELinux stays enforcing, but dockerd runs without selinux-enabled: kernel %s cannot label overlay2 files "+
			"(dockerd would refuse to start). Containers then run with the host's default SELinux type. Update the kernel (yum update kernel, reboot; "+
			"3.10.0-693 of CentOS 7.4 and later can) and provision again", h.Facts.Section("kernel"))})
	}
	if held := osfamily.ParseLockHolders(h.Facts.Section("package-lock")); len(held) > 0 && needPackages(h) {
		out = append(out, warning{StepInstall, "the package lock is held by " + strings.Join(held, ", ") + ": installing waits for it"})
	}
	return append(out, planNotes(h)...)
}

// planNotes are what the firewall, IPVS and OS repository plans say to
// the user.
func planNotes(h *Host) []warning {
	var out []warning
	if _, notes, err := (iptablesStep{}).plan(h); err == nil {
		for _, n := range notes {
			out = append(out, warning{(iptablesStep{}).Name(), n})
		}
	}
	if _, _, note := ipvsPlan((ipvsStep{}).state(h)); note != "" {
		out = append(out, warning{(ipvsStep{}).Name(), note})
	}
	if p, err := osRepoPlan(h); err == nil && p.Note != "" {
		out = append(out, warning{"os-repos", p.Note})
	}
	return out
}
