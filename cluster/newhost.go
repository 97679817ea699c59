package cluster

import (
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/cluster/clusterfile"
)

// AcceptNewHostKeys checks the machines named to --accept-new-host-key
// (repeated or comma separated): each must be a machine of the file, so
// that a typo takes nothing.
func AcceptNewHostKeys(spec *Spec, given []string) (map[string]bool, error) {
	inFile := map[string]bool{}
	for _, m := range spec.Machines {
		inFile[m.Name] = true
	}
	out := map[string]bool{}
	for _, g := range given {
		for _, n := range strings.Split(g, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if !inFile[n] {
				return nil, fmt.Errorf("--accept-new-host-key %q: no machine of that name in cluster %s (its machines: %s)", n, spec.Name, strings.Join(clusterfile.Names(spec.Machines), ", "))
			}
			out[n] = true
		}
	}
	return out, nil
}
