package clusterfile

import (
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
)

// build makes the cluster of a decoded file: its defaults filled in, what
// only this machine can tell looked up, then every check; nil with any
// error.
func build(raw *file, baseDir string, reg Drivers) (*Spec, hcl.Diagnostics) {
	fillDefaults(raw, baseDir, reg)
	lookOutside(raw, reg)
	resolveStacks(raw, baseDir)
	diags := validateFile(raw, reg)
	if diags.HasErrors() {
		return nil, diags
	}
	return specOf(raw), diags
}

// found is what lookOutside learnt of a machine block from the machine
// shoal runs on, for validate to say.
type found struct {
	archives []error // image archives that are not there
	resolve  error   // the driver's Resolve (the ssh driver: ~/.ssh/config)
	settings error   // the driver's Validate of the resolved config
}

// lookOutside completes each machine block from outside the file: image
// archives become absolute paths that must exist, and the driver resolves
// and checks the config of the block's first machine (an adopted host,
// the only kind with a Resolve, is one machine).
func lookOutside(raw *file, reg Drivers) {
	for i := range raw.Machines {
		mb := &raw.Machines[i]
		mb.found = found{}
		if len(mb.machines) == 0 {
			continue
		}
		archives := absArchives(mb)
		for j := range mb.machines {
			mb.machines[j].ImageArchives = archives
		}
		if dspec, err := reg.Get(mb.machines[0].Driver); err == nil {
			resolveDriver(raw, mb, dspec)
		}
	}
}

// absArchives are the block's image archives as absolute paths; those that
// are not there are noted for validate.
func absArchives(mb *machineBlock) []string {
	first := mb.machines[0]
	if first.ImageArchives == nil {
		return nil
	}
	archives := make([]string, len(first.ImageArchives))
	for j, a := range first.ImageArchives {
		abs, err := filepath.Abs(a)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			mb.found.archives = append(mb.found.archives, err)
		}
		archives[j] = abs
	}
	return archives
}

// resolveDriver lets the driver complete and check the block's first
// machine's config (~/.ssh/config fills in what the file does not say).
func resolveDriver(raw *file, mb *machineBlock, dspec *Driver) {
	first := mb.machines[0]
	if dspec.Resolve != nil {
		explicit := func(name string) bool {
			if _, ok := mb.drivers.valueRange(dspec, name); ok {
				return true
			}
			_, ok := raw.Defaults.driverValue(dspec, name)
			return ok
		}
		mb.found.resolve = dspec.Resolve(first.DriverConfig, explicit)
	}
	if dspec.Validate != nil {
		mb.found.settings = dspec.Validate(first.DriverConfig)
	}
}
