package clusterfile

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

// secretWarnings warns of a password written in the file itself, or taken
// from a variable that is not marked sensitive: either way it would end up
// in places a secret should not (the file in version control, output).
// ssh is the driver that takes passwords; the warnings come in file order.
func secretWarnings(raw *file, ssh *Driver, sensitive map[string]bool) hcl.Diagnostics {
	type owner struct {
		at      hcl.Range
		drivers driverBlocks
	}
	var owners []owner
	if raw.Defaults != nil {
		owners = append(owners, owner{raw.Defaults.DefRange, raw.Defaults.drivers})
	}
	for _, mb := range raw.Machines {
		owners = append(owners, owner{mb.DefRange, mb.drivers})
	}
	sort.SliceStable(owners, func(i, j int) bool { return owners[i].at.Start.Byte < owners[j].at.Start.Byte })
	var diags hcl.Diagnostics
	for _, o := range owners {
		for _, b := range o.drivers.blocks {
			if ssh == nil || b.spec.Name != ssh.Name {
				continue
			}
			diags = append(diags, passwordWarnings(b, sensitive)...)
		}
	}
	return diags
}

// passwordWarnings warns of an ssh block's passwords written in the file
// or taken from a variable that is not sensitive.
func passwordWarnings(b driverBlock, sensitive map[string]bool) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, name := range []string{"password", "sudo_password"} {
		a, ok := b.attrs[name]
		if !ok {
			continue
		}
		rng := a.Expr.Range()
		vars := a.Expr.Variables()
		if len(vars) == 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Password in the file",
				Detail:  fmt.Sprintf("%s is written in the cluster file: put it in a variable with sensitive = true, given by --var-file or $%sNAME", name, EnvVarPrefix),
				Subject: &rng, Extra: secretSubject{}})
			continue
		}
		for _, v := range vars {
			if v.RootName() != "var" || len(v) < 2 {
				continue
			}
			if attr, ok := v[1].(hcl.TraverseAttr); ok && !sensitive[attr.Name] {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Password in a variable that is not sensitive",
					Detail:  fmt.Sprintf("%s comes from variable %q: mark it sensitive = true so that its value is redacted everywhere", name, attr.Name),
					Subject: &rng})
			}
		}
	}
	return diags
}
