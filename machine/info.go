package machine

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/drivers"
)

// Info is one row of `machine ls`.
type Info struct {
	Name          string `json:"Name"`
	Active        bool   `json:"Active"`
	DriverName    string `json:"DriverName"`
	State         string `json:"State"`
	URL           string `json:"URL"`
	Swarm         string `json:"Swarm"`
	DockerVersion string `json:"DockerVersion"`
	Error         string `json:"Error"`
	Cluster       string `json:"Cluster,omitempty"`
}

// List describes every machine, probing the running ones in parallel (each
// within timeout). With quick, hosts are not contacted at all.
func (m *Manager) List(ctx context.Context, timeout time.Duration, quick bool) ([]Info, error) {
	names, err := m.Store.List()
	if err != nil {
		return nil, err
	}
	infos := make([]Info, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		infos[i] = Info{Name: name}
		if quick {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			infos[i] = m.probe(pctx, name)
		}()
	}
	wg.Wait()
	return infos, nil
}

func (m *Manager) probe(ctx context.Context, name string) Info {
	info := Info{Name: name, State: string(drivers.Unknown)}
	mach, err := m.Load(name)
	if err != nil {
		info.Error = err.Error()
		return info
	}
	info.DriverName = mach.Driver.Name()
	info.Cluster = mach.Cluster
	info.URL = URL(mach.Machine)
	info.Swarm = swarmColumn(mach.Machine)
	st, err := mach.Driver.State(ctx)
	info.State = string(st)
	if err != nil {
		info.Error = err.Error()
		return info
	}
	if st != drivers.Running {
		info.URL = ""
		return info
	}
	c, err := m.Connect(ctx, mach, io.Discard)
	if err != nil {
		info.Error = firstLine(err.Error())
		return info
	}
	defer c.Close()
	// The login user is in the docker group after provisioning: no sudo,
	// which may want a password this command does not have.
	res, err := c.Run(ctx, "docker version --format '{{.Server.Version}}'")
	if err != nil {
		res, err = c.RunSudo(ctx, "docker version --format '{{.Server.Version}}'")
	}
	if err != nil {
		info.Error = "docker: " + firstLine(strings.TrimSpace(string(res.Stderr)))
		return info
	}
	info.DockerVersion = "v" + strings.TrimSpace(string(res.Stdout))
	return info
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
