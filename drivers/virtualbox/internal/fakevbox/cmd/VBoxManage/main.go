// Command VBoxManage is a fake of VirtualBox's VBoxManage for tests: see
// package fakevbox. Build it into a folder on PATH (or pass its path to the
// driver) and point FAKEVBOX_STATE at a JSON file.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/drivers/virtualbox/internal/fakevbox"
)

func main() {
	os.Exit(fakevbox.Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
