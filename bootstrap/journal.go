package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/shoal-dev/shoal/internal/fsutil"
)

// FileJournal is a RollJournal kept in a JSON file (removed when no node
// is left drained).
type FileJournal struct {
	mu   sync.Mutex
	path string
	// Was maps each node a roll left drained to the availability it had.
	Was map[string]string
}

// LoadJournal reads the journal at path (none there: an empty one).
func LoadJournal(path string) (*FileJournal, error) {
	j := &FileJournal{path: path, Was: map[string]string{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, err
	}
	var f struct {
		Was map[string]string `json:"drained"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Was != nil {
		j.Was = f.Was
	}
	return j, nil
}

func (j *FileJournal) save() error {
	if len(j.Was) == 0 {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	data, err := json.MarshalIndent(struct {
		Version int               `json:"version"`
		Was     map[string]string `json:"drained"`
	}{1, j.Was}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(j.path, append(data, '\n'), 0o600)
}

// Drained records the availability a node had before a roll drained it
// (the first record wins: a resumed roll keeps the original).
func (j *FileJournal) Drained(name, was string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.Was[name]; !ok {
		j.Was[name] = was
	}
	return j.save()
}

// Restored forgets a node made what it was again.
func (j *FileJournal) Restored(name string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.Was, name)
	return j.save()
}
