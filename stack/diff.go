package stack

import (
	"cmp"
	"encoding/json"
	"reflect"
	"slices"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/swarm"
)

// Swarm's defaults (swarmkit api/defaults) for what a spec leaves out: a
// service made without them reads back either without them or with them,
// and both mean the same.
const (
	defaultRestartDelay  = 5 * time.Second
	defaultUpdateMonitor = 5 * time.Second
)

// ServiceDiff lists the fields in which the current spec of a service
// differs from the desired one in what the compose file asks for, after
// both are normalised for what swarm fills in by itself; empty means no
// update. netNames maps network IDs (which swarm keeps in a service's
// spec) to names.
func ServiceDiff(desired, current swarm.ServiceSpec, netNames map[string]string) []string {
	d, c := ForUpdate(desired, current), copySpec(current)
	normalise(&d, netNames)
	normalise(&c, netNames)
	return diffPaths("", toTree(d), toTree(c), nil)
}

// ForUpdate is the spec to send in a service update: the desired one with
// what docker stack deploy carries over from the current service, so that
// tasks restart only for what changed: the digest swarm pinned the image
// to, the force-update counter, and the platforms swarm added. The
// desired spec is not changed.
func ForUpdate(desired, current swarm.ServiceSpec) swarm.ServiceSpec {
	d := copySpec(desired)
	ci, di := current.TaskTemplate.ContainerSpec, d.TaskTemplate.ContainerSpec
	if ci != nil && di != nil && samePinned(di.Image, ci.Image, current.Labels[LabelImage]) {
		di.Image = ci.Image
	}
	d.TaskTemplate.ForceUpdate = current.TaskTemplate.ForceUpdate
	if cp := current.TaskTemplate.Placement; cp != nil && len(cp.Platforms) > 0 {
		if d.TaskTemplate.Placement == nil {
			d.TaskTemplate.Placement = &swarm.Placement{}
		}
		if len(d.TaskTemplate.Placement.Platforms) == 0 {
			d.TaskTemplate.Placement.Platforms = slices.Clone(cp.Platforms)
		}
	}
	return d
}

// samePinned says whether current is the desired image as swarm keeps it:
// with the tag made explicit (`busybox` is kept as `busybox:latest`) and
// perhaps pinned to a digest (`redis:latest@sha256:...`). docker stack
// deploy keeps the current image when the file's is the one in the
// service's com.docker.stack.image label; shoal also wants the same
// repository and tag. A digest given in the file is compared as given.
func samePinned(desired, current, label string) bool {
	if isDigested(desired) || label != desired {
		return false
	}
	d, err1 := reference.ParseNormalizedNamed(desired)
	c, err2 := reference.ParseNormalizedNamed(current)
	if err1 != nil || err2 != nil || d.Name() != c.Name() {
		return false
	}
	tag := "latest"
	if t, ok := d.(reference.Tagged); ok {
		tag = t.Tag()
	}
	ct, tagged := c.(reference.Tagged)
	return (tagged && ct.Tag() == tag) || (!tagged && isDigested(current))
}

// copySpec copies a spec deeply, so normalising it changes no caller's.
func copySpec(s swarm.ServiceSpec) swarm.ServiceSpec {
	var out swarm.ServiceSpec
	b, err := json.Marshal(s)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		return s // every field of the API type marshals; not reached
	}
	return out
}

func normalise(s *swarm.ServiceSpec, netNames map[string]string) {
	t := &s.TaskTemplate
	t.Runtime = cmp.Or(t.Runtime, swarm.RuntimeContainer)
	normaliseContainer(t.ContainerSpec)
	normaliseNetworks(t.Networks, netNames)
	normaliseResources(t.Resources)
	t.RestartPolicy = restartPolicy(t.RestartPolicy)
	normaliseMode(&s.Mode)
	s.UpdateConfig = updateConfig(s.UpdateConfig)
	s.RollbackConfig = updateConfig(s.RollbackConfig)
	s.EndpointSpec = endpointSpec(s.EndpointSpec)
}

// normaliseNetworks names the networks swarm keeps by ID, in name order.
func normaliseNetworks(nets []swarm.NetworkAttachmentConfig, netNames map[string]string) {
	for i, n := range nets {
		if name, ok := netNames[n.Target]; ok {
			nets[i].Target = name
		}
	}
	slices.SortFunc(nets, func(a, b swarm.NetworkAttachmentConfig) int { return cmp.Compare(a.Target, b.Target) })
}

// normaliseResources drops limits and reservations that say nothing.
func normaliseResources(r *swarm.ResourceRequirements) {
	if r == nil {
		return
	}
	if r.Limits != nil && *r.Limits == (swarm.Limit{}) {
		r.Limits = nil
	}
	if r.Reservations != nil && reflect.ValueOf(*r.Reservations).IsZero() {
		r.Reservations = nil
	}
}

// normaliseMode fills in the counts swarm takes when a mode leaves them out.
func normaliseMode(m *swarm.ServiceMode) {
	if r := m.Replicated; r != nil && r.Replicas == nil {
		r.Replicas = new(uint64(1))
	}
	if j := m.ReplicatedJob; j != nil {
		j.MaxConcurrent = cmp.Or(j.MaxConcurrent, new(uint64(1)))
		j.TotalCompletions = cmp.Or(j.TotalCompletions, new(*j.MaxConcurrent))
	}
}

// endpointSpec is e with swarm's defaults: VIP, and ports over TCP through
// the routing mesh, in order.
func endpointSpec(e *swarm.EndpointSpec) *swarm.EndpointSpec {
	if e == nil {
		e = &swarm.EndpointSpec{}
	}
	e.Mode = cmp.Or(e.Mode, swarm.ResolutionModeVIP)
	for i, p := range e.Ports {
		e.Ports[i].Protocol = cmp.Or(p.Protocol, "tcp")
		e.Ports[i].PublishMode = cmp.Or(p.PublishMode, swarm.PortConfigPublishModeIngress)
	}
	slices.SortFunc(e.Ports, swarm.PortConfig.Compare)
	return e
}

func normaliseContainer(cs *swarm.ContainerSpec) {
	if cs == nil {
		return
	}
	if cs.Isolation == "default" {
		cs.Isolation = ""
	}
	// References name the objects; their IDs are swarm's.
	for _, r := range cs.Secrets {
		r.SecretID = ""
	}
	for _, r := range cs.Configs {
		r.ConfigID = ""
	}
	slices.SortStableFunc(cs.Secrets, func(a, b *swarm.SecretReference) int { return cmp.Compare(a.SecretName, b.SecretName) })
	slices.SortStableFunc(cs.Configs, func(a, b *swarm.ConfigReference) int { return cmp.Compare(a.ConfigName, b.ConfigName) })
}

func restartPolicy(p *swarm.RestartPolicy) *swarm.RestartPolicy {
	if p == nil {
		p = &swarm.RestartPolicy{}
	}
	if p.Condition == "" {
		p.Condition = swarm.RestartPolicyConditionAny
	}
	if p.Delay == nil {
		p.Delay = new(defaultRestartDelay)
	}
	if p.MaxAttempts == nil {
		p.MaxAttempts = new(uint64(0))
	}
	if p.Window == nil {
		p.Window = new(time.Duration(0))
	}
	return p
}

func updateConfig(u *swarm.UpdateConfig) *swarm.UpdateConfig {
	if u == nil {
		u = &swarm.UpdateConfig{Parallelism: 1}
	}
	if u.FailureAction == "" {
		u.FailureAction = swarm.UpdateFailureActionPause
	}
	if u.Monitor == 0 {
		u.Monitor = defaultUpdateMonitor
	}
	if u.Order == "" {
		u.Order = swarm.UpdateOrderStopFirst
	}
	return u
}

// toTree is a spec as JSON values with empty ones left out: an absent
// field, a nil and an empty slice, map or struct all mean the same to
// swarm. The mode's kind is kept apart since an empty Global{} is one.
func toTree(s swarm.ServiceSpec) map[string]any {
	kind := ""
	switch {
	case s.Mode.Replicated != nil:
		kind = "replicated"
	case s.Mode.Global != nil:
		kind = "global"
	case s.Mode.ReplicatedJob != nil:
		kind = "replicated-job"
	case s.Mode.GlobalJob != nil:
		kind = "global-job"
	}
	var tree map[string]any
	b, _ := json.Marshal(s)
	_ = json.Unmarshal(b, &tree)
	tree = prune(tree).(map[string]any)
	mode, _ := tree["Mode"].(map[string]any)
	if mode == nil {
		mode = map[string]any{}
	}
	mode["Kind"] = kind
	tree["Mode"] = mode
	return tree
}

// prune drops empty values (nil, "", 0, false, empty lists and maps),
// returning nil for a value that is empty as a whole.
func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return pruneMap(x)
	case []any:
		return pruneList(x)
	case string, float64, bool:
		if v == "" || v == float64(0) || v == false {
			return nil
		}
	}
	return v
}

func pruneMap(x map[string]any) any {
	for k, e := range x {
		if p := prune(e); p == nil {
			delete(x, k)
		} else {
			x[k] = p
		}
	}
	if len(x) == 0 {
		return nil
	}
	return x
}

func pruneList(x []any) any {
	if len(x) == 0 {
		return nil
	}
	for i, e := range x {
		x[i] = prune(e)
	}
	return x
}

func diffPaths(prefix string, a, b map[string]any, out []string) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		am, aok := a[k].(map[string]any)
		bm, bok := b[k].(map[string]any)
		switch {
		case aok && bok:
			out = diffPaths(path, am, bm, out)
		case !reflect.DeepEqual(a[k], b[k]):
			out = append(out, path)
		}
	}
	return out
}
