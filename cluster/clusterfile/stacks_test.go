package clusterfile

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestLoadStacks(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"app.yml", "app.prod.yml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("version: \"3.8\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := "cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n}\n" +
		"stack \"web\" {\n  compose = [\"app.yml\", \"" + filepath.Join(dir, "app.prod.yml") + "\"]\n  env = { TAG = \"1.2\" }\n}\n" +
		"stack \"db\" {\n  compose = [\"app.yml\"]\n}\n"
	path := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, diags := Load(path, Options{}, allDrivers())
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(spec.Stacks) != 2 || spec.Stacks[0].Name != "web" || spec.Stacks[1].Name != "db" {
		t.Fatalf("stacks %+v, want web then db", spec.Stacks)
	}
	want := []string{filepath.Join(dir, "app.yml"), filepath.Join(dir, "app.prod.yml")}
	if !reflect.DeepEqual(spec.Stacks[0].Compose, want) {
		t.Errorf("compose %q, want %q (relative to the cluster file, in order)", spec.Stacks[0].Compose, want)
	}
	if spec.Stacks[0].Env["TAG"] != "1.2" || spec.Stacks[1].Env != nil {
		t.Errorf("env %v, %v", spec.Stacks[0].Env, spec.Stacks[1].Env)
	}
}

func TestLoadRefusesBadStacks(t *testing.T) {
	dir := t.TempDir()
	compose := filepath.Join(dir, "app.yml")
	if err := os.WriteFile(compose, []byte("services: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const head = "cluster \"c\" {}\nmachine \"m\" {\n  role = \"manager\"\n}\n"
	cases := []struct {
		name, body, summary string
		line                int
	}{
		{"name injection", "stack \"" + inj + "\" {\n  compose = [\"" + compose + "\"]\n}", "Invalid stack name", 5},
		{"name with a dot", "stack \"a.b\" {\n  compose = [\"" + compose + "\"]\n}", "Invalid stack name", 5},
		{"twice", "stack \"a\" {\n  compose = [\"" + compose + "\"]\n}\nstack \"a\" {\n  compose = [\"" + compose + "\"]\n}", "Duplicate stack", 8},
		{"no file", "stack \"a\" {\n  compose = []\n}", "No compose file", 6},
		{"missing file", "stack \"a\" {\n  compose = [\"nope.yml\"]\n}", "Compose file not found", 6},
		{"a directory", "stack \"a\" {\n  compose = [\"" + dir + "\"]\n}", "Compose file not found", 6},
		{"variable name", "stack \"a\" {\n  compose = [\"" + compose + "\"]\n  env = { \"A B\" = \"x\" }\n}", "Invalid stack variable", 7},
		{"unknown attribute", "stack \"a\" {\n  compose = [\"" + compose + "\"]\n  composer = 1\n}", "Unsupported argument", 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := wantError(t, head+c.body+"\n", Options{}, c.summary)
			wantLine(t, d, c.line)
		})
	}
}
