package debezium_test

import (
	"encoding/base64"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flatMeta is what the compact profile's ExtractNewRecordState appends to a
// row (add.fields=op,source.file,source.pos,source.row,source.ts_ms,db,table
// and delete.tombstone.handling.mode=rewrite).
func flatMeta(op, deleted string) string {
	return `"__op":"` + op + `","__source_file":"mysql-bin.000003","__source_pos":1546,"__source_row":0,` +
		`"__source_ts_ms":1714568645000,"__db":"shop","__table":"t","__deleted":"` + deleted + `"`
}

func mustConfig(t testing.TB, yaml string) *cdc.Config {
	t.Helper()
	cfg, err := cdc.ParseConfig([]byte(yaml))
	require.NoError(t, err)
	return cfg
}

// Issue 12 item 2: a flattened row whose columns look like a control record
// (heartbeat, schema change, transaction marker, change envelope, the
// JsonConverter envelope, a heartbeat's key) is still a row: the __
// metadata wins over column names, with and without a schema.
func TestFlattenedRowsImitatingControlRecords(t *testing.T) {
	d := debezium.NewDecoder(mustConfig(t, "tables:\n  shop.t:\n    key: [id]\n"))
	for name, cols := range map[string]string{
		"heartbeat":         `"ts_ms":5`,
		"schema change":     `"ddl":"CREATE TABLE x (a INT)","databaseName":"shop","tableChanges":"[]"`,
		"only ddl":          `"ddl":"DROP TABLE y"`,
		"only databaseName": `"databaseName":"shop"`,
		"transaction BEGIN": `"status":"BEGIN","event_count":null`,
		"transaction END":   `"status":"END","data_collections":"x"`,
		"envelope":          `"op":"c","source":"s","before":null,"after":"a"`,
		"converter":         `"schema":"x","payload":"y"`,
		"message columns":   `"message":"m","subscription":"s","status":"BEGIN","op":"d"`,
	} {
		t.Run(name, func(t *testing.T) {
			body := `{"id":7,` + cols + `,` + flatMeta("c", "false") + `}`
			ch, err := d.Decode([]byte(body), nil)
			require.NoError(t, err, body)
			assert.Equal(t, cdc.OpCreate, ch.Op, body)
			assert.Equal(t, "shop.t:7", ch.Key)
			assert.Equal(t, `{"id":7,`+cols+`}`, string(ch.Row))

			del := `{"id":7,` + cols + `,` + flatMeta("d", "true") + `}`
			ch, err = d.Decode([]byte(del), nil)
			require.NoError(t, err, del)
			assert.Equal(t, cdc.OpDelete, ch.Op, del)
			assert.Equal(t, "shop.t:7", ch.Key)
		})
	}
	// A heartbeat's key: a row keyed by a value that names ServerNameKey.
	ch, err := d.Decode([]byte(`{"id":7,`+flatMeta("u", "false")+`}`), []byte(`{"id":"io.debezium.connector.mysql.ServerNameKey"}`))
	require.NoError(t, err)
	assert.Equal(t, cdc.OpUpdate, ch.Op)

	// With a schema: a flattened row's struct with op and source columns.
	schema := `{"type":"struct","name":"dbserver1.shop.t.Value","optional":false,"fields":[` +
		`{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"op"},` +
		`{"type":"string","optional":true,"field":"source"},{"type":"string","optional":true,"field":"__op"},` +
		`{"type":"string","optional":true,"field":"__source_file"},{"type":"int64","optional":true,"field":"__source_pos"},` +
		`{"type":"int32","optional":true,"field":"__source_row"},{"type":"int64","optional":true,"field":"__source_ts_ms"},` +
		`{"type":"string","optional":true,"field":"__db"},{"type":"string","optional":true,"field":"__table"},` +
		`{"type":"string","optional":true,"field":"__deleted"}]}`
	ch, err = d.Decode([]byte(`{"schema":`+schema+`,"payload":{"id":7,"op":"c","source":"web",`+flatMeta("u", "false")+`}}`), nil)
	require.NoError(t, err)
	assert.Equal(t, cdc.OpUpdate, ch.Op)
	assert.Equal(t, `{"id":7,"op":"c","source":"web"}`, string(ch.Row))

	// The real control records, without __ members, are still recognised.
	for body, reason := range map[string]string{
		`{"ts_ms":5}`: "heartbeat",
		`{"source":{"server":"dbserver1"},"databaseName":"shop","ddl":"CREATE TABLE x (a INT)","tableChanges":[]}`: "schema-change",
		`{"status":"BEGIN","id":"571:53195829","event_count":null,"data_collections":null}`:                        "transaction",
	} {
		ch, err := d.Decode([]byte(body), nil)
		require.NoError(t, err, body)
		assert.Equal(t, reason, ch.Reason, body)
	}
}

// Issue 12 item 4: a DECIMAL declared in types: is read in the
// decimal.handling.mode the config names, never guessed: -29293.56 in
// DECIMAL(10,2) is unscaled 0xD34D34, whose base64 "0000" is also digits.
func TestDeclaredDecimalFollowsMode(t *testing.T) {
	unscaled := base64.StdEncoding.EncodeToString([]byte{0xD3, 0x4D, 0x34})
	require.Equal(t, "0000", unscaled)
	row := `{"id":1,"price":"` + unscaled + `",` + flatMeta("c", "false") + `}`
	types := "tables:\n  shop.t:\n    key: [id]\n    types:\n      price: decimal(10,2)\n"

	for _, cfg := range []string{types, "decimal_handling_mode: precise\n" + types} {
		ch, err := debezium.NewDecoder(mustConfig(t, cfg)).Decode([]byte(row), nil)
		require.NoError(t, err)
		assert.Equal(t, `{"id":1,"price":"-29293.56"}`, string(ch.Row), cfg)
	}
	str := debezium.NewDecoder(mustConfig(t, "decimal_handling_mode: string\n"+types))
	ch, err := str.Decode([]byte(row), nil)
	require.NoError(t, err)
	assert.Equal(t, `{"id":1,"price":"0.00"}`, string(ch.Row), "string mode: the text 0000")
	ch, err = str.Decode([]byte(`{"id":1,"price":"-29293.56",`+flatMeta("c", "false")+`}`), nil)
	require.NoError(t, err)
	assert.Equal(t, `{"id":1,"price":"-29293.56"}`, string(ch.Row))
	_, err = str.Decode([]byte(`{"id":1,"price":"BM4=",`+flatMeta("c", "false")+`}`), nil)
	assert.ErrorContains(t, err, "price", "string mode does not take base64")
	_, err = debezium.NewDecoder(mustConfig(t, types)).Decode([]byte(`{"id":1,"price":"12.30",`+flatMeta("c", "false")+`}`), nil)
	assert.ErrorContains(t, err, "price", "precise mode does not take text")

	// A number is unambiguous in every mode (double mode, decimal.format=numeric).
	for _, mode := range []string{"precise", "string", "double"} {
		ch, err := debezium.NewDecoder(mustConfig(t, "decimal_handling_mode: "+mode+"\n"+types)).
			Decode([]byte(`{"id":1,"price":-29293.56,`+flatMeta("c", "false")+`}`), nil)
		require.NoError(t, err, mode)
		assert.Equal(t, `{"id":1,"price":"-29293.56"}`, string(ch.Row), mode)
	}
	_, err = cdc.ParseConfig([]byte("decimal_handling_mode: exact\n"))
	assert.ErrorContains(t, err, "decimal_handling_mode")
}

// Issue 12 item 9: Debezium declares FLOAT(M,D) FLOAT64 and widens the
// float32 (BinlogValueConverters.convertFloat -> convertDouble); a column
// declared float is read back at 32 bits, as the database prints it.
func TestFloatMDNarrowedToColumnWidth(t *testing.T) {
	cfg := mustConfig(t, "tables:\n  shop.t:\n    key: [id]\n    types:\n      fl: float(10,2)\n")
	schema := `{"type":"struct","name":"dbserver1.shop.t.Value","optional":false,"fields":[` +
		`{"type":"int32","optional":false,"field":"id"},{"type":"double","optional":true,"field":"fl"},` +
		`{"type":"string","optional":true,"field":"__op"},{"type":"string","optional":true,"field":"__source_file"},` +
		`{"type":"int64","optional":true,"field":"__source_pos"},{"type":"int32","optional":true,"field":"__source_row"},` +
		`{"type":"int64","optional":true,"field":"__source_ts_ms"},{"type":"string","optional":true,"field":"__db"},` +
		`{"type":"string","optional":true,"field":"__table"},{"type":"string","optional":true,"field":"__deleted"}]}`
	payload := `{"id":1,"fl":10.220000267028809,` + flatMeta("c", "false") + `}`
	d := debezium.NewDecoder(cfg)
	for _, msg := range []string{`{"schema":` + schema + `,"payload":` + payload + `}`, payload} {
		ch, err := d.Decode([]byte(msg), nil)
		require.NoError(t, err)
		assert.Equal(t, `{"id":1,"fl":10.22}`, string(ch.Row), msg[:20])
	}
}

// With datatype.propagate.source.type=.+\.FLOAT the schema itself says a
// FLOAT64 field is a MySQL FLOAT: no registry or types: needed.
func TestFloatMDFromPropagatedSourceType(t *testing.T) {
	schema := `{"type":"struct","name":"dbserver1.shop.t.Value","optional":false,"fields":[` +
		`{"type":"int32","optional":false,"field":"id"},` +
		`{"type":"double","optional":true,"parameters":{"__debezium.source.column.type":"FLOAT","__debezium.source.column.length":"10",` +
		`"__debezium.source.column.scale":"2","__debezium.source.column.name":"fl"},"field":"fl"},` +
		`{"type":"double","optional":true,"parameters":{"__debezium.source.column.type":"DOUBLE"},"field":"db"},` +
		`{"type":"string","optional":true,"field":"__op"},{"type":"string","optional":true,"field":"__source_file"},` +
		`{"type":"int64","optional":true,"field":"__source_pos"},{"type":"string","optional":true,"field":"__db"},` +
		`{"type":"string","optional":true,"field":"__table"}]}`
	msg := `{"schema":` + schema + `,"payload":{"id":1,"fl":10.220000267028809,"db":10.220000267028809,` +
		`"__op":"c","__source_file":"mysql-bin.000003","__source_pos":4,"__db":"shop","__table":"t"}}`
	ch, err := debezium.NewDecoder(nil).Decode([]byte(msg), []byte(`{"id":1}`))
	require.NoError(t, err)
	assert.Equal(t, `{"id":1,"fl":10.22,"db":10.220000267028809}`, string(ch.Row))
}

// A flattened row names no Debezium server (the compact profile adds no
// source.name): it takes the config's server_name, so the checkpoint moves;
// a message that names its server keeps its own.
func TestFlattenedRowTakesConfiguredServerName(t *testing.T) {
	body := []byte(`{"id":7,` + flatMeta("c", "false") + `}`)
	ch, err := debezium.NewDecoder(mustConfig(t, "tables:\n  shop.t:\n    key: [id]\n")).Decode(body, nil)
	require.NoError(t, err)
	assert.Empty(t, ch.Server, "no name in the message or the config")

	d := debezium.NewDecoder(mustConfig(t, "server_name: dbserver1\ntables:\n  shop.t:\n    key: [id]\n"))
	ch, err = d.Decode(body, nil)
	require.NoError(t, err)
	assert.Equal(t, "dbserver1", ch.Server)

	named := []byte(`{"id":7,` + flatMeta("c", "false") + `,"__source_name":"other"}`)
	ch, err = d.Decode(named, nil)
	require.NoError(t, err)
	assert.Equal(t, "other", ch.Server, "the message's own name wins")
}
