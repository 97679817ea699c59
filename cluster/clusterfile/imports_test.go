package clusterfile

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestKnowsNoHosts: the cluster file turns HCL into a validated spec and
// knows nothing of hosts: it imports no stage that reaches one (drivers,
// provision, bootstrap, machine, cluster) and no SSH.
func TestKnowsNoHosts(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/shoal-dev/shoal/"
	banned := []string{"drivers", "provision", "bootstrap", "machine", "cluster", "internal/sshrun", "golang.org/x/crypto/ssh"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range af.Imports {
			path, _ := strconv.Unquote(is.Path.Value)
			for _, b := range banned {
				p := strings.TrimPrefix(path, mod)
				if p == b || strings.HasPrefix(p, b+"/") && !strings.HasPrefix(p, "cluster/clusterfile") {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}
