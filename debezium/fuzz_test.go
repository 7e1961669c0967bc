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
	// Long-lived decoders, so schemas cached by earlier inputs meet later ones.
	decoders := []*debezium.Decoder{debezium.NewDecoder(nil), debezium.NewDecoder(cfg)}
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
			if ch.Op.IsUpsert() && ch.Row == nil {
				t.Fatalf("%c change without row", ch.Op)
			}
		}
	})
}
