package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/drivertest"
)

// The cluster command in process: the registry holds only the fake driver
// (nothing is made), the streams are buffers.

type cmdResult struct {
	code           int
	stdout, stderr string
}

func runCluster(t *testing.T, args ...string) cmdResult {
	t.Helper()
	reg := drivers.NewRegistry(drivertest.NewWorld().Spec())
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), newRoot(reg), args, strings.NewReader(""), &out, &errb)
	return cmdResult{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const fakeCluster = `cluster "lab" {}
variable "workers" { default = 1 }
defaults { driver = "fake" }
machine "m" { role = "manager" }
machine "w" {
  count = var.workers
  role  = "worker"
}
registry { enabled = false }
`

func TestClusterValidateInProcess(t *testing.T) {
	file := writeFile(t, "lab.hcl", fakeCluster)
	r := runCluster(t, "validate", file)
	if r.code != 0 || !strings.Contains(r.stdout, `cluster "lab", 2 machines (1 managers), valid`) {
		t.Errorf("validate: %+v", r)
	}
	bad := writeFile(t, "bad.hcl", strings.Replace(fakeCluster, `role = "manager"`, `role = "boss"`, 1))
	r = runCluster(t, "validate", bad)
	if r.code != 2 || !strings.Contains(r.stderr, bad+":4,") {
		t.Errorf("an invalid role: exit %d, want 2 with %s:4,COL in:\n%s", r.code, bad, r.stderr)
	}
	if r := runCluster(t, "validate"); r.code != 2 {
		t.Errorf("no file: exit %d, want 2 (usage)", r.code)
	}
}

// TestClusterPlanInProcess: a plan on an empty store makes nothing, lists
// the creations, and its apply hint repeats the variables it was given.
func TestClusterPlanInProcess(t *testing.T) {
	file := writeFile(t, "lab.hcl", fakeCluster)
	storage := filepath.Join(t.TempDir(), "store")
	r := runCluster(t, "--storage-path", storage, "--output", "plain", "plan", "--var", "workers=2", file)
	if r.code != 0 {
		t.Fatalf("plan: %+v", r)
	}
	for _, want := range []string{"w-2 (worker):", "+ create (fake)", "3 of 3 machines would change", "up --storage-path " + storage + " --var workers=2 " + file} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat(storage); !os.IsNotExist(err) {
		t.Errorf("plan made the store: %v", err)
	}
	r = runCluster(t, "--storage-path", storage, "--output", "json", "plan", file)
	var plan struct {
		Machines []struct{ Name string }
		Apply    string
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || len(plan.Machines) != 2 || !strings.HasSuffix(plan.Apply, "up --storage-path "+storage+" "+file) {
		t.Errorf("plan --output json: %v %+v\n%s", err, plan, r.stdout)
	}
}

func TestClusterUnlockUnknownInProcess(t *testing.T) {
	storage := filepath.Join(t.TempDir(), "store")
	r := runCluster(t, "--storage-path", storage, "unlock", "nothere")
	if r.code != 1 || !strings.Contains(r.stderr, `no cluster "nothere"`) {
		t.Errorf("unlock of an unknown cluster: %+v", r)
	}
	if r := runCluster(t, "--storage-path", storage, "unlock", "../x"); r.code != 2 {
		t.Errorf("unlock ../x: exit %d, want 2", r.code)
	}
}

// TestClusterUpAcceptUnknownMachine: --accept-new-host-key names machines
// of the file; another name is invalid input and nothing is made.
func TestClusterUpAcceptUnknownMachine(t *testing.T) {
	file := writeFile(t, "lab.hcl", fakeCluster)
	storage := filepath.Join(t.TempDir(), "store")
	r := runCluster(t, "--storage-path", storage, "up", file, "--accept-new-host-key", "m,nosuch")
	if r.code != 2 || !strings.Contains(r.stderr, `--accept-new-host-key "nosuch"`) {
		t.Errorf("up --accept-new-host-key nosuch: %+v", r)
	}
	if names, _ := os.ReadDir(filepath.Join(storage, "machines")); len(names) > 0 {
		t.Errorf("machines made: %v", names)
	}
}

const secretCluster = `cluster "lab" {}
variable "workers" { default = 1 }
variable "password" {
  sensitive = true
  default   = ""
}
defaults { driver = "fake" }
machine "m" { role = "manager" }
machine "w" {
  count = var.workers
  role  = "worker"
}
registry { enabled = false }
`

// TestClusterHintsSayTheCommandRun: the commands a run tells the user to
// type are the one they ran, with the same store and variables (following
// a hint without --var workers=5 would remove workers), and never with a
// sensitive variable's value, in text or in JSON.
func TestClusterHintsSayTheCommandRun(t *testing.T) {
	file := writeFile(t, "lab.hcl", secretCluster)
	storage := filepath.Join(t.TempDir(), "store")
	vars := []string{"--var", "workers=5", "--var", "password=hunter2"}
	want := "up --storage-path " + storage + " --var workers=5 --var password=… " + file
	for _, output := range []string{"plain", "json"} {
		r := runCluster(t, append([]string{"--storage-path", storage, "--output", output, "plan"}, append(vars, file)...)...)
		if r.code != 0 || !strings.Contains(r.stdout, want) || strings.Contains(r.stdout+r.stderr, "hunter2") {
			t.Errorf("plan --output %s: want %q and no password in:\n%+v", output, want, r)
		}
	}
	// upgrade's own --drain-timeout is not up's.
	r := runCluster(t, append([]string{"--storage-path", storage, "upgrade", "--drain-timeout", "1m"}, append(vars, file)...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "run '"+cli.ClusterCommand()+" "+want+"' first") || strings.Contains(r.stdout+r.stderr, "hunter2") {
		t.Errorf("upgrade before up: want the hint %q and no password in:\n%+v", want, r)
	}
}

func TestClusterCheckNames(t *testing.T) {
	r := runCluster(t, "--storage-path", t.TempDir(), "check", "nosuch")
	if r.code != 1 || !strings.Contains(r.stderr, `no cluster "nosuch" here, nor a swarm master of that name`) {
		t.Errorf("check of an unknown name: %+v", r)
	}
	r = runCluster(t, "--storage-path", t.TempDir(), "check", "../x")
	if r.code != 2 {
		t.Errorf("check of a name that cannot be one: %+v", r)
	}
	r = runCluster(t, "up", "--help")
	if !strings.Contains(r.stdout, "--skip-check") || !strings.Contains(r.stdout, "--check-timeout") {
		t.Errorf("up --help lacks the check's flags:\n%s", r.stdout)
	}
}
