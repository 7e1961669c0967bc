package localrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// State is what a local run tells the other cachectl commands about itself,
// through a small JSON file (StatePath): where its cache is, where its
// control endpoint answers, and, once it has ended, where it wrote the
// expected state. So `cachectl status` and `cachectl verify` find a running
// (or the last) pipeline without flags.
type State struct {
	// PID is the run's process.
	PID int `json:"pid"`
	// Cache is the run's cache: CacheRedis ("" too, as runs before
	// memcached wrote) or CacheMemcached. Redis or Memcache (the nodes) and
	// Prefix are where it is.
	Cache    string   `json:"cache,omitempty"`
	Redis    string   `json:"redis,omitempty"`
	Memcache []string `json:"memcache,omitempty"`
	Prefix   string   `json:"prefix"`
	// Control is the base URL of the run's control endpoint (/bridge for the
	// bridge's counters, /cut for a consistent cut); "" when not served.
	Control string `json:"control,omitempty"`
	// Kafka is the bootstrap address of the run's Kafka fake and KafkaGroup
	// its workers' consumer group (delivery kafka; the fake ends with the
	// run), for the offsets and lag `cachectl status` shows.
	Kafka      string `json:"kafka,omitempty"`
	KafkaGroup string `json:"kafka_group,omitempty"`
	// Started is when the run started; Ended when it stopped (zero while
	// it runs).
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	// Expected is the file with the generator's final state, set when the
	// run ended with nothing pending and wrote it.
	Expected string `json:"expected,omitempty"`
}

// Live reports whether the run is still running: it has not recorded its end
// and its process exists.
func (s State) Live() bool {
	if !s.Ended.IsZero() || s.PID <= 0 {
		return false
	}
	err := syscall.Kill(s.PID, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// StatePath is the state file of this user's local runs in dir (the
// temporary directory when dir is "").
func StatePath(dir string) string {
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "cloudsql-cache-run-"+strconv.Itoa(os.Getuid())+".json")
}

// WriteState replaces the state file atomically (write, then rename), so a
// reader never sees half a file.
func WriteState(path string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// ReadState reads the state file; ok is false when there is none.
func ReadState(path string) (s State, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, false, fmt.Errorf("state file %s: %w", path, err)
	}
	return s, true, nil
}
