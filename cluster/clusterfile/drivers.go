package clusterfile

// Driver is what a cluster file knows of a machine driver: the names its
// blocks go by, the shape of its settings and their checks. The caller
// hands them in (from drivers.Spec): the file knows no hosts.
type Driver struct {
	Name    string
	Aliases []string
	// NewConfig returns a pointer to a config with defaults set: a driver
	// block decodes into it.
	NewConfig func() any
	// Validate checks a config (nil: no checks).
	Validate func(cfg any) error
	// Adopts: a machine of this driver is one host that exists without
	// it, named by its settings.
	Adopts bool
	// Resolve, when set, completes a config from outside sources (the ssh
	// driver: ~/.ssh/config) before Validate; explicit tells which
	// settings the file gave (attribute names), which always win.
	Resolve func(cfg any, explicit func(name string) bool) error
}

// Drivers are the drivers a file may name. Get and All give one *Driver
// for a driver each time: a file's blocks are matched by it.
type Drivers interface {
	// Get looks a driver up by name or alias.
	Get(name string) (*Driver, error)
	// All lists the drivers, each once.
	All() []*Driver
}
