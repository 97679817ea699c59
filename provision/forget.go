package provision

import (
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
)

// EditFuncs are shell functions that take out of a file what shoal put in
// it. They match whole lines (trimmed as provisioning trims them) against
// values passed in the environment, never against patterns built from
// names, and rewrite a file in place (cat >) so that its owner, mode and
// bind mount stay. The temp file comes from mktemp, never a fixed path.
const EditFuncs = `strip() { # FILE BEGIN END: drop the lines from BEGIN to END
  [ -f "$1" ] || return 0
  t=$(mktemp) || return 1
  if B="$2" E="$3" awk '{ l = $0; gsub(/^[ \t]+|[ \t\r]+$/, "", l) } !s && l == ENVIRON["B"] { s = 1; next } s && l == ENVIRON["E"] { s = 0; next } !s' "$1" > "$t" && cat "$t" > "$1"; then rm -f "$t"; else rm -f "$t"; return 1; fi
}
dropkeys() { # FILE SUFFIX: drop the lines that end in SUFFIX
  [ -f "$1" ] || return 0
  t=$(mktemp) || return 1
  if K="$2" awk '{ l = $0; sub(/[ \t\r]+$/, "", l); k = ENVIRON["K"] } length(l) < length(k) || substr(l, length(l) - length(k) + 1) != k' "$1" > "$t" && cat "$t" > "$1"; then rm -f "$t"; else rm -f "$t"; return 1; fi
}
`

// ForgetMesh is the shell (with EditFuncs) that takes a cluster's SSH mesh
// off a host: the docker user's copy of the cluster key, the cluster's
// ssh_config and known_hosts blocks, the cluster key's authorized_keys
// entries. A docker user that no longer exists has no ~/.ssh to clean.
// The names are those cluster.peerFiles writes.
func ForgetMesh(dockerUser, cluster string) []string {
	u := shell.Quote(dockerUser)
	begin, end := shell.Quote("# BEGIN shoal cluster "+cluster), shell.Quote("# END shoal cluster "+cluster)
	return []string{
		`if pw=$(getent passwd ` + u + `) && h=$(printf '%s\n' "$pw" | cut -d: -f6) && [ -n "$h" ]; then`,
		`  rm -f "$h/.ssh/"` + shell.Quote("shoal-"+cluster),
		`  strip "$h/.ssh/config" ` + begin + " " + end,
		`  strip "$h/.ssh/known_hosts" ` + begin + " " + end,
		`  dropkeys "$h/.ssh/authorized_keys" ` + shell.Quote(" shoal-cluster-"+cluster),
		"fi",
	}
}

// ForgetScript is the root script run on a host shoal forgets (and does
// not delete): the boot unit that would put back shoal's hostname and
// /etc/hosts block at every boot goes, and with a cluster, the cluster's
// SSH mesh. set -e: a step that fails stops the script with its status.
func ForgetScript(dockerUser, cluster string) string {
	lines := []string{"set -e", EditFuncs, PersistUndo(), "systemctl daemon-reload >/dev/null 2>&1 || true"}
	if cluster != "" {
		lines = append(lines, ForgetMesh(dockerUser, cluster)...)
	}
	return strings.Join(lines, "\n")
}
