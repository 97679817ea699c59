// Command cluster: see `cluster --help`.
package main

import "github.com/shoal-dev/shoal/internal/cli"

func main() { cli.Main(newRoot()) }
