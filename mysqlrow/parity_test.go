package mysqlrow_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

// dbzField is one column as the Debezium MySQL connector describes it (its
// field schema, without "field") and the payload values of typesInsert's
// rows 1 and 2 (row 3 is all NULL), in Debezium's documented default
// encodings with decimal.handling.mode=precise,
// bigint.unsigned.handling.mode=precise, binary.handling.mode=bytes and
// time.precision.mode=adaptive_time_microseconds.
type dbzField struct {
	name   string
	schema string
	row1   string
	row2   string
}

func dbzFields() []dbzField {
	day := func(s string) string {
		t, _ := time.Parse("2006-01-02", s)
		return strconv.FormatInt(t.Unix()/86400-boolInt(t.Unix()%86400 < 0), 10)
	}
	ms := func(s string) string {
		t, _ := time.Parse("2006-01-02 15:04:05.999999", s)
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	us := func(s string) string {
		t, _ := time.Parse("2006-01-02 15:04:05.999999", s)
		return strconv.FormatInt(t.UnixMicro(), 10)
	}
	decimal := func(unscaled string) string { // Kafka Connect Decimal: big-endian two's complement
		n, _ := new(big.Int).SetString(unscaled, 10)
		return quote(base64.StdEncoding.EncodeToString(twosComplement(n)))
	}
	b64 := func(b ...byte) string { return quote(base64.StdEncoding.EncodeToString(b)) }
	f64le := func(f float64) []byte { return binary.LittleEndian.AppendUint64(nil, math.Float64bits(f)) }
	point := append([]byte{1, 1, 0, 0, 0}, append(f64le(1), f64le(2)...)...)
	line := append([]byte{1, 2, 0, 0, 0, 2, 0, 0, 0}, append(append(f64le(0), f64le(0)...), append(f64le(1.5), f64le(-2)...)...)...)
	geo := func(wkb []byte, srid int) string {
		return `{"wkb":` + b64(wkb...) + `,"srid":` + strconv.Itoa(srid) + `}`
	}
	const (
		geomSchema = `"type":"struct","fields":[{"type":"bytes","optional":false,"field":"wkb"},{"type":"int32","optional":true,"field":"srid"}],"optional":true,"name":"io.debezium.data.geometry.Geometry","version":1,"doc":"Geometry"`
	)
	dec := func(scale, precision int) string {
		return `"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"` +
			strconv.Itoa(scale) + `","connect.decimal.precision":"` + strconv.Itoa(precision) + `"}`
	}
	named := func(typ, name string) string {
		return `"type":"` + typ + `","optional":true,"name":"` + name + `","version":1`
	}
	plain := func(typ string) string { return `"type":"` + typ + `","optional":true` }
	return []dbzField{
		{"id", `"type":"int32","optional":false`, "1", "2"},
		{"ti", plain("int16"), "127", "-128"},
		{"tiu", plain("int16"), "255", "0"},
		{"si", plain("int16"), "32767", "-32768"},
		{"siu", plain("int32"), "65535", "0"},
		{"mi", plain("int32"), "8388607", "-8388608"},
		{"miu", plain("int32"), "16777215", "0"},
		{"i", plain("int32"), "2147483647", "-2147483648"},
		{"iu", plain("int64"), "4294967295", "0"},
		{"bi", plain("int64"), "9223372036854775807", "-9223372036854775808"},
		{"biu", dec(0, 20), decimal("18446744073709551615"), decimal("0")},
		{"yr", named("int32", "io.debezium.time.Year"), "2024", "1901"},
		{"bo", plain("int16"), "1", "0"},
		{"de", dec(4, 12), decimal("123456789000"), decimal("-500")},
		{"fl", plain("float"), "1.2345678", "-1.23E-4"},
		{"db", plain("double"), "0.1", "-1.7976931348623157E308"},
		{"ch", plain("string"), `"abc"`, `""`},
		{"vc", plain("string"), `"héllo wörld ✓ 日本語 🙂 \"q\" \\ <>&"`, `"\u00fc"`},
		{"tx", plain("string"), `"line1\nline2\ttab"`, `""`},
		{"en", `"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"a,b,c"}`, `"b"`, `"a"`},
		{"st", `"type":"string","optional":true,"name":"io.debezium.data.EnumSet","version":1,"parameters":{"allowed":"x,y,z"}`, `"x,z"`, `""`},
		{"dt", named("int32", "io.debezium.time.Date"), day("2024-05-01"), day("1969-12-31")},
		{"dtm", named("int64", "io.debezium.time.Timestamp"), ms("2024-05-01 13:04:05"), ms("1900-01-01 00:00:00")},
		{"dtm3", named("int64", "io.debezium.time.Timestamp"), ms("2024-05-01 13:04:05.120"), ms("1999-12-31 23:59:59.999")},
		{"dtm6", named("int64", "io.debezium.time.MicroTimestamp"), us("2024-05-01 13:04:05.123456"), us("2000-01-01 00:00:00.000001")},
		{"ts", named("string", "io.debezium.time.ZonedTimestamp"), `"2024-05-01T13:04:05.500000Z"`, `"1970-01-01T00:00:01.000000Z"`},
		{"tm", named("int64", "io.debezium.time.MicroTime"), strconv.FormatInt((838*3600+59*60+59)*1e6, 10), strconv.FormatInt(-(838*3600+59*60+59)*1e6, 10)},
		{"tm6", named("int64", "io.debezium.time.MicroTime"), strconv.FormatInt(-((12*3600+34*60+56)*1e6 + 789), 10), "500000"},
		{"bn", plain("bytes"), b64(1, 2, 3, 0), b64(0, 0, 0, 0)},
		{"vb", plain("bytes"), b64(0xDE, 0xAD, 0xBE, 0xEF), b64()},
		{"bl", plain("bytes"), b64(0, 0xFF, 0x10), b64()},
		{"b1", plain("boolean"), "true", "false"},
		{"b10", `"type":"bytes","optional":true,"name":"io.debezium.data.Bits","version":1,"parameters":{"length":"10"}`, b64(0x01, 0x02), b64(0, 0)},
		{"b64", `"type":"bytes","optional":true,"name":"io.debezium.data.Bits","version":1,"parameters":{"length":"64"}`,
			b64(0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF), b64(0, 0, 0, 0, 0, 0, 0, 0)},
		{"js", named("string", "io.debezium.data.Json"), quote(`{"b": 1,  "a": [1, 2.5, "x"], "n": null}`), quote(`[]`)},
		{"geo", geomSchema, geo(point, 4326), geo(line, 0)},
		// FLOAT(M,D): FLOAT64 in the schema, the float32 widened
		// (BinlogValueConverters.schemaBuilder, JdbcValueConverters.convertDouble).
		{"flmd", plain("double"), "10.220000267028809", "-0.05000000074505806"},
	}
}

// dbzRow is the payload of one row image: {"id":1,"ti":127,...}.
func dbzRow(fields []dbzField, row int) string {
	var payload strings.Builder
	for i, f := range fields {
		if i > 0 {
			payload.WriteString(",")
		}
		v := "null"
		switch row {
		case 1:
			v = f.row1
		case 2:
			v = f.row2
		}
		if f.name == "id" {
			v = strconv.Itoa(row)
		}
		payload.WriteString(`"` + f.name + `":` + v)
	}
	return "{" + payload.String() + "}"
}

// dbzSource is the source block of row's change.
func dbzSource(table string, row int) string {
	db, name, _ := strings.Cut(table, ".")
	return `{"version":"2.7.3.Final","connector":"mysql","name":"dbserver1","ts_ms":1714568645000,"snapshot":"false","db":"` + db +
		`","sequence":null,"table":"` + name + `","server_id":223344,"gtid":null,"file":"mysql-bin.000003","pos":` + strconv.Itoa(1000+row) +
		`,"row":0,"thread":7,"query":null}`
}

// dbzSchemaless is the change event with schemas.enable=false: the same
// values, no schema, and no key (Pub/Sub ordering off).
func dbzSchemaless(table string, fields []dbzField, row int) []byte {
	return []byte(`{"before":null,"after":` + dbzRow(fields, row) + `,"source":` + dbzSource(table, row) +
		`,"op":"c","ts_ms":1714568645123,"transaction":null}`)
}

// dbzFlattened is the compact profile's message: the row flattened by
// ExtractNewRecordState with its add.fields and delete rewriting, no schema,
// no key.
func dbzFlattened(table string, fields []dbzField, row int) []byte {
	db, name, _ := strings.Cut(table, ".")
	r := dbzRow(fields, row)
	return []byte(r[:len(r)-1] + `,"__op":"c","__source_file":"mysql-bin.000003","__source_pos":` + strconv.Itoa(1000+row) +
		`,"__source_row":0,"__source_ts_ms":1714568645000,"__ts_ms":1714568645123,"__db":"` + db + `","__table":"` + name +
		`","__deleted":"false"}`)
}

// dbzEvent builds a Debezium MySQL create event with the schema envelope,
// as Debezium Server's JSON converter writes it, and its key.
func dbzEvent(table string, fields []dbzField, row int) (value, key []byte) {
	var schema strings.Builder
	for i, f := range fields {
		if i > 0 {
			schema.WriteString(",")
		}
		schema.WriteString("{" + f.schema + `,"field":"` + f.name + `"}`)
	}
	valueName := "dbserver1." + table + ".Value"
	rowSchema := `{"type":"struct","fields":[` + schema.String() + `],"optional":true,"name":"` + valueName + `"`
	source := dbzSource(table, row)
	sourceSchema := `{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},` +
		`{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},` +
		`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"},` +
		`{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"string","optional":true,"field":"table"},` +
		`{"type":"int64","optional":false,"field":"server_id"},{"type":"string","optional":true,"field":"gtid"},{"type":"string","optional":false,"field":"file"},` +
		`{"type":"int64","optional":false,"field":"pos"},{"type":"int32","optional":false,"field":"row"},{"type":"int64","optional":true,"field":"thread"},` +
		`{"type":"string","optional":true,"field":"query"}],"optional":false,"name":"io.debezium.connector.mysql.Source","field":"source"}`
	value = []byte(`{"schema":{"type":"struct","fields":[` +
		rowSchema + `,"field":"before"},` + rowSchema + `,"field":"after"},` + sourceSchema + `,` +
		`{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},` +
		`{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},` +
		`{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}],` +
		`"optional":false,"name":"dbserver1.` + table + `.Envelope","version":1},` +
		`"payload":{"before":null,"after":` + dbzRow(fields, row) + `,"source":` + source + `,"op":"c","ts_ms":1714568645123,"transaction":null}}`)
	key = []byte(`{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"dbserver1.` +
		table + `.Key"},"payload":{"id":` + strconv.Itoa(row) + `}}`)
	return value, key
}

// TestParityWithDebezium is the contract of the design's canonical row JSON:
// the same row read from the database and decoded from the Debezium event
// that inserted it gives byte-identical JSON and the same Redis key, in each
// form the function receives: the schema envelope, the schemaless envelope
// and the compact (flattened) row, the last two typed and keyed by the
// column registry read from the same database.
func TestParityWithDebezium(t *testing.T) {
	db := openDB(t)
	name := createTable(t, db, "mysqlrow_parity", typesDDL)
	exec(t, db, strings.ReplaceAll(typesInsert, "%s", "`test`.`"+name+"`"))
	table := "test." + name
	cfg := cdc.DefaultConfig()
	r := mysqlrow.NewReader(db, cfg)
	entries, err := schema.Read(context.Background(), db, []string{table}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg := &cdc.Registry{Tables: entries}
	fields := dbzFields()
	forms := []struct {
		name  string
		event func(row int) (value, key []byte)
	}{
		{"schema envelope", func(row int) ([]byte, []byte) { return dbzEvent(table, fields, row) }},
		{"schemaless with the registry", func(row int) ([]byte, []byte) { return dbzSchemaless(table, fields, row), nil }},
		{"flattened with the registry", func(row int) ([]byte, []byte) { return dbzFlattened(table, fields, row), nil }},
	}
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) {
			dec := debezium.NewDecoder(cfg)
			dec.SetRegistry(reg) // as the function runs: the registry loaded whatever the format
			for row := 1; row <= 3; row++ {
				value, key := form.event(row)
				if !json.Valid(value) || key != nil && !json.Valid(key) {
					t.Fatalf("row %d: the hand-built event is not JSON", row)
				}
				ch, err := dec.Decode(value, key)
				if err != nil {
					t.Fatalf("row %d: decode: %v", row, err)
				}
				got, err := r.Row(context.Background(), table, row)
				if err != nil {
					t.Fatalf("row %d: %v", row, err)
				}
				if !bytes.Equal(ch.Row, got.JSON) {
					t.Errorf("row %d differs:\n debezium %s\n database %s\n first difference at byte %d", row, ch.Row, got.JSON, firstDiff(ch.Row, got.JSON))
				}
				if ch.Key != got.Key {
					t.Errorf("row %d: key %q from debezium, %q from the database", row, ch.Key, got.Key)
				}
				if ch.Untyped {
					t.Errorf("row %d: untyped", row)
				}
				if string(got.JSON) != typesWant[row] {
					t.Errorf("row %d: database JSON drifted from typesWant", row)
				}
			}
		})
	}

	// Without the registry or types:, a schema envelope cannot tell FLOAT(M,D)
	// from DOUBLE: that column, and only it, keeps the widened text.
	value, key := dbzEvent(table, fields, 1)
	ch, err := debezium.NewDecoder(cfg).Decode(value, key)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(typesWant[1], `"flmd":10.22`, `"flmd":10.220000267028809`, 1); string(ch.Row) != want {
		t.Errorf("schema envelope without the registry:\n got %s\nwant %s", ch.Row, want)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // as Jackson writes strings
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// twosComplement is n as minimal big-endian two's complement bytes.
func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// 2^(8k) + n for the smallest k with -2^(8k-1) <= n.
	k := (new(big.Int).Sub(new(big.Int).Neg(n), big.NewInt(1)).BitLen() + 8) / 8
	m := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), uint(8*k)), n)
	b := m.Bytes()
	for len(b) < k {
		b = append([]byte{0xFF}, b...)
	}
	return b
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
