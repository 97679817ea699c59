//go:build !linux

package libvirt

import (
	"context"
	"errors"
)

// probeKVM: KVM is Linux's.
func probeKVM(context.Context) error { return errors.New("KVM is only available on Linux") }

func kvmUsable() bool { return false }
