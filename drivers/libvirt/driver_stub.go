//go:build !(cgo && libvirt_dlopen)

package libvirt

import (
	"errors"

	"github.com/shoal-dev/shoal/drivers"
)

// Compiled says whether this build can talk to libvirt.
const Compiled = false

// newDriver: this binary was built without the libvirt binding, which needs
// cgo and the binding's own libvirt_dlopen tag (it then loads libvirt.so.0
// at run time; without the tag it would link libvirt at build time, and
// every shoal binary would need libvirt to start). A module cannot set a
// tag for its users, so the error says the command that builds it.
func newDriver(drivers.Machine, Config) (drivers.Driver, error) {
	return nil, errors.New("libvirt driver: this shoal was built without libvirt support: build it with cgo and -tags libvirt_dlopen (go install -tags libvirt_dlopen github.com/shoal-dev/shoal/cmd/machine@latest, or make build); no libvirt headers are needed")
}
