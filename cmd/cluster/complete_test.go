package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompleteClusterNamesAndFiles(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"lab", "prod"} {
		os.MkdirAll(filepath.Join(root, "clusters", n), 0o700)
		os.WriteFile(filepath.Join(root, "clusters", n, "state.json"), []byte(`{"name":"`+n+`"}`), 0o600)
	}
	if got := strings.Join(clusterNames(root, ""), ","); got != "lab,prod" {
		t.Errorf("clusterNames: %s", got)
	}
	if got := strings.Join(clusterNames(root, "p"), ","); got != "prod" {
		t.Errorf("clusterNames(p): %s", got)
	}
	if got := clusterNames(filepath.Join(root, "none"), ""); got != nil {
		t.Errorf("no store: %v", got)
	}
	dir := t.TempDir()
	for _, f := range []string{"a.hcl", "b.hcl", "c.txt"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	if got := strings.Join(hclFiles(dir+"/"), ","); got != dir+"/a.hcl,"+dir+"/b.hcl" {
		t.Errorf("hclFiles: %s", got)
	}
	if got := strings.Join(hclFiles(dir+"/b"), ","); got != dir+"/b.hcl" {
		t.Errorf("hclFiles(b): %s", got)
	}
}
