package handler_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// recorded is one file of testdata/debezium (written with the decoder): a
// message, an optional cache config, and the change or error it decodes to.
type recorded struct {
	Value     json.RawMessage `json:"value"`
	ValueText *string         `json:"value_text"`
	Key       json.RawMessage `json:"key"`
	Config    string          `json:"config"`
	Want      *struct {
		Op      string          `json:"op"`
		Table   string          `json:"table"`
		Key     string          `json:"key"`
		Row     json.RawMessage `json:"row"`
		Version string          `json:"version"`
	} `json:"want"`
	WantError string `json:"want_error"`
}

func (rc *recorded) data() []byte {
	switch {
	case rc.ValueText != nil:
		return []byte(*rc.ValueText)
	case string(rc.Value) == "null":
		return nil
	}
	return compact(rc.Value)
}

func compact(raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// TestRecordedEventsEndToEnd pushes every recorded Debezium event through
// the HTTP handler (wrapped, the orderingKey carrying the Debezium key) into
// Redis and checks the record, or the parked message for bad events.
func TestRecordedEventsEndToEnd(t *testing.T) {
	files, err := filepath.Glob("../testdata/debezium/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "recorded events in testdata/debezium")
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			var rc recorded
			require.NoError(t, json.Unmarshal(raw, &rc))
			c, prefix := testredis.Shared(t)
			r := newRig(t, c, prefix, rc.Config)
			p := push{data: rc.data(), id: "e2e-" + name, publishTime: publishTime, orderingKey: string(compact(rc.Key))}
			require.Equal(t, http.StatusNoContent, r.pushWrapped(p))
			tot := r.h.Metrics().Total()

			if rc.WantError != "" {
				rej := r.rejected(t)
				require.Len(t, rej, 1)
				assert.Equal(t, string(p.data), rej[0].Values["payload"])
				assert.Contains(t, rej[0].Values["reason"], "decode: ")
				assert.Equal(t, uint64(1), tot.Outcomes[cdc.OutcomeRejected])
				return
			}
			w := rc.Want
			assert.Empty(t, r.rejected(t))
			rec := func() map[string]string {
				m, err := r.redis.HGetAll(t.Context(), r.prefix+w.Key).Result()
				require.NoError(t, err)
				return m
			}
			switch w.Op {
			case "c", "u", "r":
				assert.Equal(t, uint64(1), tot.Outcomes[cdc.OutcomeApplied])
				got := rec()
				assert.Equal(t, w.Version, got["v"])
				assert.Equal(t, string(compact(w.Row)), got["d"])
				assert.NotContains(t, got, "t")
			case "d":
				assert.Equal(t, uint64(1), tot.Outcomes[cdc.OutcomeDeleted])
				got := rec()
				assert.Equal(t, map[string]string{"v": w.Version, "t": "1"}, got)
			case "t":
				assert.Equal(t, uint64(1), tot.Outcomes[cdc.OutcomeApplied], "a truncate is applied (started)")
			case "i":
				assert.Equal(t, uint64(1), tot.Outcomes[cdc.OutcomeIgnored])
				n, err := r.redis.Keys(t.Context(), r.prefix+"*.*:*").Result()
				require.NoError(t, err)
				assert.Empty(t, n, "an ignored message writes no record")
			default:
				t.Fatalf("unknown want.op %q", w.Op)
			}
		})
	}
}
