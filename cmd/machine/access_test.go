package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers/all"
)

// TestRootCommandsTakeAccessFlags is issue 27 item 11: every command that
// may need root on a host takes --sudo-password-file (and the others) and
// reads $SHOAL_SUDO_PASSWORD, before it opens the store.
func TestRootCommandsTakeAccessFlags(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, env string, args ...string) (error, string) {
		t.Setenv("SHOAL_SUDO_PASSWORD", env)
		t.Setenv("SSHPASS", "")
		storage := filepath.Join(dir, "store")
		root := newRoot(all.Registry())
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetIn(strings.NewReader(""))
		root.SetArgs(append([]string{"--storage-path", storage, "--output", "plain"}, args...))
		err := root.Execute()
		return err, out.String()
	}
	exitCode := func(err error) int {
		var exit *cli.ExitError
		if errors.As(err, &exit) {
			return exit.Code
		}
		return -1
	}
	for _, verb := range [][]string{{"upgrade"}, {"regenerate-certs", "-f"}, {"provision"}, {"start"}, {"restart"}, {"rm", "-y"}} {
		t.Run(verb[0], func(t *testing.T) {
			// The flags parse: the command gets as far as the machine,
			// which does not exist.
			args := append(append([]string{}, verb...), "--sudo-password-file", pw, "--sudo-ask-password=false", "--ssh-password-file", pw, "nosuch")
			err, out := run(t, "", args...)
			if err == nil || strings.Contains(err.Error(), "unknown flag") || !strings.Contains(err.Error(), "nosuch") {
				t.Fatalf("%s: err %v, want the machine not found\n%s", verb[0], err, out)
			}
			// The file is read: a missing one is invalid input.
			err, _ = run(t, "", append(append([]string{}, verb...), "--sudo-password-file", filepath.Join(dir, "missing"), "nosuch")...)
			if exitCode(err) != 2 || !strings.Contains(err.Error(), "--sudo-password-file") {
				t.Errorf("%s --sudo-password-file missing: err %v, want exit status 2 naming the flag", verb[0], err)
			}
			// $SHOAL_SUDO_PASSWORD is read: one with a line break is refused.
			err, _ = run(t, "a\nb", append(append([]string{}, verb...), "nosuch")...)
			if exitCode(err) != 2 || !strings.Contains(err.Error(), "line break") {
				t.Errorf("%s with $SHOAL_SUDO_PASSWORD: err %v, want it read (and refused: a line break)", verb[0], err)
			}
		})
	}
}
