//go:build !(cgo && libvirt_dlopen)

package libvirt

import (
	"errors"

	"github.com/shoal-dev/shoal/drivers"
)

// Compiled says whether this build can talk to libvirt.
const Compiled = false

// newDriver: this binary was built without the libvirt binding, which needs
// cgo and the libvirt_dlopen build tag.
func newDriver(drivers.Machine, Config) (drivers.Driver, error) {
	return nil, errors.New("libvirt driver: this shoal was built without libvirt support (build with CGO_ENABLED=1 -tags libvirt_dlopen)")
}
