package cluster

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

func TestRestartWhys(t *testing.T) {
	for _, tc := range []struct {
		steps      []string
		have, want string
		out        string
	}{
		{[]string{"hosts", "docker-install", "docker-service"}, "20.10.24", "20.10.99", "engine 20.10.24 -> 20.10.99"},
		{[]string{"docker-install"}, "20.10.24", "", "engine 20.10.24 -> the newest"},
		{[]string{"docker-tls", "docker-service"}, "20.10.24", "", "TLS certificates issued again"},
		{[]string{"daemon.json", "docker-service"}, "", "", ""},
	} {
		got := ""
		for i, w := range restartWhys(tc.steps, tc.have, tc.want) {
			if i > 0 {
				got += ", "
			}
			got += w
		}
		if got != tc.out {
			t.Errorf("%v: %q, want %q", tc.steps, got, tc.out)
		}
	}
}
