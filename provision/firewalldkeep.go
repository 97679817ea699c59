package provision

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/ui"
)

// The first dockerd that starts while firewalld runs and has no "docker"
// zone creates that zone permanently and reloads firewalld (moby's
// setupDockerZone): the reload drops every rule an administrator added to
// the runtime configuration only. shoal causes that start (a restart after
// a configuration change, or the first start after the install), so it
// reads the runtime-only rules before and puts exactly those back after.
// Creating the zone beforehand cannot avoid the reload: firewalld makes a
// new zone only in the permanent configuration, and dockerd looks for it in
// the runtime one.

// keepOptions are the zone settings firewalld lists that a runtime rule can
// add, in `--list-all` order, with the option that adds one value.
// Interfaces are not among them: firewalld's reload keeps the runtime
// bindings of interfaces to zones itself.
var keepOptions = []struct{ key, opt string }{
	{"sources", "--add-source"},
	{"services", "--add-service"},
	{"ports", "--add-port"},
	{"protocols", "--add-protocol"},
	{"forward-ports", "--add-forward-port"},
	{"source-ports", "--add-source-port"},
	{"icmp-blocks", "--add-icmp-block"},
	{"rich rules", "--add-rich-rule"},
}

// zoneSettings is one zone of `firewall-cmd --list-all-zones`: each key's
// values (a rich rule or a forward port on a line of its own is one value).
type zoneSettings map[string][]string

// parseAllZones reads `firewall-cmd [--permanent] --list-all-zones`: a
// zone's name on a line of its own ("public (default, active)"), then its
// "  key: values" lines; tab-indented lines continue the key before them
// (firewalld puts each rich rule, and from 0.9 each forward port, there).
func parseAllZones(text string) map[string]zoneSettings {
	zones := map[string]zoneSettings{}
	var cur zoneSettings
	key := ""
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimRight(l, " \r")
		switch {
		case strings.TrimSpace(l) == "":
			continue
		case l[0] != ' ' && l[0] != '\t':
			cur = zoneSettings{}
			zones[strings.Fields(l)[0]] = cur
			key = ""
		case cur != nil:
			key = cur.line(key, l)
		}
	}
	return zones
}

// line reads an indented line of the zone after the key before it, and
// returns the key the next line continues ("" for none).
func (z zoneSettings) line(key, l string) string {
	if l[0] == '\t' || strings.HasPrefix(l, "    ") {
		if key != "" {
			z[key] = append(z[key], strings.TrimSpace(l))
		}
		return key
	}
	k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
	if !ok {
		return ""
	}
	z[k] = append(z[k], strings.Fields(v)...)
	return k
}

// firewalldKeep returns the commands that put back what a reload would
// drop: each value a zone has in the runtime configuration and not in the
// permanent one (and masquerade, when only the runtime has it on), zones
// in name order. Adding a value that is there already is no error
// (ALREADY_ENABLED), so the commands may run whether or not a reload came.
func firewalldKeep(runtime, permanent string) []string {
	rt, pm := parseAllZones(runtime), parseAllZones(permanent)
	names := make([]string, 0, len(rt))
	for z := range rt {
		names = append(names, z)
	}
	sort.Strings(names)
	var cmds []string
	for _, z := range names {
		cmds = append(cmds, zoneKeep(z, rt[z], pm[z])...)
	}
	return cmds
}

// zoneKeep are the commands that put back zone z's runtime-only values
// (r: runtime, p: permanent), one command per option.
func zoneKeep(z string, r, p zoneSettings) []string {
	var cmds []string
	base := "firewall-cmd --zone=" + shell.Word(z)
	for _, o := range keepOptions {
		cmd := base
		for _, v := range r[o.key] {
			if !slices.Contains(p[o.key], v) {
				cmd += " " + o.opt + "=" + shell.Word(v)
			}
		}
		if cmd != base {
			cmds = append(cmds, cmd)
		}
	}
	if slices.Equal(r["masquerade"], []string{"yes"}) && !slices.Equal(p["masquerade"], []string{"yes"}) {
		cmds = append(cmds, base+" --add-masquerade")
	}
	return cmds
}

// firewalldKeepStep puts back the runtime-only firewalld rules after the
// dockerd start that made Docker's zone (and reloaded firewalld) in this
// run. A later run finds the zone there: nothing to keep.
type firewalldKeepStep struct{}

func (firewalldKeepStep) Name() StepName { return StepFirewalldKeep }

// keep is what to put back; nil unless dockerd makes its zone at its start.
func (firewalldKeepStep) keep(h *Host) []string {
	if h.Facts.Section("firewalld") != "active" || h.Facts.Section("firewalld-docker-zone") != "no" {
		return nil
	}
	return firewalldKeep(h.Facts.Section("firewalld-all-runtime"), h.Facts.Section("firewalld-all-permanent"))
}

func (s firewalldKeepStep) Check(_ context.Context, h *Host) (bool, error) {
	return h.dockerdStarted && len(h.keepRules) > 0, nil
}

func (s firewalldKeepStep) Apply(ctx context.Context, h *Host) error {
	if h.progress != nil {
		h.progress(string(s.Name()), ui.Info, keepNote(h.keepRules))
	}
	_, err := h.R.RunSudo(ctx, strings.Join(h.keepRules, " && "))
	return err
}

// keepNote is the summary's line on what the step puts back and why.
func keepNote(cmds []string) string {
	return fmt.Sprintf("dockerd's first start with firewalld running makes Docker's zone and reloads firewalld, "+
		"which drops the rules only in its runtime configuration: shoal puts them back (%d command(s): %s)",
		len(cmds), strings.Join(cmds, "; "))
}
