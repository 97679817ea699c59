// Package docs holds the contributor documentation; its test keeps the map
// of the code true to the code.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// packages lists the module's package folders, as go list ./... does:
// those with a .go file, outside testdata and hidden folders.
func packages(t *testing.T, root string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (name == "testdata" || strings.HasPrefix(name, ".") || name == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") {
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			seen[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Every package of the module has its line in architecture.md's table,
// and the table names no package that does not exist.
func TestArchitectureListsEveryPackage(t *testing.T) {
	doc, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z0-9_/]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		listed[m[1]] = true
	}
	for _, p := range packages(t, "..") {
		if !listed[p] {
			t.Errorf("architecture.md does not list package %s", p)
		}
		delete(listed, p)
	}
	for p := range listed {
		t.Errorf("architecture.md lists %s, which is not a package", p)
	}
}

// The repository stands alone: nothing in it points at the design or lab
// notes that lived outside it.
func TestNoReferenceOutsideTheRepository(t *testing.T) {
	outside := regexp.MustCompile(`shared/DESIGN\.md|/work/shared|\bLAB\.md|\bDESIGN\.md`)
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n != ".." && (strings.HasPrefix(n, ".") || n == "bin" || n == "fuzz") {
				return filepath.SkipDir
			}
			return nil
		}
		if filepath.Base(p) == "docs_test.go" {
			return nil
		}
		switch filepath.Ext(p) {
		case ".go", ".md", ".sh", ".hcl", "":
		default:
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if loc := outside.FindIndex(b); loc != nil {
			t.Errorf("%s refers to a file outside the repository: %q", p, b[loc[0]:loc[1]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The layers, bottom up: the stages (drivers, provision, bootstrap, stack),
// then machine, cluster, cmd. internal/ and templates are below them all.
var layer = map[string]int{"drivers": 1, "provision": 1, "bootstrap": 1, "stack": 1, "machine": 2, "cluster": 3, "cmd": 4}

func topOf(pkg string) string { return strings.SplitN(pkg, "/", 2)[0] }

// importProblem says what is wrong with package pkg importing dep (both
// relative to the module), or "" when the import follows the layers: no
// import up the layers, no stage importing another stage, every package
// under internal/ a leaf that imports no layer.
func importProblem(pkg, dep string) string {
	from, to := layer[topOf(pkg)], layer[topOf(dep)]
	switch {
	case topOf(pkg) == topOf(dep):
		return ""
	case strings.HasPrefix(pkg, "internal/") && to > 0:
		return "internal, a leaf, imports " + dep
	case from > 0 && to > from:
		return "imports " + dep + ", up the layers"
	case from == 1 && to == 1:
		return "a stage imports another stage, " + dep
	}
	return ""
}

// TestImportsFollowTheFlow: every import follows the layers
// (architecture.md), and no code outside a driver asks a driver its name.
func TestImportsFollowTheFlow(t *testing.T) {
	root := filepath.Dir(mustGetwd(t))
	importRE := regexp.MustCompile(`"github\.com/shoal-dev/shoal/([^"]+)"`)
	nameCheck := regexp.MustCompile(`\.Name\(\) *[!=]= *"`)
	for _, pkg := range packages(t, root) {
		files, _ := filepath.Glob(filepath.Join(root, pkg, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(pkg, "drivers/") && nameCheck.Match(src) {
				t.Errorf("%s asks a driver its name: declare a capability instead", f)
			}
			for _, m := range importRE.FindAllSubmatch(src, -1) {
				if p := importProblem(pkg, string(m[1])); p != "" {
					t.Errorf("%s: %s", f, p)
				}
			}
		}
	}
}

func TestImportProblemCatchesViolations(t *testing.T) {
	for _, c := range []struct {
		pkg, dep string
		bad      bool
	}{
		{"machine", "drivers", false},
		{"cluster", "bootstrap/dataplane", false},
		{"cluster/clusterfile", "cluster", false},
		{"cmd/machine", "cluster", false},
		{"drivers/docker", "internal/sshrun", false},
		{"drivers/all", "drivers/ssh", false},
		{"internal/store", "internal/sshrun", false},
		{"provision", "templates", false},
		{"machine", "cluster", true},
		{"cluster", "cmd/internal/cli", true},
		{"provision", "drivers", true},
		{"bootstrap", "provision", true},
		{"drivers/libvirt", "bootstrap", true},
		{"internal/ui", "machine", true},
		{"internal/store", "drivers", true},
	} {
		if got := importProblem(c.pkg, c.dep) != ""; got != c.bad {
			t.Errorf("%s imports %s: problem %v, want %v", c.pkg, c.dep, got, c.bad)
		}
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
