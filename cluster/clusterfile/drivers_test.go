package clusterfile

import (
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/all"
)

// allDrivers are the compiled-in drivers as a file knows them (as
// cluster.FileDrivers hands them in; cluster imports this package, so its
// tests cannot call it).
func allDrivers() Drivers {
	reg := all.Registry()
	td := testDrivers{reg: reg, by: map[*drivers.Spec]*Driver{}}
	for _, s := range reg.All() {
		td.by[s] = &Driver{Name: s.Name, Aliases: s.Aliases, NewConfig: s.NewConfig, Validate: s.Validate, Adopts: s.Adopts, Resolve: s.Resolve}
	}
	return td
}

type testDrivers struct {
	reg *drivers.Registry
	by  map[*drivers.Spec]*Driver
}

func (td testDrivers) Get(name string) (*Driver, error) {
	s, err := td.reg.Get(name)
	if err != nil {
		return nil, err
	}
	return td.by[s], nil
}

func (td testDrivers) All() []*Driver {
	var out []*Driver
	for _, s := range td.reg.All() {
		out = append(out, td.by[s])
	}
	return out
}
