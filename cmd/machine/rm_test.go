package main

import (
	"reflect"
	"testing"
)

// A cluster's key is rotated once for the machines it lost, and only when
// it keeps some (the machines left authorize it); a machine of no
// cluster, or one not removed, rotates nothing.
func TestKeysToRotate(t *testing.T) {
	clusters := map[string]string{"a1": "a", "a2": "a", "b1": "b", "c1": "c"}
	left := map[string]bool{"a": true, "b": false, "c": true}
	remaining := func(c string) bool { return left[c] }
	for _, tc := range []struct {
		name    string
		removed []string
		want    []string
	}{
		{"none", nil, nil},
		{"two of one cluster", []string{"a2", "a1"}, []string{"a"}},
		{"its last machine", []string{"b1"}, nil},
		{"not a cluster member", []string{"solo"}, nil},
		{"several", []string{"c1", "solo", "a1", "b1"}, []string{"a", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keysToRotate(clusters, tc.removed, remaining); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("keysToRotate(%v) = %v, want %v", tc.removed, got, tc.want)
			}
		})
	}
}
