package provision

import (
	"cmp"
	"context"
	"fmt"
	"strings"
)

// Change is a step that would change the host, as the plan says it.
type Change struct {
	Step StepName
	// Detail says more of what the step does, when it has more to say
	// (what installing removes, which repository files are set aside).
	Detail string
}

func (c Change) String() string {
	if c.Detail == "" {
		return string(c.Step)
	}
	return string(c.Step) + " (" + c.Detail + ")"
}

// Changes is what provisioning would change on a host: the plan's steps,
// and the engine's versions (Have: the installed one, "" none; Want: the
// asked one, "" the newest of its source).
type Changes struct {
	Steps      []Change
	Have, Want string
}

// Only is c with only the steps named.
func (c Changes) Only(steps ...StepName) Changes {
	out := Changes{Have: c.Have, Want: c.Want}
	for _, s := range c.Steps {
		for _, n := range steps {
			if s.Step == n {
				out.Steps = append(out.Steps, s)
			}
		}
	}
	return out
}

// Why is a change that restarts dockerd, and the words for it.
type Why struct {
	Change Change
	Text   string
}

// NeedsRestart says which of the changes restart dockerd for a reason the
// roll takes care of: on a node that runs in a swarm they wait for the
// roll (drain, change, restart, Ready, active again; one node at a time).
// `cluster plan` and `cluster up` both decide with it.
func NeedsRestart(c Changes) []Why {
	var whys []Why
	for _, s := range c.Steps {
		switch s.Step {
		case StepInstall:
			want := c.Want
			want = cmp.Or(want, "the newest")
			whys = append(whys, Why{s, fmt.Sprintf("engine %s -> %s", c.Have, want)})
		case StepTLS:
			whys = append(whys, Why{s, "TLS certificates issued again"})
		}
	}
	return whys
}

// JoinWhys says the reasons on one line ("" for none).
func JoinWhys(whys []Why) string {
	texts := make([]string, len(whys))
	for i, w := range whys {
		texts[i] = w.Text
	}
	return strings.Join(texts, ", ")
}

// Hold decides whether the changes that restart dockerd (NeedsRestart,
// never empty) wait for a roll: then provisioning leaves the engine and
// its TLS files as they are, and its Report.Held says why.
type Hold func(ctx context.Context, whys []Why) (bool, error)
