package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/templates"
)

// envDropInPath holds dockerd's environment (--engine-env): a drop-in of
// its own, so that the TLS drop-in stays as it is.
const envDropInPath = dropInDir + "/shoal-env.conf"

// ValidateEnv checks --engine-env K=V values: a variable name, and nothing
// systemd could not hold on one line.
func ValidateEnv(env []string) error {
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || validate.EnvName(k) != nil {
			return fmt.Errorf("--engine-env %q: want NAME=VALUE with NAME made of letters, digits and _", kv)
		}
		if strings.ContainsAny(kv, "\n\r\x00") {
			return fmt.Errorf("--engine-env %s: the value has a line break", k)
		}
	}
	return nil
}

// EnvDropIn is the drop-in (templates/dockerd) that gives dockerd the
// variables env.
func EnvDropIn(env []string) (string, error) { return templates.DockerdEnvDropIn(env) }

// engineEnvStep writes the environment drop-in. It runs only for a machine
// with --engine-env, so other machines' runs stay as they were.
type engineEnvStep struct{}

func (engineEnvStep) Name() StepName { return StepEngineEnv }

func (engineEnvStep) Check(ctx context.Context, h *Host) (bool, error) {
	if len(h.Spec.DockerEnv) == 0 {
		return false, nil
	}
	want, err := EnvDropIn(h.Spec.DockerEnv)
	if err != nil {
		return false, err
	}
	// Compared by sha256: the drop-in holds proxy passwords, and what a
	// command prints goes into provision.log.
	res, err := h.R.RunSudo(ctx, "sha256sum "+envDropInPath+" 2>/dev/null || true")
	if err != nil {
		return false, err
	}
	return !hasSum(string(res.Stdout), want, envDropInPath), nil
}

// hasSum tells whether sha256sum's output says file holds text.
func hasSum(out, text, file string) bool {
	sum := sha256.Sum256([]byte(text))
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimRight(l, "\r") == hex.EncodeToString(sum[:])+"  "+file {
			return true
		}
	}
	return false
}

func (engineEnvStep) Apply(ctx context.Context, h *Host) error {
	dropIn, err := EnvDropIn(h.Spec.DockerEnv)
	if err != nil {
		return err
	}
	if _, err := h.R.RunSudo(ctx, "install -d -m 755 "+dropInDir); err != nil {
		return err
	}
	if err := h.R.WriteFile(ctx, envDropInPath, []byte(dropIn), 0o644, ""); err != nil {
		return err
	}
	h.reload, h.restart = true, true
	return nil
}
