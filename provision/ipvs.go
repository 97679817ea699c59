package provision

import (
	"context"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/templates"
)

// ipvsConfPath is the file that has systemd-modules-load load ip_vs at boot.
const ipvsConfPath = "/etc/modules-load.d/shoal-ipvs.conf"

// ipvsState is what the "ip-vs" probe found: whether ip_vs is loaded now
// (or built in), whether the running kernel has it as a module that
// modprobe finds, and whether shoal's modules-load.d file is there as
// shoal writes it.
type ipvsState struct {
	loaded, module, persisted bool
}

// parseIPVS reads the probe's "loaded=yes module=no persisted=no".
func parseIPVS(s string) ipvsState {
	var st ipvsState
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "loaded":
			st.loaded = v == "yes"
		case "module":
			st.module = v == "yes"
		case "persisted":
			st.persisted = v == "yes"
		}
	}
	return st
}

// ipvsPlan decides: the commands to run (load it now, keep it loaded) and
// a note for the summary when the host cannot have it. Only a module the
// kernel has is loaded or written down: a kernel without it (a container
// host's, a stripped kernel) is a host limit shoal reports, and one that
// has it built in needs nothing.
func ipvsPlan(st ipvsState) (load, persist bool, note string) {
	if !st.module {
		if !st.loaded {
			note = "the kernel has no ip_vs module (none under /lib/modules/$(uname -r)): swarm services' virtual IPs " +
				"(endpoint mode vip) cannot be balanced on this host; shoal cannot fix that (a host limit)"
		}
		return false, false, note
	}
	return !st.loaded, !st.persisted, ""
}

type ipvsStep struct{}

func (ipvsStep) Name() StepName { return StepIPVS }

func (ipvsStep) state(h *Host) ipvsState { return parseIPVS(h.Facts.Section("ip-vs")) }

func (s ipvsStep) Check(_ context.Context, h *Host) (bool, error) {
	load, persist, _ := ipvsPlan(s.state(h))
	return load || persist, nil
}

func (s ipvsStep) Apply(ctx context.Context, h *Host) error {
	load, persist, _ := ipvsPlan(s.state(h))
	if persist {
		f := sshrun.File{Path: ipvsConfPath, Data: templates.ModulesLoadIPVS(), Mode: 0o644, DirMode: 0o755}
		if err := writeFiles(ctx, h.R, []sshrun.File{f}); err != nil {
			return err
		}
	}
	if load {
		_, err := h.R.RunSudo(ctx, "modprobe ip_vs")
		return err
	}
	return nil
}

// ipvsProbe prints parseIPVS's words. /sys/module/ip_vs is there when the
// module is loaded or built in; modprobe -n finds a loadable one in the
// running kernel's modules.dep without loading it.
func ipvsProbe() string {
	want := strings.TrimRight(string(templates.ModulesLoadIPVS()), "\n")
	return `l=no m=no p=no; [ -d /sys/module/ip_vs ] && l=yes; modprobe -nq ip_vs && m=yes; ` +
		`[ "$(cat ` + ipvsConfPath + `)" = ` + shell.Quote(want) + ` ] && p=yes; echo "loaded=$l module=$m persisted=$p"`
}
