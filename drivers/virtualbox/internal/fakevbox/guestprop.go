package fakevbox

import (
	"fmt"
	"sort"
	"time"
)

// --- guestproperty ----------------------------------------------------------

func (v *vbox) guestProperty(args []string) {
	if len(args) < 2 {
		v.syntax("Incorrect parameters")
		return
	}
	vm := v.s.FindVM(args[1])
	if vm == nil {
		v.notFound(args[1], "VBoxManageGuestProp.cpp")
		return
	}
	switch args[0] {
	case "get":
		if len(args) < 3 {
			v.syntax("Incorrect parameters")
			return
		}
		if val, ok := vm.GuestProps[args[2]]; ok && val != "" {
			fmt.Fprintf(v.out, "Value: %s\n", val)
		} else {
			fmt.Fprintln(v.out, "No value set!")
		}
	case "enumerate":
		names := make([]string, 0, len(vm.GuestProps))
		for k := range vm.GuestProps {
			names = append(names, k)
		}
		sort.Strings(names)
		if len(names) == 0 {
			fmt.Fprintln(v.out, "No properties found.")
			return
		}
		ts := time.Date(2025, 11, 20, 14, 12, 8, 964000000, time.UTC)
		if !v.modern() {
			// VirtualBox 6.1's one format (7.x keeps it behind --old-format).
			for _, k := range names {
				fmt.Fprintf(v.out, "Name: %s, value: %s, timestamp: %d, flags: \n", k, vm.GuestProps[k], ts.UnixNano())
			}
			return
		}
		// VirtualBox 7: an aligned table, timestamps and flags.
		wName, wVal := 1, 1
		for _, k := range names {
			wName = max(wName, len(k))
			wVal = max(wVal, len(vm.GuestProps[k]))
		}
		wName, wVal = min(wName, 48), min(wVal, 28)
		for _, k := range names {
			line := fmt.Sprintf("%-*s = '%s'", wName, k, vm.GuestProps[k])
			pad := wName + wVal + 6 - len(line)
			if pad < 1 {
				pad = 1
			}
			fmt.Fprintf(v.out, "%s%*s@ %s\n", line, pad, "", ts.Format("2006-01-02T15:04:05.000Z"))
		}
	default:
		v.syntax("Unknown sub-command '%s'", args[0])
	}
}
