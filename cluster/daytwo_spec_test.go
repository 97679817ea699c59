package cluster

import (
	"testing"
)

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
