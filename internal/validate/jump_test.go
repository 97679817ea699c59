package validate

import (
	"reflect"
	"testing"
)

func TestParseProxyJump(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Hop
		bad  bool
	}{
		{in: "", want: nil},
		{in: "none", want: nil},
		{in: "bastion", want: []Hop{{Host: "bastion"}}},
		{in: "ops@10.0.0.1:2222", want: []Hop{{User: "ops", Host: "10.0.0.1", Port: 2222}}},
		{in: "a@j1,j2:22", want: []Hop{{User: "a", Host: "j1"}, {Host: "j2", Port: 22}}},
		{in: "[fd00::1]:2200", want: []Hop{{Host: "fd00::1", Port: 2200}}},
		{in: "u@[fd00::1]", want: []Hop{{User: "u", Host: "fd00::1"}}},
		{in: "j1,,j2", bad: true},
		{in: "j1:0", bad: true},
		{in: "j1:abc", bad: true},
		{in: "john.doe@j1", want: []Hop{{User: "john.doe", Host: "j1"}}},
		{in: "-x@j1", bad: true},
		{in: "a b@j1", bad: true},
		{in: "j1;reboot", bad: true},
		{in: "-oProxyCommand=x", bad: true},
		{in: "[j1]:22", bad: true},
		{in: "u@$(id)", bad: true},
	} {
		got, err := ParseProxyJump(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: want an error, got %v", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if s := (Hop{User: "u", Host: "fd00::1", Port: 2200}).String(); s != "u@[fd00::1]:2200" {
		t.Errorf("String: %s", s)
	}
}
