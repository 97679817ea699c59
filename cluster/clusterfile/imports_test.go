package clusterfile

import (
	"os/exec"
	"strings"
	"testing"
)

// TestKnowsNoHosts: the cluster file turns HCL into a validated spec and
// knows nothing of hosts: nothing it builds on, directly or through another
// package (the store, say), is a stage that reaches one (drivers,
// provision, bootstrap, machine, cluster) or speaks SSH.
func TestKnowsNoHosts(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages, want the cluster file's dependencies: %q", len(deps), out)
	}
	const mod = "github.com/shoal-dev/shoal/"
	banned := []string{mod + "drivers", mod + "provision", mod + "bootstrap", mod + "machine", mod + "cluster",
		mod + "internal/sshrun", "golang.org/x/crypto/ssh", "github.com/pkg/sftp"}
	for _, dep := range deps {
		if strings.HasPrefix(dep, mod+"cluster/clusterfile") {
			continue
		}
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, b+"/") {
				t.Errorf("the cluster file depends on %s", dep)
			}
		}
	}
}
