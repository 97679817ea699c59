package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/sshrun"
)

func TestEnvDropIn(t *testing.T) {
	got, err := EnvDropIn([]string{"HTTP_PROXY=http://p:3128", `G=hello "q" $HOME 100% \n`})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[Service]\n",
		`Environment="HTTP_PROXY=http://p:3128"` + "\n",
		`Environment="G=hello \"q\" $HOME 100%% \\n"` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}

func TestValidateEnv(t *testing.T) {
	if err := ValidateEnv([]string{"A=1", "_B=", "HTTP_PROXY=http://x"}); err != nil {
		t.Errorf("valid: %v", err)
	}
	for _, bad := range []string{"A", "=1", "1A=x", "A-B=x", "A=x\ny", "A B=x"} {
		if err := ValidateEnv([]string{bad}); err == nil {
			t.Errorf("ValidateEnv(%q) took it", bad)
		}
	}
}

// filesRunner is a host of files that answers cat and sha256sum of one,
// and keeps what each command printed (what provision.log would hold).
type filesRunner struct {
	files   map[string]string
	printed []string
}

func (r *filesRunner) Host() string { return "h1" }
func (r *filesRunner) User() string { return "root" }
func (r *filesRunner) Run(ctx context.Context, cmd string) (sshrun.Result, error) {
	return r.RunSudo(ctx, cmd)
}
func (r *filesRunner) RunSudo(_ context.Context, cmd string) (sshrun.Result, error) {
	out := ""
	if f := strings.Fields(cmd); len(f) >= 2 {
		if text, ok := r.files[f[1]]; ok {
			switch f[0] {
			case "cat":
				out = text
			case "sha256sum":
				sum := sha256.Sum256([]byte(text))
				out = hex.EncodeToString(sum[:]) + "  " + f[1] + "\n"
			}
		}
	}
	r.printed = append(r.printed, out)
	return sshrun.Result{Stdout: []byte(out)}, nil
}
func (r *filesRunner) WriteFile(_ context.Context, path string, data []byte, _ fs.FileMode, _ string) error {
	r.files[path] = string(data)
	return nil
}

// The env drop-in holds proxy passwords: the step decides without
// printing it (so provision.log keeps none of it).
func TestEngineEnvStepPrintsNoFile(t *testing.T) {
	r := &filesRunner{files: map[string]string{}}
	h := &Host{R: r, Spec: Spec{DockerEnv: []string{"HTTPS_PROXY=http://u:Proxy-Secret@proxy:3128"}}}
	ctx := context.Background()
	for i, want := range []bool{true, false} {
		change, err := engineEnvStep{}.Check(ctx, h)
		if err != nil || change != want {
			t.Fatalf("check %d: %v, %v; want %v", i, change, err, want)
		}
		if change {
			if err := (engineEnvStep{}).Apply(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.Spec.DockerEnv = []string{"HTTPS_PROXY=http://u:Other@proxy:3128"}
	if change, err := (engineEnvStep{}).Check(ctx, h); err != nil || !change {
		t.Errorf("a changed env: %v, %v", change, err)
	}
	for _, p := range r.printed {
		if strings.Contains(p, "Secret") {
			t.Errorf("a command printed the drop-in: %q", p)
		}
	}
}
