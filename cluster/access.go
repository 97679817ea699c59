package cluster

import (
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/machine"
)

// UseSecrets hands the manager the passwords of the file's machines (ssh {
// password, sudo_password }) for this run, and the values of sensitive
// variables to redact from every transcript and error.
func (c *Converger) UseSecrets(spec *Spec) {
	if c.Machines.Redactor != nil {
		for _, s := range spec.Sensitive {
			c.Machines.Redactor.Add(s)
		}
	}
	secrets := map[string]machine.Secrets{}
	for _, m := range spec.Machines {
		cr, ok := m.DriverConfig.(drivers.Credentials)
		if !ok {
			continue
		}
		if p, sp := cr.Credentials(); p != nil || sp != nil {
			secrets[m.Name] = machine.Secrets{Password: p, SudoPassword: sp}
		}
	}
	c.Machines.MachineSecrets = secrets
}
