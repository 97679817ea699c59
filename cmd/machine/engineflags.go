package main

import (
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/provision"
	"github.com/spf13/pflag"
)

// bindEngineCompat adds docker-machine's engine flags to create.
func bindEngineCompat(fs *pflag.FlagSet, e *store.Engine) {
	fs.StringArrayVar(&e.Opts, "engine-opt", nil, "daemon.json key=value, e.g. log-level=debug or dns=8.8.8.8 (repeat); a key the host's daemon.json has is kept")
	fs.StringArrayVar(&e.Env, "engine-env", nil, "dockerd's environment NAME=VALUE, in a systemd drop-in (repeat)")
	fs.StringVar(&e.StorageDriver, "engine-storage-driver", "", "storage-driver in daemon.json (kept if the host's daemon.json has one)")
	fs.StringArrayVar(&e.TLSSANs, "tls-san", nil, "extra host name or IP address in the engine's server certificate (repeat)")
}

// validateEngineCompat checks those flags before anything is made.
func validateEngineCompat(e *store.Engine) error {
	if _, err := machine.EngineDefaults(e.Opts, e.StorageDriver); err != nil {
		return err
	}
	if err := provision.ValidateEnv(e.Env); err != nil {
		return err
	}
	return machine.ValidateSANs(e.TLSSANs)
}
