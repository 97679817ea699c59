package bootstrap

import (
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"sort"
	"strings"
)

// QuorumCheck tells whether the swarm keeps its Raft quorum while the named
// managers stop being managers (demoted or removed), one at a time, and
// keeps at least one manager. It returns a warning for a final count that
// tolerates no loss.
func QuorumCheck(members []Member, leaving map[string]bool, promoted int) (warning string, err error) {
	c := countManagers(members, leaving)
	if len(c.names) == 0 {
		return countWarning(c.managers + promoted), nil
	}
	sort.Strings(c.names)
	names := strings.Join(c.names, ", ")
	left, leftReach := c.managers-len(c.names), c.reachable-c.goReach
	if left+promoted < 1 {
		return "", fmt.Errorf("removing or demoting %s leaves the swarm no manager: keep at least one manager in the file", names)
	}
	if need := left/2 + 1; left > 0 && leftReach < need {
		return "", fmt.Errorf("removing or demoting %s would lose the Raft quorum: %d managers, %d reachable; after it %d managers with %d reachable, and a quorum of %d needs %d reachable. Bring the unreachable managers back (or replace them) first",
			names, c.managers, c.reachable, left, leftReach, left, need)
	}
	if c.managers-c.reachable > 0 && c.reachable < c.managers/2+1 {
		return "", fmt.Errorf("the swarm has lost its quorum (%d of %d managers reachable): nothing can change it until a majority is back", c.reachable, c.managers)
	}
	return countWarning(left + promoted), nil
}

// managerCount counts the swarm's managers, those reachable, and of the
// leaving ones their names and how many are reachable.
type managerCount struct {
	managers, reachable, goReach int
	names                        []string
}

func countManagers(members []Member, leaving map[string]bool) managerCount {
	var c managerCount
	for _, m := range members {
		if m.Role != RoleManager {
			continue
		}
		c.managers++
		if m.Reachable {
			c.reachable++
		}
		if leaving[m.ID] {
			c.names = append(c.names, m.Hostname)
			if m.Reachable {
				c.goReach++
			}
		}
	}
	return c
}

func countWarning(managers int) string {
	if managers == 2 {
		return "2 managers tolerate no loss: if either fails the swarm stops taking changes; 3 managers tolerate one"
	}
	if managers > 2 && managers%2 == 0 {
		return fmt.Sprintf("%d managers tolerate no more failures than %d", managers, managers-1)
	}
	return ""
}

// Stale lists the swarm's node entries left behind by hosts that were
// replaced: entries that are not the current node of any wanted machine and
// carry a wanted machine's hostname, and are either not Ready or belong to
// a machine whose engine is in no swarm now (joining): the swarm may not
// have noticed yet that the old host is gone.
func Stale(members []Member, current map[string]string, hostnames, joining map[string]bool) []Member {
	cur := map[string]bool{}
	for _, id := range current {
		cur[id] = true
	}
	var out []Member
	for _, m := range members {
		if cur[m.ID] || !hostnames[m.Hostname] || (m.Ready && !joining[m.Hostname]) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// RoleChange is a promotion or demotion of one node.
type RoleChange struct {
	Name, NodeID string
	To           validate.Role
}

// RoleChanges lists the promotions and demotions that make the members'
// roles what want says, promotions first (so that a demotion never waits
// on a manager still to come).
func RoleChanges(want []Want, ids map[string]string, members []Member) []RoleChange {
	byID := map[string]Member{}
	for _, m := range members {
		byID[m.ID] = m
	}
	var promote, demote []RoleChange
	for _, w := range want {
		m, ok := byID[ids[w.Name]]
		if !ok || m.Role == w.Role || w.Role == "" {
			continue
		}
		rc := RoleChange{Name: w.Name, NodeID: m.ID, To: w.Role}
		if w.Role == RoleManager {
			promote = append(promote, rc)
		} else {
			demote = append(demote, rc)
		}
	}
	return append(promote, demote...)
}
