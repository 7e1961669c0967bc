// Package debeziumcases reads testdata/debezium, the recorded Debezium
// messages with the change (or error) each must decode to, for the tests of
// every package that decodes them.
package debeziumcases

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Case is one file of testdata/debezium: a message, the optional cache
// config, and the change (or error) it must decode to.
type Case struct {
	Value     json.RawMessage `json:"value"`
	ValueText *string         `json:"value_text"` // malformed input, as is
	Key       json.RawMessage `json:"key"`
	Config    string          `json:"config"` // cache config YAML; "" for the default
	Want      *Want           `json:"want"`
	WantError string          `json:"want_error"`
}

// Want is the change a case decodes to.
type Want struct {
	Op       string          `json:"op"`
	Table    string          `json:"table"`
	Key      string          `json:"key"`
	Row      json.RawMessage `json:"row"`
	Version  string          `json:"version"`
	Server   string          `json:"server"`
	ServerID int64           `json:"server_id"`
	CommitMs int64           `json:"commit_ms"`
	EventMs  int64           `json:"event_ms"`
	Snapshot bool            `json:"snapshot"`
	Reason   string          `json:"reason"`
}

// Message is the Kafka-style message value: the text as is for malformed
// input, nil for a tombstone (null).
func (c *Case) Message() []byte {
	if c.ValueText != nil {
		return []byte(*c.ValueText)
	}
	if string(c.Value) == "null" {
		return nil
	}
	return c.Value
}

// MessageKey is the message key (the Debezium key), nil when there is none.
func (c *Case) MessageKey() []byte {
	if len(c.Key) == 0 || string(c.Key) == "null" {
		return nil
	}
	return c.Key
}

// Load reads every case in dir by name (the file name without .json); it
// fails tb when there are none or one is malformed.
func Load(tb testing.TB, dir string) map[string]*Case {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no recorded Debezium messages in %s (%v)", dir, err)
	}
	cases := make(map[string]*Case, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		c := new(Case)
		if err := json.Unmarshal(data, c); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		if (c.Want == nil) == (c.WantError == "") {
			tb.Fatalf("%s: want exactly one of want and want_error", f)
		}
		cases[strings.TrimSuffix(filepath.Base(f), ".json")] = c
	}
	return cases
}
