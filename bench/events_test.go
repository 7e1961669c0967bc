package bench

import (
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"
)

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
		if f := wrapped.Schema.Fields; len(f) < 3 || f[0].Field != "before" || f[1].Field != "after" || len(f[1].Fields) != len(columns) {
			t.Fatalf("schema block does not describe before/after with %d columns", len(columns))
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
			if len(ev.After) != len(columns) {
				t.Fatalf("after has %d columns, want %d", len(ev.After), len(columns))
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
			if ev.Op != wantOp || ev.Source.DB != "shop" || ev.Source.Table != "orders" || ev.Source.File != binlogFile {
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

func TestDecimalBytes(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 123450, -1, -128, -129, 9999999} {
		s := string(appendDecimalBytes(nil, v))
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		// Two's complement big-endian, as Java's BigInteger.toByteArray.
		got := new(big.Int).SetBytes(raw)
		if len(raw) > 0 && raw[0]&0x80 != 0 {
			got.Sub(got, new(big.Int).Lsh(big.NewInt(1), uint(8*len(raw))))
		}
		if got.Int64() != v {
			t.Errorf("%d encodes as %q = %v", v, s, got)
		}
		if len(raw) > 1 && (raw[0] == 0 && raw[1]&0x80 == 0 || raw[0] == 0xff && raw[1]&0x80 != 0) {
			t.Errorf("%d: not minimal: % x", v, raw)
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
}
