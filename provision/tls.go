package provision

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/templates"
)

type tlsStep struct{}

func (tlsStep) Name() StepName { return StepTLS }

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// tlsFile is one PEM file of the daemon's TLS material.
type tlsFile struct {
	name string
	data []byte
}

// files lists the PEM files in a fixed order, so that a run's commands are
// always the same.
func (tlsStep) files(h *Host) []tlsFile {
	t := h.Spec.TLS
	return []tlsFile{{"ca.pem", t.CA}, {"server.pem", t.Cert}, {"server-key.pem", t.Key}}
}

// dropIn is the systemd drop-in (templates/dockerd) that adds the TLS socket
// to the command line dockerd runs with now (carriedExecStart); settings
// stay in daemon.json, so the two never clash.
func (tlsStep) dropIn(h *Host) (string, error) {
	orig := carriedExecStart(h.Facts.Section("unit"))
	if orig == "" {
		return "", fmt.Errorf("cannot read docker.service's ExecStart (systemctl cat docker.service)")
	}
	if !strings.Contains(orig, "-H ") && !strings.Contains(orig, "--host") {
		orig += " -H unix:///var/run/docker.sock"
	}
	port := h.Spec.TLS.Port
	port = cmp.Or(port, 2376)
	return templates.DockerdTLSDropIn(templates.DockerdTLS{ExecStart: orig, Port: port, TLSDir: tlsDir})
}

// carriedExecStart is the command line dockerd is started with as the unit
// and its drop-ins say (shoal's own drop-in left out), without the TCP
// sockets and TLS flags shoal sets itself. Another tool's drop-in (docker-
// machine's 10-machine.conf: --storage-driver, --label, its engine options,
// -H unix://) is carried: dropping it would change the storage driver,
// which hides every image and container, and move the local socket.
func carriedExecStart(systemctlCat string) string {
	exec := execStart(systemctlCat, true, false)
	if exec == "" {
		return ""
	}
	words := strings.Fields(exec)
	out := words[:1:1]
	for i := 1; i < len(words); i++ {
		drop, value := shoalFlag(words, i)
		if !drop {
			out = append(out, words[i])
		}
		i += value
	}
	return strings.Join(out, " ")
}

// shoalFlag tells whether words[i] is a flag shoal sets itself (a TCP -H,
// the TLS flags), and how many words after it are its value (dropped
// with it).
func shoalFlag(words []string, i int) (drop bool, value int) {
	name, val, hasVal := strings.Cut(words[i], "=")
	switch name {
	case "-H", "--host":
		if !hasVal && i+1 < len(words) {
			if strings.HasPrefix(words[i+1], "tcp://") {
				return true, 1
			}
			return false, 0
		}
		return strings.HasPrefix(val, "tcp://"), 0
	case "--tls", "--tlsverify":
		return true, 0
	case "--tlscacert", "--tlscert", "--tlskey":
		if !hasVal {
			return true, 1
		}
		return true, 0
	}
	return false, 0
}

// socketMoves says whether dockerd's local socket goes from a path it
// binds itself (-H unix://..., or no -H: its default) to the one systemd's
// docker.socket hands it (-H fd://). The old dockerd unlinks the path when
// it stops, and docker.socket's listener would be gone from it: the socket
// unit must be restarted between the two.
func socketMoves(running, next string) bool {
	runUnix, runFD := localSockets(running)
	_, nextFD := localSockets(next)
	return runUnix && !runFD && nextFD
}

// localSockets tells whether the dockerd command line exec binds a unix
// socket itself (-H unix://, or no -H at all) and takes systemd's (fd://).
func localSockets(exec string) (unix, fd bool) {
	words := strings.Fields(exec)
	given := false
	for i, w := range words {
		name, val, hasVal := strings.Cut(w, "=")
		if name != "-H" && name != "--host" {
			continue
		}
		if !hasVal && i+1 < len(words) {
			val = words[i+1]
		}
		given = true
		unix = unix || strings.HasPrefix(val, "unix://")
		fd = fd || strings.HasPrefix(val, "fd://")
	}
	return unix || (!given && exec != ""), fd
}

// mainExecStart returns the ExecStart of the unit file itself, not of a
// drop-in, on one line: CentOS 7's own docker.service spreads it over many
// with trailing backslashes.
func mainExecStart(systemctlCat string) string {
	return execStart(systemctlCat, false, false)
}

// execStart returns the unit's ExecStart on one line; with dropIns, the one
// systemd runs: the last one set, a drop-in's empty ExecStart= clearing
// what came before. shoal's own drop-in is read only with ours.
func execStart(systemctlCat string, dropIns, ours bool) string {
	exec := ""
	lines := strings.Split(systemctlCat, "\n")
	skip := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if i > 0 && strings.HasPrefix(l, "# /") {
			if !dropIns {
				break // a drop-in starts here
			}
			skip = !ours && strings.TrimSpace(l) == "# "+dropInPath
			continue
		}
		v, ok := strings.CutPrefix(strings.TrimSpace(l), "ExecStart=")
		if !ok || skip {
			continue
		}
		exec, i = joinContinued(lines, i, v) // ExecStart= (empty) clears
	}
	return exec
}

// joinContinued joins v, the value on lines[i], with the lines its
// trailing backslashes continue it on; it returns the index of its last
// line.
func joinContinued(lines []string, i int, v string) (string, int) {
	words := []string{}
	for {
		v = strings.TrimSpace(v)
		cont := strings.HasSuffix(v, "\\")
		if w := strings.TrimSpace(strings.TrimSuffix(v, "\\")); w != "" {
			words = append(words, w)
		}
		if !cont || i+1 >= len(lines) {
			return strings.Join(words, " "), i
		}
		i++
		v = lines[i]
	}
}

func (s tlsStep) Check(_ context.Context, h *Host) (bool, error) {
	if h.Spec.TLS == nil {
		return false, nil
	}
	if keys := daemonTLSConflicts([]byte(h.Facts.sections["daemon-json"])); len(keys) > 0 {
		return false, fmt.Errorf("/etc/docker/daemon.json sets %s, which shoal sets on dockerd's command line for TLS: remove them from daemon.json or use --engine-tls=false", strings.Join(keys, ", "))
	}
	if s.filesChanged(h) {
		return true, nil
	}
	want, err := s.dropIn(h)
	if err != nil {
		// Docker is not installed yet (plan before install): it will change.
		return h.Facts.DockerVersion() == "", nil
	}
	return h.Facts.sections["dropin"] != want, nil
}

// filesChanged tells whether a TLS file on the host is not the one wanted
// (the facts hold their sums).
func (s tlsStep) filesChanged(h *Host) bool {
	have := parseSums(h.Facts.Section("tls"))
	for _, f := range s.files(h) {
		if have[f.name] != sha(f.data) {
			return true
		}
	}
	return false
}

func (s tlsStep) Apply(ctx context.Context, h *Host) error {
	dropIn, err := s.dropIn(h)
	if err != nil {
		return err
	}
	// The directories are made in the files' own round trip (DirMode).
	var files []sshrun.File
	for _, f := range s.files(h) {
		mode := 0o644
		if strings.HasSuffix(f.name, "-key.pem") {
			mode = 0o600
		}
		files = append(files, sshrun.File{Path: tlsDir + "/" + f.name, Data: f.data, Mode: fsMode(mode), DirMode: 0o755})
	}
	if h.Facts.sections["dropin"] != dropIn {
		files = append(files, sshrun.File{Path: dropInPath, Data: []byte(dropIn), Mode: 0o644, DirMode: 0o755})
		h.reload = true
		unit := h.Facts.Section("unit")
		h.restartSocket = socketMoves(execStart(unit, true, true), carriedExecStart(unit))
	}
	if err := writeFiles(ctx, h.R, files); err != nil {
		return err
	}
	h.restart = true
	return nil
}
