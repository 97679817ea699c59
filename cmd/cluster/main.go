// Command cluster converges a whole Docker Swarm described in one HCL file.
// See `cluster --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRoot().ExecuteContext(ctx)
	if err == nil {
		return
	}
	var exit *exitError
	if errors.As(err, &exit) {
		if exit.err != nil {
			fmt.Fprintln(os.Stderr, "Error:", exit.err)
		}
		os.Exit(exit.code)
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	os.Exit(1)
}
