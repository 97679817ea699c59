package cluster

import (
	"reflect"
	"testing"
)

func TestStacksKeptInState(t *testing.T) {
	spec := func(names ...string) *Spec {
		s := &Spec{}
		for _, n := range names {
			s.Stacks = append(s.Stacks, Stack{Name: n})
		}
		return s
	}
	cases := []struct {
		name         string
		prev         *State
		spec         *Spec
		before, gone []string
	}{
		{"first run", nil, spec("web", "db"), []string{"web", "db"}, nil},
		{"nothing left", &State{Stacks: []string{"web"}}, spec("web"), []string{"web"}, nil},
		{"a stack left the file", &State{Stacks: []string{"web", "old"}}, spec("web"), []string{"web", "old"}, []string{"old"}},
		{"every stack left", &State{Stacks: []string{"web"}}, spec(), []string{"web"}, []string{"web"}},
		{"no stacks at all", &State{}, spec(), nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := stacksBefore(c.prev, c.spec); !reflect.DeepEqual(got, c.before) {
				t.Errorf("stacksBefore = %q, want %q", got, c.before)
			}
			if got := goneStacks(c.prev, c.spec); !reflect.DeepEqual(got, c.gone) {
				t.Errorf("goneStacks = %q, want %q", got, c.gone)
			}
		})
	}
}
