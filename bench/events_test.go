package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/pushtest"
)

type event struct {
	Before map[string]any `json:"before"`
	After  map[string]any `json:"after"`
	Source struct {
		DB    string `json:"db"`
		Table string `json:"table"`
		File  string `json:"file"`
		Pos   uint64 `json:"pos"`
	} `json:"source"`
	Op string `json:"op"`
}

// decodeBody decodes a push body; a schema-enveloped event's schema must
// describe before and after with cols columns.
func decodeBody(t *testing.T, body []byte, schema bool, cols int) (pushtest.Envelope, event, []byte) {
	t.Helper()
	var env pushtest.Envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Message == nil {
		t.Fatalf("envelope: %v", err)
	}
	data := env.Message.Data
	var ev event
	if schema {
		var wrapped struct {
			Schema struct {
				Fields []struct {
					Field  string `json:"field"`
					Fields []struct {
						Field string `json:"field"`
					} `json:"fields"`
				} `json:"fields"`
			} `json:"schema"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(data, &wrapped); err != nil {
			t.Fatalf("schema event: %v", err)
		}
		if f := wrapped.Schema.Fields; len(f) < 3 || f[0].Field != "before" || f[1].Field != "after" || len(f[1].Fields) != cols {
			t.Fatalf("schema block does not describe before/after with %d columns", cols)
		}
		if err := json.Unmarshal(wrapped.Payload, &ev); err != nil {
			t.Fatalf("payload: %v", err)
		}
	} else if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("event: %v", err)
	}
	return env, ev, data
}

func TestGeneratorEvents(t *testing.T) {
	clock := func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }
	tables := []struct {
		table   string // "" is the default
		cols    int
		firstID int
		// bounds of the mean data bytes of 5 creates and 7 updates
		schemaMin, schemaMax, plainMax int
	}{
		// The headline: about 3 KB with the schema, as the issue asks.
		{"", 4, 1001, 2000, 3500, 1000},
		{"orders", 18, 1, 5000, 9000, 2000},
	}
	for _, tc := range tables {
		for _, schema := range []bool{true, false} {
			opts := DefaultEventOptions(schema)
			opts.Keys, opts.Clock = 5, clock
			if tc.table != "" {
				opts.Table = tc.table
			}
			g, err := NewGenerator(opts, 4000)
			if err != nil {
				t.Fatal(err)
			}
			var lastPos uint64
			var size int
			for i := range 12 {
				env, ev, data := decodeBody(t, g.Next(), schema, tc.cols)
				size += len(data)
				if env.DeliveryAttempt != 1 || env.Message.MessageID == "" || env.Message.PublishTime != "2026-11-25T12:00:00Z" ||
					env.Subscription != "projects/bench/subscriptions/bench.shop."+opts.Table || env.Message.Attributes == nil {
					t.Fatalf("envelope %+v", env)
				}
				wantID := float64(tc.firstID + i%5)
				if ev.After["id"] != wantID {
					t.Fatalf("%s event %d: id %v, want %v", opts.Table, i, ev.After["id"], wantID)
				}
				var key map[string]float64
				if err := json.Unmarshal([]byte(env.Message.OrderingKey), &key); err != nil || key["id"] != wantID {
					t.Fatalf("ordering key %q", env.Message.OrderingKey)
				}
				if len(ev.After) != tc.cols {
					t.Fatalf("%s: after has %d columns, want %d", opts.Table, len(ev.After), tc.cols)
				}
				wantOp := "c"
				if i >= 5 {
					wantOp = "u"
					if ev.Before == nil || ev.Before["id"] != wantID {
						t.Fatalf("update without the before image: %v", ev.Before)
					}
				} else if ev.Before != nil {
					t.Fatalf("create with a before image")
				}
				if ev.Op != wantOp || ev.Source.DB != "shop" || ev.Source.Table != opts.Table || ev.Source.File != "mysql-bin.000003" {
					t.Fatalf("event %d: op %q source %+v", i, ev.Op, ev.Source)
				}
				if i == 0 && ev.Source.Pos != 4000 || i > 0 && ev.Source.Pos <= lastPos {
					t.Fatalf("event %d: pos %d after %d", i, ev.Source.Pos, lastPos)
				}
				lastPos = ev.Source.Pos
			}
			if g.Pos() <= lastPos {
				t.Fatalf("Pos() = %d, not above the last event's %d", g.Pos(), lastPos)
			}
			t.Logf("%s schema=%v: %d bytes of data per event", opts.Table, schema, size/12)
			if schema && (size/12 < tc.schemaMin || size/12 > tc.schemaMax) || !schema && size/12 > tc.plainMax {
				t.Fatalf("%s schema=%v: %d bytes per event", opts.Table, schema, size/12)
			}
		}
	}
}

func TestNewGeneratorRejectsBadOptions(t *testing.T) {
	opts := DefaultEventOptions(true)
	opts.Keys = 0
	if _, err := NewGenerator(opts, 0); err == nil {
		t.Fatal("0 keys accepted")
	}
	opts = DefaultEventOptions(true)
	opts.Table = ""
	if _, err := NewGenerator(opts, 0); err == nil {
		t.Fatal("empty table accepted")
	}
	opts.Table = "no_such_table"
	if _, err := NewGenerator(opts, 0); err == nil {
		t.Fatal("a table changegen does not model accepted")
	}
}
