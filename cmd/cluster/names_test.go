package main

import (
	"testing"
)

// TestClusterNameArgIsAStoredName: a cluster given by NAME is one the store
// may hold (a..b, as older shoal made, stays reachable); nothing that
// leaves the store gets through.
func TestClusterNameArgIsAStoredName(t *testing.T) {
	g := &globals{}
	for arg, ok := range map[string]bool{"lab": true, "a..b": true, "../x": false, "..": false, "a/b": false} {
		name, _, err := g.clusterSpec(nil, arg)
		if (err == nil) != ok || (ok && name != arg) {
			t.Errorf("clusterSpec(%q) = %q, %v; want ok=%v", arg, name, err, ok)
		}
	}
}
