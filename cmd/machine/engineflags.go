package main

import (
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/internal/store"
	"github.com/spf13/pflag"
)

// engineCompat holds docker-machine flags that have no place in the config.
type engineCompat struct {
	installURL string
	fs         *pflag.FlagSet
}

// dockerInstallScript is docker-machine's default --engine-install-url.
const dockerInstallScript = "https://get.docker.com"

// bindEngineCompat adds docker-machine's engine flags to create.
func bindEngineCompat(fs *pflag.FlagSet, e *store.Engine) *engineCompat {
	c := &engineCompat{fs: fs}
	fs.StringVar(&c.installURL, "engine-install-url", "", "docker-machine's install script URL: only "+dockerInstallScript+" is accepted (shoal installs from the docker-ce repository: see --engine-repo-url)")
	fs.IntVar(&e.TLSPort, "engine-tls-port", 0, "the engine's TLS port (default 2376)")
	fs.IntVar(&e.TLSPort, "generic-engine-port", 0, "alias of --engine-tls-port (docker-machine's generic driver)")
	fs.StringArrayVar(&e.Opts, "engine-opt", nil, "a daemon.json key=value (log-level=debug, log-opts={\"max-size\":\"10m\"}) or a dockerd flag as docker-machine takes it (log-opt=max-size=10m, default-ulimit=nofile=1024:2048, label=k=v) (repeat); a key dockerd does not know is refused, a key the host's daemon.json has is kept")
	fs.StringArrayVar(&e.Env, "engine-env", nil, "dockerd's environment NAME=VALUE, in a systemd drop-in (repeat)")
	fs.StringVar(&e.StorageDriver, "engine-storage-driver", "", "storage-driver in daemon.json (kept if the host's daemon.json has one)")
	fs.StringArrayVar(&e.TLSSANs, "tls-san", nil, "extra host name or IP address in the engine's server certificate (repeat)")
	return c
}

// validateEngineCompat checks the docker-machine flags that are not in the
// engine's config (machine.EngineErrors checks those).
func validateEngineCompat(_ *store.Engine, c *engineCompat) error {
	if c.installURL == "" && c.fs != nil && c.fs.Changed("engine-install-url") {
		// docker-machine's way of saying "do not install Docker".
		return fmt.Errorf(`--engine-install-url "": say --engine-install skip (Docker must then be on the host already)`)
	}
	if u := strings.TrimSuffix(c.installURL, "/"); u != "" && u != dockerInstallScript {
		return fmt.Errorf("--engine-install-url %s: shoal does not run install scripts; it installs docker-ce from its repository (--engine-repo-url for a mirror, --engine-version for a version) or the distribution's docker.io (--engine-install distro)", c.installURL)
	}
	return nil
}
