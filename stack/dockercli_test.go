package stack

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/docker/cli/cli/compose/convert"
	"github.com/docker/cli/cli/compose/loader"
	composetypes "github.com/docker/cli/cli/compose/types"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// objectLister answers the secret and config lookups docker stack deploy's
// conversion makes: every name asked for exists, with ID "id-<name>".
type objectLister struct{ client.APIClient }

func (objectLister) SecretList(_ context.Context, o client.SecretListOptions) (client.SecretListResult, error) {
	var res client.SecretListResult
	for name := range o.Filters["name"] {
		res.Items = append(res.Items, swarm.Secret{ID: "id-" + name, Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: name}}})
	}
	return res, nil
}

func (objectLister) ConfigList(_ context.Context, o client.ConfigListOptions) (client.ConfigListResult, error) {
	var res client.ConfigListResult
	for name := range o.Filters["name"] {
		res.Items = append(res.Items, swarm.Config{ID: "id-" + name, Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: name}}})
	}
	return res, nil
}

// dockerStackDeploy converts a compose file as `docker stack deploy -c
// file name` does (cli/command/stack: loadComposeFile, deployCompose).
func dockerStackDeploy(t *testing.T, name, file string, env map[string]string) (map[string]swarm.ServiceSpec, map[string]client.NetworkCreateOptions, []swarm.SecretSpec, []swarm.ConfigSpec) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dict, err := loader.ParseYAML(b)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loader.Load(composetypes.ConfigDetails{WorkingDir: filepath.Dir(file),
		ConfigFiles: []composetypes.ConfigFile{{Filename: file, Config: dict}}, Environment: env})
	if err != nil {
		t.Fatal(err)
	}
	ns := convert.NewNamespace(name)
	used := map[string]struct{}{}
	for _, s := range cfg.Services {
		if len(s.Networks) == 0 {
			used["default"] = struct{}{}
		}
		for n := range s.Networks {
			used[n] = struct{}{}
		}
	}
	networks, _ := convert.Networks(ns, cfg.Networks, used)
	secrets, err := convert.Secrets(ns, cfg.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	configs, err := convert.Configs(ns, cfg.Configs)
	if err != nil {
		t.Fatal(err)
	}
	services, err := convert.Services(context.Background(), ns, cfg, objectLister{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]swarm.ServiceSpec{}
	for _, s := range services {
		byName[s.Name] = s
	}
	return byName, networks, secrets, configs
}

// TestLoadIsDockerStackDeploy compares Load with docker stack deploy's own
// conversion of the same files, field by field: the only difference is
// the content hash in secret and config names (and the IDs, which swarm
// gives).
func TestLoadIsDockerStackDeploy(t *testing.T) {
	env := map[string]string{"SHOAL_REGISTRY": "reg:5000", "FROM_SHELL": "yes"}
	for _, file := range []string{"wordpress.yml", "dockercoins.yml", "build.yml", "misc.yml", "rich.yml"} {
		t.Run(file, func(t *testing.T) {
			path := testdata(t, file)[0]
			services, networks, secrets, configs := dockerStackDeploy(t, "st", path, env)
			d, err := Load(Source{Name: "st", Compose: []string{path}, Env: env}, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Services) != len(services) {
				t.Fatalf("services %v, docker %v", sortedKeys(d.Services), sortedKeys(services))
			}
			for name, want := range services {
				got := d.Services[name]
				cs := got.TaskTemplate.ContainerSpec
				for _, r := range want.TaskTemplate.ContainerSpec.Secrets {
					r.SecretID = ""
				}
				for _, r := range want.TaskTemplate.ContainerSpec.Configs {
					r.ConfigID = ""
				}
				for _, r := range cs.Secrets {
					r.SecretName = base(r.SecretName)
				}
				for _, r := range cs.Configs {
					r.ConfigName = base(r.ConfigName)
				}
				if !reflect.DeepEqual(toTree(got), toTree(want)) { // nil and empty lists alike
					t.Errorf("%s: %v differ\n ours   %+v\n docker %+v", name, diffPaths("", toTree(got), toTree(want), nil), got, want)
				}
			}
			for name, want := range networks {
				want.Driver = "overlay" // docker stack deploy's createNetworks default
				if got := d.Networks[name]; !reflect.DeepEqual(got, want) {
					t.Errorf("network %s: ours %+v docker %+v", name, got, want)
				}
			}
			eq(t, "networks", len(d.Networks), len(networks))
			eq(t, "secrets", len(d.Secrets), len(secrets))
			for _, want := range secrets {
				for _, got := range d.Secrets {
					if base(got.Name) == want.Name && (string(got.Data) != string(want.Data) || !reflect.DeepEqual(got.Labels, want.Labels)) {
						t.Errorf("secret %s: ours %s docker %s", want.Name, got.Name, want.Name)
					}
				}
			}
			eq(t, "configs", len(d.Configs), len(configs))
		})
	}
}
