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
