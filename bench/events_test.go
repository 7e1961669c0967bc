package bench

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// ordersColumns is the width of changegen's orders table.
const ordersColumns = 18

type pushEnvelope struct {
	Message struct {
		Data        string            `json:"data"`
		Attributes  map[string]string `json:"attributes"`
		MessageID   string            `json:"messageId"`
		PublishTime string            `json:"publishTime"`
		OrderingKey string            `json:"orderingKey"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int    `json:"deliveryAttempt"`
}

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

func decodeBody(t *testing.T, body []byte, schema bool) (pushEnvelope, event, []byte) {
	t.Helper()
	var env pushEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("envelope: %v", err)
	}
	data, err := base64.StdEncoding.DecodeString(env.Message.Data)
	if err != nil {
		t.Fatalf("data: %v", err)
	}
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
		if f := wrapped.Schema.Fields; len(f) < 3 || f[0].Field != "before" || f[1].Field != "after" || len(f[1].Fields) != ordersColumns {
			t.Fatalf("schema block does not describe before/after with %d columns", ordersColumns)
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
	for _, schema := range []bool{true, false} {
		opts := DefaultEventOptions(schema)
		opts.Keys, opts.Clock = 5, clock
		g, err := NewGenerator(opts, 4000)
		if err != nil {
			t.Fatal(err)
		}
		var lastPos uint64
		var size int
		for i := range 12 {
			env, ev, data := decodeBody(t, g.Next(), schema)
			size += len(data)
			if env.DeliveryAttempt != 1 || env.Message.MessageID == "" || env.Message.PublishTime != "2026-11-25T12:00:00Z" ||
				env.Subscription != "projects/bench/subscriptions/bench.shop.orders" || env.Message.Attributes == nil {
				t.Fatalf("envelope %+v", env)
			}
			wantID := float64(i%5 + 1)
			if ev.After["id"] != wantID {
				t.Fatalf("event %d: id %v, want %v", i, ev.After["id"], wantID)
			}
			var key map[string]float64
			if err := json.Unmarshal([]byte(env.Message.OrderingKey), &key); err != nil || key["id"] != wantID {
				t.Fatalf("ordering key %q", env.Message.OrderingKey)
			}
			if len(ev.After) != ordersColumns {
				t.Fatalf("after has %d columns, want %d", len(ev.After), ordersColumns)
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
			if ev.Op != wantOp || ev.Source.DB != "shop" || ev.Source.Table != "orders" || ev.Source.File != "mysql-bin.000003" {
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
		t.Logf("schema=%v: %d bytes of data per event", schema, size/12)
		if schema && size/12 < 2000 || !schema && size/12 > 2000 {
			t.Fatalf("schema=%v: %d bytes per event", schema, size/12)
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
