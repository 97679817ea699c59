//go:build cgo && libvirt_dlopen

package libvirt

import (
	"errors"
	"fmt"
	"strings"

	lv "libvirt.org/go/libvirt"
)

// connect opens a connection; every operation has its own, closed at its end.
func (d *Driver) connect() (*lv.Connect, error) {
	conn, err := lv.NewConnect(d.cfg.URI)
	if err != nil {
		return nil, unavailable(d.cfg.URI, err)
	}
	return conn, nil
}

// unavailable turns a failed connection into an error that says what to do.
func unavailable(uri string, err error) error {
	msg := lvMsg(err)
	if strings.Contains(msg, "libvirt.so") {
		return fmt.Errorf("libvirt is not available: cannot load the libvirt library (%s): install it (apt-get install libvirt0, or dnf install libvirt-libs); to run the VMs on this machine, install libvirt-daemon-system (dnf: libvirt-daemon-kvm) too", msg)
	}
	return fmt.Errorf("libvirt is not available at %s: %s: install libvirt-daemon-system and start libvirtd, or set --libvirt-uri", uri, msg)
}

// lvMsg is a libvirt error's message without the binding's decoration.
func lvMsg(err error) string {
	var e lv.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// lvErr wraps a libvirt error with what was being done.
func lvErr(what string, err error) error {
	return fmt.Errorf("%s: %s", what, lvMsg(err))
}

func isCode(err error, code lv.ErrorNumber) bool {
	var e lv.Error
	return errors.As(err, &e) && e.Code == code
}

func closeConn(conn *lv.Connect) { _, _ = conn.Close() }
