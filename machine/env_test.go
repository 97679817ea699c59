package machine

import (
	"testing"

	"github.com/shoal-dev/shoal/internal/store"
)

func TestURL(t *testing.T) {
	cases := []struct {
		name string
		m    store.Machine
		want string
	}{
		{"TLS default port", store.Machine{Setup: store.Setup{Engine: store.Engine{TLS: true}}, Address: "10.0.0.5"}, "tcp://10.0.0.5:2376"},
		{"TLS custom port", store.Machine{Setup: store.Setup{Engine: store.Engine{TLS: true, TLSPort: 3376}}, Address: "10.0.0.5"}, "tcp://10.0.0.5:3376"},
		{"IPv6", store.Machine{Setup: store.Setup{Engine: store.Engine{TLS: true}}, Address: "fd00::5"}, "tcp://[fd00::5]:2376"},
		{"IPv6 custom port", store.Machine{Setup: store.Setup{Engine: store.Engine{TLS: true, TLSPort: 12376}}, Address: "::1"}, "tcp://[::1]:12376"},
		{"host name", store.Machine{Setup: store.Setup{Engine: store.Engine{TLS: true}}, Address: "node-1.lab"}, "tcp://node-1.lab:2376"},
		{"TLS off", store.Machine{Setup: store.Setup{Engine: store.Engine{TLS: false}}, Address: "10.0.0.5"}, ""},
		{"no address yet", store.Machine{Setup: store.Setup{Engine: store.Engine{TLS: true}}}, ""},
	}
	for _, c := range cases {
		if got := URL(&c.m); got != c.want {
			t.Errorf("%s: URL = %q, want %q", c.name, got, c.want)
		}
	}
}
