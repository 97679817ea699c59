package bootstrap

import (
	"context"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/bootstrap/enginetest"
)

// A registry service that is as wanted is left alone, but its data folder
// is made again on a node that is new in this run (a host replaced under
// the same name, a restore onto new hosts): the bind mount has no source
// there otherwise and every task fails.
func TestEnsureRegistryFreshNodeMakesFolder(t *testing.T) {
	ctx := context.Background()
	w := enginetest.NewWorld()
	mgr := &Node{Name: "m1", Hostname: "m1", Addr: "10.0.0.1", API: enginetest.NewEngine(w, "m1", "10.0.0.1")}
	if err := mgr.Init(ctx, mgr.Addr); err != nil {
		t.Fatal(err)
	}
	reg := Registry{Hostname: "m1", Path: "/srv/reg data"}
	host := &channelHost{}
	if made, err := EnsureRegistry(ctx, mgr, host, reg); err != nil || !made {
		t.Fatalf("first: made %v, err %v", made, err)
	}
	host.ran = nil
	if made, err := EnsureRegistry(ctx, mgr, host, reg); err != nil || made || len(host.ran) != 0 {
		t.Fatalf("as wanted, same node: made %v, err %v, ran %q (want nothing)", made, err, host.ran)
	}
	reg.FreshNode = true
	made, err := EnsureRegistry(ctx, mgr, host, reg)
	if err != nil || made {
		t.Fatalf("as wanted, fresh node: made %v, err %v (want no change to the service)", made, err)
	}
	if len(host.ran) != 1 || !strings.Contains(host.ran[0], "mkdir -p '/srv/reg data'") {
		t.Fatalf("fresh node ran %q, want the data folder made", host.ran)
	}
}
