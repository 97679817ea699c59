package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/store"
)

// StateVersion is the version of state.json this code writes.
const StateVersion = 1

// State is clusters/NAME/state.json: what `cluster up` last converged.
type State struct {
	Version  int      `json:"version"`
	Name     string   `json:"name"`
	File     string   `json:"file"`
	Machines []string `json:"machines"`
	Leader   string   `json:"leader"`
	Registry string   `json:"registry,omitempty"`
	// ClusterID is the swarm's ID: a node of another swarm is never taken
	// for this one's, and this one is never initialised again.
	ClusterID string `json:"clusterID,omitempty"`
	// Stacks are the stacks shoal deployed: one that leaves the file is
	// removed (a stack deployed by hand is never touched).
	Stacks  []string  `json:"stacks,omitempty"`
	Updated time.Time `json:"updated"`
}

func stateFile(st *store.Store, name string) string {
	return st.Cluster(name).StatePath()
}

// LoadState reads a cluster's state.
func LoadState(st *store.Store, name string) (*State, error) {
	if err := store.ValidateName(name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(stateFile(st, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no cluster %q here (see 'cluster ls')", name)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("cluster %q: state.json: %w", name, err)
	}
	return &s, nil
}

func saveState(st *store.Store, s *State) error {
	s.Version = StateVersion
	s.Updated = time.Now().UTC()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(stateFile(st, s.Name), append(data, '\n'), 0o600)
}

// List returns the states of every cluster in the store.
func List(st *store.Store) ([]*State, error) {
	entries, err := os.ReadDir(filepath.Join(st.Root, "clusters"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a store opened read-only that was never written
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range entries {
		if s, err := LoadState(st, e.Name()); err == nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
