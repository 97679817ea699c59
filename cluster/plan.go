package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/hashicorp/hcl/v2"
	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/store"
)

// MachinePlan is what `cluster up` would do to one machine.
type MachinePlan struct {
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	Actions []string `json:"actions"`
}

// Plan reads the real state of every machine and lists what `cluster up`
// would change; it changes nothing on any host.
func (c *Converger) Plan(ctx context.Context, spec *Spec) ([]MachinePlan, error) {
	c.UseSecrets(spec)
	leader := spec.Managers()[0].Name
	plans := make([]MachinePlan, len(spec.Machines))
	hosts := make([]*host, len(spec.Machines))
	for i, m := range spec.Machines {
		hosts[i] = &host{spec: m}
		plans[i] = MachinePlan{Name: m.Name, Role: m.Role}
	}
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	// The leader's view decides joins and roles.
	var leaderNode *bootstrap.Node
	var leaderState bootstrap.State
	err := parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		i := indexOf(hosts, h)
		p := &plans[i]
		if !c.M.Store.Exists(h.spec.Name) {
			p.Actions = append(p.Actions, "create ("+h.spec.Driver+")", "provision (all steps)", "join as "+h.spec.Role)
			return nil
		}
		mach, err := c.M.Load(h.spec.Name)
		if err != nil {
			return err
		}
		st, err := mach.Driver.State(ctx)
		if err != nil || st == drivers.NotFound {
			p.Actions = append(p.Actions, "create ("+h.spec.Driver+")", "provision (all steps)", "join as "+h.spec.Role)
			return nil
		}
		if st != drivers.Running {
			p.Actions = append(p.Actions, "start")
			return nil
		}
		h.mach = mach
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		h.client, err = c.M.Connect(cctx, mach, io.Discard)
		if err != nil {
			return err
		}
		steps, err := c.M.PlanProvision(ctx, mach, h.client)
		if err != nil {
			return err
		}
		for _, s := range steps {
			p.Actions = append(p.Actions, "provision: "+s)
		}
		h.node, err = bootstrap.Open(mach.Name, mach.Hostname, mach.Address, h.client)
		if err != nil {
			return err
		}
		h.state, err = h.node.State(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if h.spec.Name == leader && h.node != nil && h.state.Active() && h.state.Manager {
			leaderNode, leaderState = h.node, h.state
		}
	}
	for i, h := range hosts {
		p := &plans[i]
		if h.node == nil {
			continue
		}
		switch {
		case h.spec.Name == leader && leaderNode == nil:
			p.Actions = append(p.Actions, "swarm init")
		case leaderNode == nil:
			p.Actions = append(p.Actions, "join as "+h.spec.Role)
		case h.spec.Name != leader && !bootstrap.SameSwarm(ctx, leaderNode, leaderState, h.state):
			if h.state.Active() {
				p.Actions = append(p.Actions, "refused: in another swarm (use --force)")
			} else {
				p.Actions = append(p.Actions, "join as "+h.spec.Role)
			}
		default:
			p.Actions = append(p.Actions, nodeChanges(ctx, leaderNode, h)...)
		}
	}
	if spec.Registry.Enabled {
		for i := range plans {
			if plans[i].Name != spec.Registry.Node {
				continue
			}
			if leaderNode == nil {
				plans[i].Actions = append(plans[i].Actions, "registry service")
			} else if _, _, err := leaderNode.API.ServiceInspectWithRaw(ctx, "registry", swarm.ServiceInspectOptions{}); err != nil {
				plans[i].Actions = append(plans[i].Actions, "registry service")
			}
		}
	}
	return plans, nil
}

func indexOf(hosts []*host, h *host) int {
	for i := range hosts {
		if hosts[i] == h {
			return i
		}
	}
	return -1
}

// nodeChanges lists role, label and availability changes for a node in
// the swarm.
func nodeChanges(ctx context.Context, leader *bootstrap.Node, h *host) []string {
	n, _, err := leader.API.NodeInspectWithRaw(ctx, h.state.NodeID)
	if err != nil {
		return []string{"inspect failed: " + err.Error()}
	}
	var out []string
	if string(n.Spec.Role) != h.spec.Role {
		verb := "promote to manager"
		if h.spec.Role == "worker" {
			verb = "demote to worker"
		}
		out = append(out, verb)
	}
	if h.spec.Availability != "" && string(n.Spec.Availability) != h.spec.Availability {
		out = append(out, "availability "+h.spec.Availability)
	}
	for k, v := range h.spec.Labels {
		if n.Spec.Labels[k] != v {
			out = append(out, "label "+k+"="+v)
		}
	}
	return out
}

// FormatDiagnostics prints diagnostics as FILE:LINE,COL: severity: what,
// with the source line, the way compilers do.
func FormatDiagnostics(w io.Writer, diags hcl.Diagnostics, files map[string]*hcl.File) {
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		where := ""
		if d.Subject != nil && d.Subject.Filename != "" {
			where = fmt.Sprintf("%s:%d,%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(w, "%s%s: %s", where, sev, d.Summary)
		if d.Detail != "" {
			fmt.Fprintf(w, ": %s", d.Detail)
		}
		fmt.Fprintln(w)
		if d.Subject != nil {
			src := []byte(nil)
			if f, ok := files[d.Subject.Filename]; ok && f != nil {
				src = f.Bytes
			} else if b, err := os.ReadFile(d.Subject.Filename); err == nil {
				src = b
			}
			if src != nil {
				lines := strings.Split(string(src), "\n")
				if l := d.Subject.Start.Line; l >= 1 && l <= len(lines) {
					fmt.Fprintf(w, "    %d | %s\n", l, lines[l-1])
				}
			}
		}
	}
}

// machinesOf lists the stored machines of a cluster.
func machinesOf(st *store.Store, name string) ([]string, error) {
	all, err := st.List()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range all {
		if m, err := st.Load(n); err == nil && m.Cluster == name {
			out = append(out, n)
		}
	}
	return out, nil
}
