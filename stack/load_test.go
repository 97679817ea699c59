package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func testdata(t *testing.T, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		p, err := filepath.Abs(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func noEnv(string) (string, bool) { return "", false }

func load(t *testing.T, name string, env map[string]string, files ...string) *Desired {
	t.Helper()
	d, err := Load(Source{Name: name, Compose: testdata(t, files...), Env: env}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func hash12(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])[:12]
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func svc(t *testing.T, d *Desired, name string) swarm.ServiceSpec {
	t.Helper()
	s, ok := d.Services[name]
	if !ok {
		t.Fatalf("no service %s in %v", name, sortedKeys(d.Services))
	}
	return s
}

func TestLoadWordpress(t *testing.T) {
	d := load(t, "wp", nil, "wordpress.yml")
	eq(t, "services", sortedKeys(d.Services), []string{"wp_db", "wp_wordpress"})
	eq(t, "networks", sortedKeys(d.Networks), []string{"wp_backend"})
	n := d.Networks["wp_backend"]
	eq(t, "network driver", n.Driver, "overlay")
	eq(t, "network labels", n.Labels, map[string]string{LabelNamespace: "wp"})

	secret := "wp_db_password_" + hash12(t, "db_password.txt")
	if len(d.Secrets) != 1 {
		t.Fatalf("secrets = %v", d.Secrets)
	}
	eq(t, "secret name", d.Secrets[0].Name, secret)
	eq(t, "secret data", string(d.Secrets[0].Data), "hunter2\n")
	eq(t, "secret labels", d.Secrets[0].Labels, map[string]string{LabelNamespace: "wp"})

	db := svc(t, d, "wp_db")
	cs := db.TaskTemplate.ContainerSpec
	eq(t, "db image", cs.Image, "mysql:5.7")
	eq(t, "db labels", db.Labels, map[string]string{LabelNamespace: "wp", LabelImage: "mysql:5.7"})
	eq(t, "db container labels", cs.Labels, map[string]string{LabelNamespace: "wp"})
	eq(t, "db env", cs.Env, []string{"MYSQL_DATABASE=wordpress", "MYSQL_ROOT_PASSWORD_FILE=/run/secrets/db_password"})
	eq(t, "db secrets", cs.Secrets, []*swarm.SecretReference{{SecretName: secret,
		File: &swarm.SecretReferenceFileTarget{Name: "db_password", UID: "0", GID: "0", Mode: 0o444}}})
	eq(t, "db networks", db.TaskTemplate.Networks, []swarm.NetworkAttachmentConfig{{Target: "wp_backend", Aliases: []string{"db"}}})
	eq(t, "db constraints", db.TaskTemplate.Placement.Constraints, []string{"node.role == manager"})
	eq(t, "db restart", *db.TaskTemplate.RestartPolicy, swarm.RestartPolicy{Condition: "on-failure",
		Delay: new(5 * time.Second), MaxAttempts: new(uint64(3))})
	eq(t, "db mode", db.Mode, swarm.ServiceMode{Replicated: &swarm.ReplicatedService{}})

	wp := svc(t, d, "wp_wordpress")
	eq(t, "wp replicas", *wp.Mode.Replicated.Replicas, uint64(2))
	eq(t, "wp secret target", *wp.TaskTemplate.ContainerSpec.Secrets[0].File,
		swarm.SecretReferenceFileTarget{Name: "wp_db_password", UID: "0", GID: "0", Mode: 0o400})
	eq(t, "wp aliases", wp.TaskTemplate.Networks[0].Aliases, []string{"blog", "wordpress"})
	eq(t, "wp endpoint", *wp.EndpointSpec, swarm.EndpointSpec{Ports: []swarm.PortConfig{{Protocol: "tcp",
		TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress"}}})
}

func TestLoadDockercoins(t *testing.T) {
	env := map[string]string{"SHOAL_REGISTRY": "reg.local:5000"}
	d, err := Load(Source{Name: "coins", Compose: testdata(t, "dockercoins.yml"), Env: env},
		func(k string) (string, bool) {
			return map[string]string{"FROM_SHELL": "yes", "EMPTY": "filled"}[k], strings.Contains("FROM_SHELL EMPTY", k)
		})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "services", sortedKeys(d.Services), []string{"coins_hasher", "coins_redis", "coins_rng", "coins_webui", "coins_worker"})
	eq(t, "networks", sortedKeys(d.Networks), []string{"coins_coins"})
	n := d.Networks["coins_coins"]
	eq(t, "attachable", n.Attachable, true)
	eq(t, "mtu", n.Options, map[string]string{"com.docker.network.driver.mtu": "1400"})

	rng := svc(t, d, "coins_rng")
	eq(t, "rng image", rng.TaskTemplate.ContainerSpec.Image, "reg.local:5000/dockercoins/rng:v0.1")
	eq(t, "rng image label", rng.Labels[LabelImage], "reg.local:5000/dockercoins/rng:v0.1")
	eq(t, "rng mode", rng.Mode, swarm.ServiceMode{Global: &swarm.GlobalService{}})
	eq(t, "rng networks", rng.TaskTemplate.Networks, []swarm.NetworkAttachmentConfig{{Target: "coins_coins", Aliases: []string{"rng"}}})

	worker := svc(t, d, "coins_worker")
	eq(t, "worker replicas", *worker.Mode.Replicated.Replicas, uint64(10))
	// env_file entries, and values from the environment where none is given
	eq(t, "worker env", worker.TaskTemplate.ContainerSpec.Env, []string{"EMPTY=filled", "FROM_SHELL=yes", "LOG_LEVEL=debug"})

	webui := svc(t, d, "coins_webui")
	eq(t, "webui replicas", *webui.Mode.Replicated.Replicas, uint64(3))
	eq(t, "webui ports", webui.EndpointSpec.Ports, []swarm.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8000, PublishMode: "ingress"}})
	if len(d.Builds) != 0 || len(d.Secrets) != 0 {
		t.Errorf("builds %v secrets %v", d.Builds, d.Secrets)
	}
}

func TestLoadBuild(t *testing.T) {
	d := load(t, "b", map[string]string{"SHOAL_REGISTRY": "10.0.0.1:5000"}, "build.yml")
	want := []Build{{Service: "b_app", Context: testdata(t, "app")[0], Dockerfile: "Dockerfile",
		Image: "10.0.0.1:5000/app:latest", Args: map[string]*string{"VERSION": new("1")}}}
	eq(t, "builds", d.Builds, want)
	eq(t, "image", svc(t, d, "b_app").TaskTemplate.ContainerSpec.Image, "10.0.0.1:5000/app:latest")
	eq(t, "default network", sortedKeys(d.Networks), []string{"b_default"})
	eq(t, "warnings", len(d.Warnings), 0)
}

func TestLoadMisc(t *testing.T) {
	d := load(t, "m", nil, "misc.yml")
	conf := "m_nginx_conf_" + hash12(t, "nginx.conf")
	eq(t, "configs", len(d.Configs), 1)
	eq(t, "config name", d.Configs[0].Name, conf)
	eq(t, "config labels", d.Configs[0].Labels, map[string]string{LabelNamespace: "m"})

	web := svc(t, d, "m_web")
	eq(t, "labels", web.Labels, map[string]string{LabelNamespace: "m", LabelImage: "nginx:1.25", "tier": "front"})
	eq(t, "configs ref", web.TaskTemplate.ContainerSpec.Configs, []*swarm.ConfigReference{{ConfigName: conf,
		File: &swarm.ConfigReferenceFileTarget{Name: "/etc/nginx/conf.d/default.conf", UID: "0", GID: "0", Mode: 0o444}}})
	eq(t, "endpoint", *web.EndpointSpec, swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: []swarm.PortConfig{}})
	eq(t, "placement", *web.TaskTemplate.Placement, swarm.Placement{Constraints: []string{"node.labels.zone == a"},
		Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels.rack"}}}})
	eq(t, "resources", *web.TaskTemplate.Resources, swarm.ResourceRequirements{
		Limits:       &swarm.Limit{NanoCPUs: 500000000, MemoryBytes: 256 << 20},
		Reservations: &swarm.Resources{MemoryBytes: 64 << 20}})
	eq(t, "restart", *web.TaskTemplate.RestartPolicy, swarm.RestartPolicy{Condition: "any"})
	eq(t, "update", *web.UpdateConfig, swarm.UpdateConfig{Parallelism: 2, Delay: 10 * time.Second,
		Order: "start-first", FailureAction: "rollback"})
	eq(t, "rollback", *web.RollbackConfig, swarm.UpdateConfig{Parallelism: 1, Monitor: 30 * time.Second})

	job := svc(t, d, "m_job")
	eq(t, "job mode", job.Mode, swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: new(uint64(1)), TotalCompletions: new(uint64(1))}})
	eq(t, "job args", job.TaskTemplate.ContainerSpec.Args, []string{"echo", "done"})
}

func TestLoadMergesFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yml")
	b := filepath.Join(dir, "b.yml")
	write(t, a, "services:\n  web:\n    image: nginx:1\n    deploy:\n      replicas: 2\n")
	write(t, b, "services:\n  web:\n    image: nginx:2\n")
	d, err := Load(Source{Name: "s", Compose: []string{a, b}}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	web := svc(t, d, "s_web")
	eq(t, "image", web.TaskTemplate.ContainerSpec.Image, "nginx:2")
	eq(t, "replicas", *web.Mode.Replicated.Replicas, uint64(2))
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, stack, file string
		want              []string // substrings of the error
	}{
		{"bad stack name", "a.b", "services:\n  web:\n    image: x\n", []string{`invalid stack name "a.b"`}},
		{"no image", "s", "services:\n  web:\n    environment: [A=1]\n", []string{"service web", "no image"}},
		{"build without image", "s", "services:\n  web:\n    build: .\n", []string{"service web", "needs image"}},
		{"bad image", "s", "services:\n  web:\n    image: UPPER:x\n", []string{"service web", "invalid image reference"}},
		{"bad service name", "s", "services:\n  we.b:\n    image: x\n", []string{`service name "s_we.b"`}},
		{"undefined secret", "s", "services:\n  web:\n    image: x\n    secrets: [nope]\n", []string{"service web", `undefined secret "nope"`}},
		{"missing secret file", "s", "services:\n  web:\n    image: x\nsecrets:\n  k:\n    file: ./nofile\n", []string{"secret k", "nofile"}},
		{"secret is a directory", "s", "services:\n  web:\n    image: x\nsecrets:\n  k:\n    file: .\n", []string{"secret k", "not a regular file"}},
		{"config too big", "s", "services:\n  web:\n    image: x\nconfigs:\n  k:\n    file: ./big\n", []string{"config k", "at most 1024000"}},
		{"same secret target", "s", "services:\n  web:\n    image: x\n    secrets: [k, {source: k}]\nsecrets:\n  k:\n    file: ./compose.yml\n", []string{"service web", "two at target k"}},
		{"schema", "s", "services:\n  web:\n    image: x\n    replicas: 2\n", []string{"compose.yml", "replicas"}},
		{"forbidden", "s", "services:\n  web:\n    image: x\n    volumes_from: [y]\n", []string{"compose.yml", "volumes_from"}},
		{"yaml", "s", "services: [\n", []string{"compose.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "compose.yml")
			write(t, p, tt.file)
			write(t, filepath.Join(dir, "big"), strings.Repeat("x", 1024001))
			_, err := Load(Source{Name: tt.stack, Compose: []string{p}}, noEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadNamesTheFileOfSeveral(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yml")
	b := filepath.Join(dir, "b.yml")
	write(t, a, "services:\n  web:\n    image: nginx:1\n")
	write(t, b, "services:\n  web:\n    ports: [\"notaport\"]\n")
	_, err := Load(Source{Name: "s", Compose: []string{a, b}}, noEnv)
	if err == nil || !strings.Contains(err.Error(), "compose file "+b) {
		t.Fatalf("error %v does not name %s alone", err, b)
	}
}

func TestSecretNameFollowsContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "compose.yml")
	write(t, p, "services:\n  web:\n    image: x\n    secrets: [k]\nsecrets:\n  k:\n    file: ./k.txt\n")
	write(t, filepath.Join(dir, "k.txt"), "one")
	d1, err := Load(Source{Name: "s", Compose: []string{p}}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "k.txt"), "two")
	d2, err := Load(Source{Name: "s", Compose: []string{p}}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := d1.Secrets[0].Name, d2.Secrets[0].Name
	if n1 == n2 || !strings.HasPrefix(n1, "s_k_") || !strings.HasPrefix(n2, "s_k_") {
		t.Fatalf("names %s %s", n1, n2)
	}
	eq(t, "reference", d2.Services["s_web"].TaskTemplate.ContainerSpec.Secrets[0].SecretName, n2)
}

func TestResolveIDs(t *testing.T) {
	d := load(t, "wp", nil, "wordpress.yml")
	spec := d.Services["wp_db"]
	name := spec.TaskTemplate.ContainerSpec.Secrets[0].SecretName
	if err := ResolveIDs(&spec, map[string]string{}, nil); err == nil {
		t.Fatal("no error for a secret without an ID")
	}
	if err := ResolveIDs(&spec, map[string]string{name: "id1"}, nil); err != nil {
		t.Fatal(err)
	}
	eq(t, "id", spec.TaskTemplate.ContainerSpec.Secrets[0].SecretID, "id1")
}
