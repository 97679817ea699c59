// Package all lists the drivers compiled into shoal.
package all

import (
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/docker"
	"github.com/shoal-dev/shoal/drivers/libvirt"
	"github.com/shoal-dev/shoal/drivers/ssh"
	"github.com/shoal-dev/shoal/drivers/virtualbox"
)

// Registry returns a registry of every compiled-in driver.
func Registry() *drivers.Registry {
	return drivers.NewRegistry(docker.Spec(), libvirt.Spec(), ssh.Spec(), virtualbox.Spec())
}
