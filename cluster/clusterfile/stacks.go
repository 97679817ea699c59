package clusterfile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"
	"github.com/shoal-dev/shoal/internal/validate"
)

// Stack is a stack block: compose files deployed as `docker stack deploy
// -c a -c b NAME` would, after the swarm is ready.
type Stack struct {
	Name string
	// Compose are the compose files, absolute, merged in this order.
	Compose []string
	// Env are the variables the compose files are interpolated with,
	// besides shoal's own (SHOAL_REGISTRY) and the process environment.
	Env   map[string]string
	Range hcl.Range
}

type stackBlock struct {
	Name    string            `hcl:"name,label"`
	Compose []string          `hcl:"compose"`
	Env     map[string]string `hcl:"env,optional"`

	DefRange     hcl.Range `hcl:",def_range"`
	ComposeRange hcl.Range `hcl:"compose,attr_value_range"`
	EnvRange     hcl.Range `hcl:"env,attr_value_range"`

	files   []string // resolveStacks: Compose, absolute
	missing []error  // resolveStacks: files that cannot be read
}

// resolveStacks makes each stack's compose paths absolute, relative to the
// cluster file's directory, and notes those that are not there.
func resolveStacks(raw *file, baseDir string) {
	for i := range raw.Stacks {
		sb := &raw.Stacks[i]
		sb.files, sb.missing = nil, nil
		for _, f := range sb.Compose {
			if !filepath.IsAbs(f) && baseDir != "" {
				f = filepath.Join(baseDir, f)
			}
			abs, err := filepath.Abs(f)
			if err == nil {
				var st os.FileInfo
				if st, err = os.Stat(abs); err == nil && st.IsDir() {
					err = fmt.Errorf("%s is a directory", abs)
				}
			}
			if err != nil {
				sb.missing = append(sb.missing, err)
			}
			sb.files = append(sb.files, abs)
		}
	}
}

// checkStacks says what is wrong with the stack blocks: names docker takes
// and each once, compose files that are there, variable names.
func checkStacks(stacks []stackBlock) hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := map[string]bool{}
	for i := range stacks {
		sb := &stacks[i]
		if err := validate.StackName(sb.Name); err != nil {
			diags = append(diags, errAt(&sb.DefRange, "Invalid stack name", "%v", err))
		} else if seen[sb.Name] {
			diags = append(diags, errAt(&sb.DefRange, "Duplicate stack", "stack %q is declared twice", sb.Name))
		}
		seen[sb.Name] = true
		if len(sb.Compose) == 0 {
			diags = append(diags, errAt(valueAt(sb.ComposeRange, &sb.DefRange), "No compose file", "stack %q: compose must name at least one file", sb.Name))
		}
		for _, err := range sb.missing {
			diags = append(diags, errAt(valueAt(sb.ComposeRange, &sb.DefRange), "Compose file not found", "stack %q: %v", sb.Name, err))
		}
		for _, k := range sortedKeys(sb.Env) {
			if err := validate.EnvName(k); err != nil {
				diags = append(diags, errAt(valueAt(sb.EnvRange, &sb.DefRange), "Invalid stack variable", "stack %q: %v", sb.Name, err))
			}
		}
	}
	return diags
}

// stacksOf is the spec's view of the stack blocks.
func stacksOf(stacks []stackBlock) []Stack {
	var out []Stack
	for _, sb := range stacks {
		out = append(out, Stack{Name: sb.Name, Compose: sb.files, Env: sb.Env, Range: sb.DefRange})
	}
	return out
}
