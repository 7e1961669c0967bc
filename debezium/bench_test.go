package debezium_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
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

// ordersRegistry types the bench table as `cachectl schema sync` would.
func ordersRegistry(b *testing.B) *cdc.Registry {
	return registryOf(b, "shop.orders", []string{"id"}, "id", "bigint(20)", "customer_id", "int(11)",
		"status", "enum('new','paid','shipped')", "total", "decimal(12,2)", "currency", "char(3)", "created_at", "datetime(3)",
		"updated_at", "datetime(6)", "paid_at", "timestamp(1)", "notes", "text", "qty", "smallint(6)", "weight", "float",
		"discount", "double", "is_gift", "tinyint(1)", "attrs", "json", "sku", "varchar(32)", "ship_date", "date",
		"eta", "time(6)", "token", "varbinary(24)")
}

// BenchmarkDecodeSchemaRegistry is the schema envelope with the registry
// loaded, as the function runs once a registry exists: the cost of
// consulting it for every column.
func BenchmarkDecodeSchemaRegistry(b *testing.B) {
	value, _, key := benchEvent(b)
	benchDecodeWith(b, ordersRegistry(b), value, key)
}

// BenchmarkDecodeCompact is the same change as the compact profile sends
// it: the flattened row, typed and keyed by the registry, no key.
func BenchmarkDecodeCompact(b *testing.B) {
	_, value, _ := benchEvent(b)
	var env struct {
		After json.RawMessage `json:"after"`
	}
	if err := json.Unmarshal(value, &env); err != nil {
		b.Fatal(err)
	}
	row := string(env.After[:len(env.After)-1]) + `,"__op":"u","__source_file":"mysql-bin.000003","__source_pos":123456789,` +
		`"__source_row":0,"__source_ts_ms":1714568645000,"__db":"shop","__table":"orders","__ts_ms":1714568645123,"__deleted":"false"}`
	benchDecodeWith(b, ordersRegistry(b), []byte(row), nil)
}

func benchDecodeWith(b *testing.B, reg *cdc.Registry, value, key []byte) {
	d := debezium.NewDecoder(nil)
	d.SetRegistry(reg)
	ch, err := d.Decode(value, key)
	if err != nil || ch.Untyped {
		b.Fatal(err, ch.Untyped)
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
