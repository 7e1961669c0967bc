package handler_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/debeziumcases"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
)

// pushData is a case's message as Debezium Server publishes it: compact
// JSON, or malformed text as is.
func pushData(c *debeziumcases.Case) []byte {
	if c.ValueText != nil {
		return []byte(*c.ValueText)
	}
	return compact(c.Message())
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
	cases := debeziumcases.Load(t, "../testdata/debezium")
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		rc := cases[name]
		t.Run(name, func(t *testing.T) {
			c, prefix := testredis.Shared(t)
			r := newRig(t, c, prefix, rc.Config)
			p := push{data: pushData(rc), id: "e2e-" + name, publishTime: publishTime, orderingKey: string(compact(rc.Key))}
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
