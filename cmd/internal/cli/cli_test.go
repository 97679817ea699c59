package cli

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

// The final error quotes a host's stderr: its escapes do not reach the
// terminal, its lines do.
func TestRunCleansError(t *testing.T) {
	root := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error {
		return errors.New("on h1: command \"apt-get install\": exit 100: E: \x1b]0;owned\x07locked\r\n\x1b[2Jstill locked")
	}}
	Setup(root)
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), root, nil, nil, &out, &errOut); code != 1 {
		t.Fatalf("exit %d", code)
	}
	want := "Error: on h1: command \"apt-get install\": exit 100: E: locked\nstill locked\n"
	if errOut.String() != want {
		t.Errorf("stderr = %q, want %q", errOut.String(), want)
	}
}
