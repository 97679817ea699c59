package provision

import "testing"

// TestNeedsRestart is the one decision of what waits for a roll
// (cluster's TestRestartWhys, moved here with restartWhys).
func TestNeedsRestart(t *testing.T) {
	for _, tc := range []struct {
		steps      []StepName
		have, want string
		out        string
	}{
		{[]StepName{StepHosts, StepInstall, StepService}, "20.10.24", "20.10.99", "engine 20.10.24 -> 20.10.99"},
		{[]StepName{StepInstall}, "20.10.24", "", "engine 20.10.24 -> the newest"},
		{[]StepName{StepTLS, StepService}, "20.10.24", "", "TLS certificates issued again"},
		{[]StepName{StepInstall, StepTLS}, "20.10.24", "24.0", "engine 20.10.24 -> 24.0, TLS certificates issued again"},
		{[]StepName{StepDaemonJSON, StepService}, "", "", ""},
		{[]StepName{StepPersist, StepUser}, "20.10.24", "", ""},
		{nil, "20.10.24", "", ""},
	} {
		c := Changes{Have: tc.have, Want: tc.want}
		for _, s := range tc.steps {
			c.Steps = append(c.Steps, Change{Step: s})
		}
		if got := JoinWhys(NeedsRestart(c)); got != tc.out {
			t.Errorf("%v: %q, want %q", tc.steps, got, tc.out)
		}
	}
}

// TestNeedsRestartKeepsDetail: the why names the step as the plan says
// it, detail and all, so that the plan marks that very action.
func TestNeedsRestartKeepsDetail(t *testing.T) {
	c := Changes{Steps: []Change{{Step: StepInstall, Detail: "removes podman first: replace_conflicting"}}, Have: "20.10.24"}
	whys := NeedsRestart(c)
	if len(whys) != 1 || whys[0].Change.String() != "docker-install (removes podman first: replace_conflicting)" {
		t.Errorf("whys %+v", whys)
	}
	if got := c.Only(StepTLS); len(got.Steps) != 0 || got.Have != "20.10.24" {
		t.Errorf("Only(docker-tls) = %+v", got)
	}
}
