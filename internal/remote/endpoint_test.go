package remote

import "testing"

func TestAddress(t *testing.T) {
	for _, c := range []struct {
		e    Endpoint
		want string
	}{
		{Endpoint{Host: "10.0.0.5"}, "10.0.0.5:22"},
		{Endpoint{Host: "10.0.0.5", Port: 2222}, "10.0.0.5:2222"},
		{Endpoint{Host: "fd00::5"}, "[fd00::5]:22"},
		{Endpoint{Host: "node-1.lab", Port: 22}, "node-1.lab:22"},
	} {
		if got := c.e.Address(); got != c.want {
			t.Errorf("%+v: Address() = %q, want %q", c.e, got, c.want)
		}
	}
}
