package debezium_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// benchEvent returns the 18-column orders update, compact, with and without
// the schema envelope (as Debezium Server publishes it either way).
func benchEvent(b *testing.B) (withSchema, noSchema, key []byte) {
	tc := loadCases(b)["bench-orders-update"]
	var env struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(tc.Value, &env); err != nil {
		b.Fatal(err)
	}
	compact := func(raw []byte) []byte {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			b.Fatal(err)
		}
		return buf.Bytes()
	}
	return compact(tc.Value), compact(env.Payload), compact(tc.Key)
}

func benchDecode(b *testing.B, value, key []byte) {
	d := debezium.NewDecoder(nil)
	if _, err := d.Decode(value, key); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.Decode(value, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSchema(b *testing.B) {
	value, _, key := benchEvent(b)
	benchDecode(b, value, key)
}

func BenchmarkDecodeNoSchema(b *testing.B) {
	_, value, key := benchEvent(b)
	benchDecode(b, value, key)
}
