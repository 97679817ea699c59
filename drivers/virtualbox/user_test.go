package virtualbox

import (
	"testing"

	"github.com/shoal-dev/shoal/drivers/libvirt"
)

// TestSSHUserAsLibvirtTakesIt: the user cloud-init makes follows one rule
// (validate.UserName) in both drivers that make one: VirtualBox had a rule
// of its own that refused john.doe, which libvirt took.
func TestSSHUserAsLibvirtTakesIt(t *testing.T) {
	vb := Spec()
	base := vb.NewConfig().(*Config)
	base.Image = "/i.qcow2"
	lv := libvirt.NewConfig()
	lv.Image = "/i.qcow2"
	for _, u := range []string{"shoal", "john.doe", "John_Doe", "u1", "a-b", "1a", "svc$", "Bad User", "-x", "123", "a@b", "x;id", ""} {
		c := *base
		c.SSHUser = u
		l := *lv
		l.SSHUser = u
		if vbErr, lvErr := vb.Validate(&c), l.Validate(); (vbErr == nil) != (lvErr == nil) {
			t.Errorf("user %q: virtualbox says %v, libvirt %v", u, vbErr, lvErr)
		}
	}
}
