package debezium_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// FuzzDecode feeds arbitrary values and keys to the decoder: it must never
// panic, every error must say something, and every change it returns must
// be well formed (valid row JSON, a full-width version, a key for rows).
func FuzzDecode(f *testing.F) {
	for _, tc := range loadCases(f) {
		f.Add(tc.Message(), tc.MessageKey())
		var compact bytes.Buffer
		if json.Compact(&compact, tc.Message()) == nil {
			f.Add(compact.Bytes(), tc.MessageKey()) // the form Debezium Server publishes
		}
	}
	cfg, err := cdc.ParseConfig([]byte("tables:\n  shop.everything:\n    types:\n      price: decimal(10,2)\n      dt: datetime(6)\n      ts: timestamp\n      t6: time(6)\n      bits: bit(16)\n      g: geometry\n      j: json\n"))
	if err != nil {
		f.Fatal(err)
	}
	// Compact rows, typed by the column registry (and a decimal mode other
	// than the default) rather than a schema.
	for _, row := range []string{
		`{"id":"AP//////////","at":1714568645120,"price":"BM4=","fl":10.220000267028809,` + flatMeta("c", "false") + `}`,
		`{"id":-1,"at":null,"price":-29293.56,"fl":1e-7,"b":"AgE=","t":-3020399000000,"j":"[1]","added":2,` + flatMeta("d", "true") + `}`,
		`{"id":7,"ddl":"x","status":"BEGIN","op":"c","source":{"a":1},` + flatMeta("u", "false") + `}`,
	} {
		f.Add([]byte(row), []byte(nil))
	}
	reg := registryOf(f, "shop.t", []string{"id"}, "id", "bigint(20) unsigned", "at", "datetime(3)", "price", "decimal(10,2)",
		"fl", "float(10,2)", "b", "bit(16)", "t", "time(6)", "j", "json", "ddl", "text", "status", "enum('BEGIN','END')", "op", "char(1)", "source", "json")
	compact := debezium.NewDecoder(nil)
	compact.SetRegistry(reg)
	textDecimals := debezium.NewDecoder(mustConfig(f, "decimal_handling_mode: string\n"))
	textDecimals.SetRegistry(reg)
	// Long-lived decoders, so schemas cached by earlier inputs meet later ones.
	decoders := []*debezium.Decoder{debezium.NewDecoder(nil), debezium.NewDecoder(cfg), compact, textDecimals}
	f.Fuzz(func(t *testing.T, value, key []byte) {
		for _, d := range decoders {
			ch, err := d.Decode(value, key)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("empty error")
				}
				continue
			}
			if ch.Row != nil && !json.Valid(ch.Row) {
				t.Fatalf("row is not valid JSON: %q", ch.Row)
			}
			if ch.Op == cdc.OpIgnore {
				continue
			}
			if len(ch.Version) != cdc.VersionLen {
				t.Fatalf("version %q", ch.Version)
			}
			if ch.Op != cdc.OpTruncate && ch.Key == "" {
				t.Fatalf("%c change without key", ch.Op)
			}
			if ch.Op.IsUpsert() && (ch.Row == nil) != ch.Untyped {
				t.Fatalf("%c change without row", ch.Op)
			}
		}
	})
}
