package stack

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// deployed is what a swarm holds after the desired stack was deployed:
// services read back as swarm fills them in (network IDs, object IDs, the
// image pinned to a digest, defaults), networks, secrets and configs.
func deployed(d *Desired) Current {
	var cur Current
	ids := map[string]string{}
	for _, name := range sortedKeys(d.Networks) {
		ids[name] = "net-" + name
		cur.Networks = append(cur.Networks, network.Summary{Network: network.Network{
			ID: ids[name], Name: name, Labels: d.Networks[name].Labels}})
	}
	for _, s := range d.Secrets {
		cur.Secrets = append(cur.Secrets, swarm.Secret{ID: "sec-" + s.Name, Spec: swarm.SecretSpec{Annotations: s.Annotations}})
	}
	for _, c := range d.Configs {
		cur.Configs = append(cur.Configs, swarm.Config{ID: "cfg-" + c.Name, Spec: swarm.ConfigSpec{Annotations: c.Annotations}})
	}
	for _, name := range sortedKeys(d.Services) {
		cur.Services = append(cur.Services, swarm.Service{ID: "svc-" + name, Spec: asSwarmKeepsIt(d.Services[name], ids)})
	}
	return cur
}

// asSwarmKeepsIt is a spec as an engine returns it after a create through
// docker stack deploy (with the registry queried).
func asSwarmKeepsIt(spec swarm.ServiceSpec, netIDs map[string]string) swarm.ServiceSpec {
	s := copySpec(spec)
	t := &s.TaskTemplate
	t.Runtime = swarm.RuntimeContainer
	t.ContainerSpec.Image += "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	t.ContainerSpec.Isolation = "default"
	t.ContainerSpec.Privileges = nil
	for _, r := range t.ContainerSpec.Secrets {
		r.SecretID = "sec-" + r.SecretName
	}
	for _, r := range t.ContainerSpec.Configs {
		r.ConfigID = "cfg-" + r.ConfigName
	}
	for i, n := range t.Networks {
		if id, ok := netIDs[n.Target]; ok {
			t.Networks[i].Target = id
		}
	}
	if t.Placement == nil {
		t.Placement = &swarm.Placement{}
	}
	t.Placement.Platforms = []swarm.Platform{{Architecture: "amd64", OS: "linux"}}
	if t.Resources == nil {
		t.Resources = &swarm.ResourceRequirements{}
	}
	if s.Mode.Replicated != nil && s.Mode.Replicated.Replicas == nil {
		s.Mode.Replicated.Replicas = new(uint64(1))
	}
	if s.EndpointSpec != nil && s.EndpointSpec.Mode == "" {
		s.EndpointSpec.Mode = swarm.ResolutionModeVIP
	}
	if t.RestartPolicy == nil {
		t.RestartPolicy = &swarm.RestartPolicy{Condition: "any", Delay: new(defaultRestartDelay), MaxAttempts: new(uint64(0))}
	}
	if s.UpdateConfig == nil {
		s.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, FailureAction: "pause", Monitor: defaultUpdateMonitor, Order: "stop-first"}
	}
	t.ForceUpdate = 3
	return s
}

func stackCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"wordpress.yml", "db_password.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, f), string(b))
	}
	return dir
}

func loadDir(t *testing.T, dir string) *Desired {
	t.Helper()
	d, err := Load(Source{Name: "wp", Compose: []string{filepath.Join(dir, "wordpress.yml")}}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDecide(t *testing.T) {
	dir := stackCopy(t)
	before := loadDir(t, dir)
	cur := deployed(before)
	oldSecret := before.Secrets[0].Name

	changedImage := loadDir(t, dir)
	db := changedImage.Services["wp_db"]
	db.TaskTemplate.ContainerSpec.Image = "mysql:8"
	db.Labels[LabelImage] = "mysql:8"
	changedImage.Services["wp_db"] = db

	write(t, filepath.Join(dir, "db_password.txt"), "new password\n")
	changedSecret := loadDir(t, dir)
	newSecret := changedSecret.Secrets[0].Name

	withoutWP := loadDir(t, dir)
	withoutWP.Secrets = before.Secrets
	withoutWP.Services = map[string]swarm.ServiceSpec{"wp_db": before.Services["wp_db"]}

	secretsField := []string{"TaskTemplate.ContainerSpec.Secrets"}
	tests := []struct {
		name    string
		desired *Desired
		cur     Current
		prune   bool
		want    Plan
	}{
		{"nothing changed", before, cur, true, Plan{}},
		{"nothing changed, no prune", before, cur, false, Plan{}},
		{"nothing deployed", before, Current{}, true, Plan{CreateNetworks: []string{"wp_backend"},
			CreateSecrets: []string{oldSecret}, CreateServices: []string{"wp_db", "wp_wordpress"}}},
		{"image changed", changedImage, cur, true, Plan{UpdateServices: []ServiceChange{{Name: "wp_db",
			Fields: []string{"Labels.com.docker.stack.image", "TaskTemplate.ContainerSpec.Image"}}}}},
		{"secret file changed", changedSecret, cur, false, Plan{CreateSecrets: []string{newSecret},
			RemoveSecrets: []string{oldSecret}, UpdateServices: []ServiceChange{
				{Name: "wp_db", Fields: secretsField}, {Name: "wp_wordpress", Fields: secretsField}}}},
		{"service removed, prune", withoutWP, cur, true, Plan{RemoveServices: []string{"wp_wordpress"}}},
		{"service removed, no prune", withoutWP, cur, false, Plan{}},
		{"stack deployed by hand", changedSecret, handDeployed(before), false, Plan{
			CreateSecrets: []string{newSecret}, RemoveSecrets: []string{"wp_db_password"},
			UpdateServices: []ServiceChange{{Name: "wp_db", Fields: secretsField}, {Name: "wp_wordpress", Fields: secretsField}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.desired, tt.cur, tt.prune)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan\n got %+v\nwant %+v", got, tt.want)
			}
			if got.Empty() != reflect.DeepEqual(tt.want, Plan{}) {
				t.Errorf("Empty() = %v", got.Empty())
			}
		})
	}
}

// handDeployed is a stack as `docker stack deploy` makes it: secrets named
// without a hash, the same labels.
func handDeployed(d *Desired) Current {
	cur := deployed(d)
	for i := range cur.Secrets {
		cur.Secrets[i].Spec.Name = base(cur.Secrets[i].Spec.Name)
	}
	for _, s := range cur.Services {
		for _, r := range s.Spec.TaskTemplate.ContainerSpec.Secrets {
			r.SecretName = base(r.SecretName)
		}
	}
	return cur
}

func TestDecidePrunesWhatLeftTheFile(t *testing.T) {
	d := load(t, "wp", nil, "wordpress.yml")
	cur := deployed(d)
	other := deployed(load(t, "other", nil, "wordpress.yml")) // another stack: never touched
	cur.Services = append(cur.Services, other.Services...)
	cur.Networks = append(cur.Networks, other.Networks...)
	cur.Secrets = append(cur.Secrets, other.Secrets...)
	cur.Networks = append(cur.Networks, network.Summary{Network: network.Network{ID: "n2", Name: "wp_old",
		Labels: map[string]string{LabelNamespace: "wp"}}})
	cur.Configs = append(cur.Configs, swarm.Config{ID: "c2", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{
		Name: "wp_gone_0123456789ab", Labels: map[string]string{LabelNamespace: "wp"}}}})

	p := Decide(d, cur, true)
	want := Plan{RemoveNetworks: []string{"wp_old"}, RemoveConfigs: []string{"wp_gone_0123456789ab"}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("prune: got %+v want %+v", p, want)
	}
	if p := Decide(d, cur, false); !p.Empty() {
		t.Errorf("no prune: got %+v", p)
	}
}

func TestDecideKeepsSecretOfKeptService(t *testing.T) {
	dir := stackCopy(t)
	cur := deployed(loadDir(t, dir))
	old := cur.Secrets[0].Spec.Name
	write(t, filepath.Join(dir, "db_password.txt"), "other\n")
	d := loadDir(t, dir)
	delete(d.Services, "wp_wordpress") // still runs (no prune) with the old secret
	p := Decide(d, cur, false)
	if slices.Contains(p.RemoveSecrets, old) {
		t.Errorf("removes %s still used by the kept wp_wordpress: %+v", old, p)
	}
	p = Decide(d, cur, true)
	if !slices.Contains(p.RemoveSecrets, old) || !slices.Contains(p.RemoveServices, "wp_wordpress") {
		t.Errorf("prune: %+v", p)
	}
}

func TestServiceDiffFields(t *testing.T) {
	d := load(t, "m", nil, "misc.yml")
	web := d.Services["m_web"]
	netIDs := map[string]string{"m_default": "id-default"}
	names := map[string]string{"id-default": "m_default"}
	cur := asSwarmKeepsIt(web, netIDs)
	if f := ServiceDiff(web, cur, names); len(f) != 0 {
		t.Fatalf("unchanged: %v", f)
	}
	more := copySpec(web)
	more.Mode.Replicated.Replicas = new(uint64(5))
	more.EndpointSpec.Mode = swarm.ResolutionModeVIP
	more.TaskTemplate.Resources.Limits.MemoryBytes = 1 << 30
	want := []string{"EndpointSpec.Mode", "Mode.Replicated.Replicas", "TaskTemplate.Resources.Limits.MemoryBytes"}
	if f := ServiceDiff(more, cur, names); !reflect.DeepEqual(f, want) {
		t.Errorf("fields %v want %v", f, want)
	}
	global := copySpec(web)
	global.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
	if f := ServiceDiff(global, cur, names); !slices.Contains(f, "Mode.Kind") {
		t.Errorf("mode change not seen: %v", f)
	}
	// swarm pins an image without a tag to :latest and a digest
	redis := copySpec(web)
	redis.TaskTemplate.ContainerSpec.Image, redis.Labels[LabelImage] = "redis", "redis"
	pinnedRedis := asSwarmKeepsIt(redis, netIDs)
	pinnedRedis.TaskTemplate.ContainerSpec.Image = "redis:latest@sha256:" + strings.Repeat("a", 64)
	if f := ServiceDiff(redis, pinnedRedis, names); len(f) != 0 {
		t.Errorf("redis pinned by swarm: %v", f)
	}
	// without the registry asked, swarm still makes the tag explicit
	latest := copySpec(pinnedRedis)
	latest.TaskTemplate.ContainerSpec.Image = "redis:latest"
	if f := ServiceDiff(redis, latest, names); len(f) != 0 {
		t.Errorf("redis kept as redis:latest: %v", f)
	}
	tagged := copySpec(pinnedRedis)
	tagged.TaskTemplate.ContainerSpec.Image = "redis:7@sha256:" + strings.Repeat("a", 64)
	if f := ServiceDiff(redis, tagged, names); !slices.Contains(f, "TaskTemplate.ContainerSpec.Image") {
		t.Errorf("other tag not seen: %v", f)
	}
	// the label names the image but the service runs another repository
	other := copySpec(pinnedRedis)
	other.TaskTemplate.ContainerSpec.Image = "evil/redis:latest@sha256:" + strings.Repeat("a", 64)
	if f := ServiceDiff(redis, other, names); !slices.Contains(f, "TaskTemplate.ContainerSpec.Image") {
		t.Errorf("other repository not seen: %v", f)
	}
	// a digest given in the file is compared as given
	pinned := copySpec(web)
	pinned.TaskTemplate.ContainerSpec.Image = "nginx:1.25@sha256:" + "ff"
	if f := ServiceDiff(pinned, cur, names); !slices.Contains(f, "TaskTemplate.ContainerSpec.Image") {
		t.Errorf("image change not seen: %v", f)
	}
}

func TestForUpdateKeepsWhatSwarmPinned(t *testing.T) {
	d := load(t, "m", nil, "misc.yml")
	web := d.Services["m_web"]
	cur := asSwarmKeepsIt(web, nil)
	scaled := copySpec(web)
	scaled.Mode.Replicated.Replicas = new(uint64(4))
	up := ForUpdate(scaled, cur)
	eq(t, "image", up.TaskTemplate.ContainerSpec.Image, cur.TaskTemplate.ContainerSpec.Image)
	eq(t, "force update", up.TaskTemplate.ForceUpdate, cur.TaskTemplate.ForceUpdate)
	eq(t, "platforms", up.TaskTemplate.Placement.Platforms, cur.TaskTemplate.Placement.Platforms)
	eq(t, "replicas", *up.Mode.Replicated.Replicas, uint64(4))
	eq(t, "desired untouched", scaled.TaskTemplate.ContainerSpec.Image, "nginx:1.25")
	// only the replicas change: the tasks' spec stays, or swarm would restart them
	eq(t, "diff", ServiceDiff(up, cur, nil), []string{"Mode.Replicated.Replicas"})
}
