package clusterfile

import (
	"testing"
)

func TestLoadMaxUnavailable(t *testing.T) {
	base := "cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n}\n"
	if s := mustLoad(t, base, Options{}); s.MaxUnavailable != 1 {
		t.Errorf("default max_unavailable %d, want 1", s.MaxUnavailable)
	}
	if s := mustLoad(t, base+"swarm {\n  max_unavailable = 3\n}\n", Options{}); s.MaxUnavailable != 3 {
		t.Errorf("max_unavailable %d, want 3", s.MaxUnavailable)
	}
	for _, v := range []string{"0", "-1", "101"} {
		d := wantError(t, base+"swarm {\n  max_unavailable = "+v+"\n}\n", Options{}, "Invalid max_unavailable")
		wantLine(t, d, 6)
	}
}
