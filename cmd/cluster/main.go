// Command cluster: see `cluster --help`.
package main

import (
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers/all"
)

// The composition root: the drivers compiled in, built once.
func main() { cli.Main(newRoot(all.Registry())) }
