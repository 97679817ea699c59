package machine

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
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
	// ResponseTime is how long the probe took.
	ResponseTime time.Duration `json:"ResponseTime"`
	// Certs is when the machine's TLS certificate (or the CA) expires.
	Certs string `json:"Certs,omitempty"`
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
			start := time.Now()
			infos[i] = m.probe(pctx, name)
			infos[i].ResponseTime = time.Since(start).Round(time.Millisecond)
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
	info.Certs = m.CertExpiry(mach.Machine, time.Now())
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
	m.probeEngine(ctx, mach, &info)
	return info
}

// probeEngine asks the running machine's engine its version and swarm
// state for info.
func (m *Manager) probeEngine(ctx context.Context, mach *Machine, info *Info) {
	c, err := m.Connect(ctx, mach, io.Discard)
	if err != nil {
		info.Error = firstLine(err.Error())
		return
	}
	defer c.Close()
	res, err := dockerInfo(ctx, c)
	if err != nil {
		info.Error = "docker: " + firstLine(strings.TrimSpace(string(res.Stderr)))
		return
	}
	version, swarmState, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), " ")
	info.DockerVersion = "v" + version
	if swarmState == "locked" {
		info.Swarm = strings.TrimSpace(info.Swarm + " (locked)")
		info.Error = "swarm manager locked: unlock it (" + unlockHint(mach.Machine) + ")"
	}
}

// dockerInfo asks the engine's version and swarm state. The login user is
// in the docker group after provisioning: sudo, which may want a password
// this command does not have, only when that fails.
func dockerInfo(ctx context.Context, c *sshrun.Client) (sshrun.Result, error) {
	const probe = "docker info --format '{{.ServerVersion}} {{.Swarm.LocalNodeState}}'"
	res, err := c.Run(ctx, probe)
	if err != nil {
		res, err = c.RunSudo(ctx, probe)
	}
	return res, err
}

// unlockHint says how to unlock a locked manager of this machine's swarm.
func unlockHint(mach *store.Machine) string {
	if mach.Cluster != "" {
		return "'cluster unlock " + mach.Cluster + "'"
	}
	return "'docker swarm unlock' on it"
}

// SwarmState is the machine's local swarm state as its engine says it
// (inactive, active, locked, ...).
func (m *Manager) SwarmState(ctx context.Context, name string) (string, error) {
	mach, err := m.Load(name)
	if err != nil || mach.Swarm == nil {
		return "", err
	}
	c, err := m.Connect(ctx, mach, io.Discard)
	if err != nil {
		return "", err
	}
	defer c.Close()
	res, err := c.RunSudo(ctx, "docker info --format '{{.Swarm.LocalNodeState}}'")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
