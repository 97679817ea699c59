package cluster

import (
	"strings"
	"testing"
)

func TestAcceptNewHostKeys(t *testing.T) {
	spec := &Spec{Name: "lab", Machines: []Node{{Name: "m1"}, {Name: "m2"}, {Name: "w1"}}}
	got, err := AcceptNewHostKeys(spec, []string{"m1,w1", " m2 ", ""})
	if err != nil || len(got) != 3 || !got["m1"] || !got["m2"] || !got["w1"] {
		t.Errorf("got %v, %v", got, err)
	}
	_, err = AcceptNewHostKeys(spec, []string{"m1", "m3"})
	if err == nil || !strings.Contains(err.Error(), `"m3"`) || !strings.Contains(err.Error(), "m1, m2, w1") {
		t.Errorf("an unknown machine: %v", err)
	}
}
