package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCmdImportsNoDriver: the commands see drivers only through their
// interface (drivers) and the registry of those compiled in (drivers/all);
// what a driver does for import or adoption lives below cmd/.
func TestCmdImportsNoDriver(t *testing.T) {
	const drv = "github.com/shoal-dev/shoal/drivers/"
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, drv) && path != drv+"all" {
				t.Errorf("%s imports %s: a command sees drivers only through drivers and drivers/all", p, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
