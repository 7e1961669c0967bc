package changegen

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// appendDebezium appends v as Debezium's JSON converter writes a column of
// type c with the settings of debezium-server/application.properties:
// decimal.handling.mode=precise, bigint.unsigned.handling.mode=precise,
// time.precision.mode=adaptive_time_microseconds, binary.handling.mode=bytes.
func appendDebezium(dst []byte, c *column, v any) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	switch c.typ {
	case tInt16:
		return strconv.AppendInt(dst, int64(v.(int16)), 10)
	case tInt32:
		return strconv.AppendInt(dst, int64(v.(int32)), 10)
	case tInt64:
		return strconv.AppendInt(dst, v.(int64), 10)
	case tUint64:
		return appendBase64(dst, twosComplement(new(big.Int).SetUint64(v.(uint64))))
	case tDecimal:
		return appendBase64(dst, twosComplement(big.NewInt(v.(int64))))
	case tFloat32:
		return appendJavaFloat(dst, float64(v.(float32)), 32)
	case tFloat64:
		return appendJavaFloat(dst, v.(float64), 64)
	case tString, tEnum, tSet, tJSON:
		return cdc.AppendString(dst, v.(string))
	case tDate:
		return strconv.AppendInt(dst, v.(int64), 10)
	case tDateTime3:
		return strconv.AppendInt(dst, v.(time.Time).UnixMilli(), 10)
	case tDateTime6:
		return strconv.AppendInt(dst, v.(time.Time).UnixMicro(), 10)
	case tTimestamp6:
		// ZonedTimestamp in UTC with the column's fractional digits.
		return cdc.AppendString(dst, v.(time.Time).UTC().Format("2006-01-02T15:04:05.000000Z"))
	case tTime6:
		return strconv.AppendInt(dst, v.(int64), 10)
	case tBlob:
		return appendBase64(dst, v.([]byte))
	case tBit1:
		return strconv.AppendBool(dst, v.(bool))
	case tBits:
		n := v.(uint64)
		le := make([]byte, (c.prec+7)/8)
		for i := range le {
			le[i] = byte(n >> (8 * i))
		}
		return appendBase64(dst, le)
	case tGeometry:
		g := v.(geometry)
		dst = append(dst, `{"wkb":`...)
		dst = appendBase64(dst, g.wkb)
		dst = append(dst, `,"srid":`...)
		dst = strconv.AppendInt(dst, int64(g.srid), 10)
		return append(dst, '}')
	}
	panic(fmt.Sprintf("changegen: no Debezium encoding for column %s", c.name))
}

// appendCanonical appends v as the design's canonical JSON, through the cdc
// encoders only, so expectations never depend on the decoder under test.
func appendCanonical(dst []byte, c *column, v any) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	switch c.typ {
	case tInt16:
		return cdc.AppendInt(dst, int64(v.(int16)))
	case tInt32:
		return cdc.AppendInt(dst, int64(v.(int32)))
	case tInt64:
		return cdc.AppendInt(dst, v.(int64))
	case tUint64:
		return cdc.AppendUint(dst, v.(uint64))
	case tDecimal:
		return cdc.AppendDecimal(dst, big.NewInt(v.(int64)), c.scale)
	case tFloat32:
		return cdc.AppendFloat(dst, float64(v.(float32)), 32)
	case tFloat64:
		return cdc.AppendFloat(dst, v.(float64), 64)
	case tString, tEnum, tSet:
		return cdc.AppendString(dst, v.(string))
	case tDate:
		return cdc.AppendDate(dst, v.(int64))
	case tDateTime3, tDateTime6:
		return cdc.AppendDateTime(dst, v.(time.Time))
	case tTimestamp6:
		return cdc.AppendTimestamp(dst, v.(time.Time))
	case tTime6:
		return cdc.AppendTime(dst, v.(int64))
	case tBlob:
		return cdc.AppendBytes(dst, v.([]byte))
	case tBit1:
		if v.(bool) {
			return cdc.AppendBits(dst, []byte{1})
		}
		return cdc.AppendBits(dst, []byte{0})
	case tBits:
		n := v.(uint64)
		return cdc.AppendBits(dst, []byte{byte(n >> 8), byte(n)})
	case tJSON:
		out, err := cdc.AppendJSON(dst, []byte(v.(string)))
		if err != nil {
			panic(fmt.Sprintf("changegen: model JSON %q: %v", v, err)) // the model writes valid JSON
		}
		return out
	case tGeometry:
		g := v.(geometry)
		return cdc.AppendGeometry(dst, g.wkb, int64(g.srid))
	}
	panic(fmt.Sprintf("changegen: no canonical encoding for column %s", c.name))
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// twosComplement returns n as Java's BigInteger.toByteArray does: the
// shortest big-endian two's complement, which is what Kafka Connect's
// Decimal logical type carries.
func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n = ^(n-1): take the magnitude minus one, invert its bytes.
	m := new(big.Int).Neg(n)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

// appendJavaFloat appends f as Java's Float.toString/Double.toString (which
// Jackson uses for Kafka's JSON converter) prints it: shortest round-trip
// digits, "1.0" style for whole numbers, and "1.0E10" / "1.5E-7" outside
// [1e-3, 1e7).
func appendJavaFloat(dst []byte, f float64, bits int) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	e := strconv.FormatFloat(f, 'e', -1, bits) // "-1.2345e+06"
	neg := e[0] == '-'
	if neg {
		e = e[1:]
		dst = append(dst, '-')
	}
	mant, exp := e, 0
	for i := 0; i < len(e); i++ {
		if e[i] == 'e' {
			mant = e[:i]
			exp, _ = strconv.Atoi(e[i+1:])
			break
		}
	}
	digits := mant[:1]
	if len(mant) > 2 {
		digits += mant[2:]
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		if exp >= 0 {
			intLen := exp + 1
			for len(digits) < intLen {
				digits += "0"
			}
			dst = append(dst, digits[:intLen]...)
			dst = append(dst, '.')
			if len(digits) == intLen {
				return append(dst, '0')
			}
			return append(dst, digits[intLen:]...)
		}
		dst = append(dst, "0."...)
		for i := 0; i < -exp-1; i++ {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[0], '.')
	if len(digits) == 1 {
		dst = append(dst, '0')
	} else {
		dst = append(dst, digits[1:]...)
	}
	dst = append(dst, 'E')
	return strconv.AppendInt(dst, int64(exp), 10)
}

// fieldSchema appends the Kafka Connect JSON schema of one column.
func fieldSchema(dst []byte, c *column) []byte {
	opt := "false"
	if c.optional {
		opt = "true"
	}
	typ, name, params := "", "", ""
	switch c.typ {
	case tInt16:
		typ = "int16"
	case tInt32:
		typ = "int32"
	case tInt64:
		typ = "int64"
	case tUint64, tDecimal:
		typ, name = "bytes", "org.apache.kafka.connect.data.Decimal"
		params = fmt.Sprintf(`{"scale":"%d","connect.decimal.precision":"%d"}`, c.scale, c.prec)
	case tFloat32:
		typ = "float"
	case tFloat64:
		typ = "double"
	case tString:
		typ = "string"
	case tEnum:
		typ, name, params = "string", "io.debezium.data.Enum", `{"allowed":"`+c.allowed+`"}`
	case tSet:
		typ, name, params = "string", "io.debezium.data.EnumSet", `{"allowed":"`+c.allowed+`"}`
	case tDate:
		typ, name = "int32", "io.debezium.time.Date"
	case tDateTime3:
		typ, name = "int64", "io.debezium.time.Timestamp"
	case tDateTime6:
		typ, name = "int64", "io.debezium.time.MicroTimestamp"
	case tTimestamp6:
		typ, name = "string", "io.debezium.time.ZonedTimestamp"
	case tTime6:
		typ, name = "int64", "io.debezium.time.MicroTime"
	case tBlob:
		typ = "bytes"
	case tBit1:
		typ = "boolean"
	case tBits:
		typ, name, params = "bytes", "io.debezium.data.Bits", fmt.Sprintf(`{"length":"%d"}`, c.prec)
	case tJSON:
		typ, name = "string", "io.debezium.data.Json"
	case tGeometry:
		dst = append(dst, `{"type":"struct","fields":[{"type":"bytes","optional":false,"field":"wkb"},`+
			`{"type":"int32","optional":true,"field":"srid"}],"optional":`...)
		dst = append(dst, opt...)
		dst = append(dst, `,"name":"io.debezium.data.geometry.Geometry","version":1,"doc":"Geometry","field":"`...)
		dst = append(dst, c.name...)
		return append(dst, `"}`...)
	}
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","optional":`...)
	dst = append(dst, opt...)
	if name != "" {
		dst = append(dst, `,"name":"`...)
		dst = append(dst, name...)
		dst = append(dst, `","version":1`...)
	}
	if params != "" {
		dst = append(dst, `,"parameters":`...)
		dst = append(dst, params...)
	}
	dst = append(dst, `,"field":"`...)
	dst = append(dst, c.name...)
	return append(dst, `"}`...)
}

// rowSchema appends the struct schema of a row image (before or after).
func rowSchema(dst []byte, cols []column, name, field string, optional bool) []byte {
	dst = append(dst, `{"type":"struct","fields":[`...)
	for i := range cols {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = fieldSchema(dst, &cols[i])
	}
	dst = append(dst, `],"optional":`...)
	dst = strconv.AppendBool(dst, optional)
	dst = append(dst, `,"name":"`...)
	dst = append(dst, name...)
	dst = append(dst, '"')
	if field != "" {
		dst = append(dst, `,"field":"`...)
		dst = append(dst, field...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// sourceSchema is the schema of the MySQL connector's source block
// (Debezium 2.x/3.x field order).
const sourceSchema = `{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"version"},` +
	`{"type":"string","optional":false,"field":"connector"},` +
	`{"type":"string","optional":false,"field":"name"},` +
	`{"type":"int64","optional":false,"field":"ts_ms"},` +
	`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},` +
	`{"type":"string","optional":false,"field":"db"},` +
	`{"type":"string","optional":true,"field":"sequence"},` +
	`{"type":"int64","optional":true,"field":"ts_us"},` +
	`{"type":"int64","optional":true,"field":"ts_ns"},` +
	`{"type":"string","optional":true,"field":"table"},` +
	`{"type":"int64","optional":false,"field":"server_id"},` +
	`{"type":"string","optional":true,"field":"gtid"},` +
	`{"type":"string","optional":false,"field":"file"},` +
	`{"type":"int64","optional":false,"field":"pos"},` +
	`{"type":"int32","optional":false,"field":"row"},` +
	`{"type":"int64","optional":true,"field":"thread"},` +
	`{"type":"string","optional":true,"field":"query"}],` +
	`"optional":false,"name":"io.debezium.connector.mysql.Source","version":1,"field":"source"}`

// transactionSchema is the schema of the (here always null) transaction block.
const transactionSchema = `{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"id"},` +
	`{"type":"int64","optional":false,"field":"total_order"},` +
	`{"type":"int64","optional":false,"field":"data_collection_order"}],` +
	`"optional":true,"name":"event.block","version":1,"field":"transaction"}`

// valueSchema returns the schema member of a table's change events.
func valueSchema(server, db string, t *table) []byte {
	base := server + "." + db + "." + t.name
	dst := []byte(`{"type":"struct","fields":[`)
	dst = rowSchema(dst, t.cols, base+".Value", "before", true)
	dst = append(dst, ',')
	dst = rowSchema(dst, t.cols, base+".Value", "after", true)
	dst = append(dst, ',')
	dst = append(dst, sourceSchema...)
	dst = append(dst, ',')
	dst = append(dst, transactionSchema...)
	dst = append(dst, `,{"type":"string","optional":false,"field":"op"},`+
		`{"type":"int64","optional":true,"field":"ts_ms"},`+
		`{"type":"int64","optional":true,"field":"ts_us"},`+
		`{"type":"int64","optional":true,"field":"ts_ns"}],"optional":false,"name":"`...)
	dst = append(dst, base...)
	return append(dst, `.Envelope","version":2}`...)
}

// keySchema returns the schema member of a table's keys.
func keySchema(server, db string, t *table) []byte {
	cols := make([]column, len(t.key))
	for i, k := range t.key {
		cols[i] = t.cols[k]
	}
	return rowSchema(nil, cols, server+"."+db+"."+t.name+".Key", "", false)
}

// encoder writes change messages as Debezium Server publishes them with the
// settings of its options (Server, Database, Schemas, KeySchemas, Ordering,
// Flatten, ContextHeaders, KeyChangeHeaders, Now). It is not safe for
// concurrent use.
type encoder struct {
	opts  Options
	runID string // the connector run's UUID, in the __debezium.context.runId header
	buf   []byte // the event being written, reused between messages
}

func newEncoder(opts Options) encoder {
	return encoder{opts: opts, runID: runUUID(opts.Seed)}
}

// sourceFields are the parts of the source block that vary, and the other
// image of a primary-key change.
type sourceFields struct {
	snapshot string // "false" when streaming
	seq, pos uint64
	row      int
	gtid     uint64 // 0 for snapshot reads: no GTID, server_id 0, no thread
	thread   int
	omitPos  bool // malformed: no file and pos
	// pkOther is set on the two messages of a primary-key change: on the
	// delete the new row, on the create the old one. Debezium puts its key
	// in the __debezium.newkey / __debezium.oldkey header.
	pkOther []any
}

// message encodes one change. A non-zero malformed kind writes a broken
// variant and leaves Key, Op and Version unset.
func (e *encoder) message(t *tableState, op cdc.Op, before, after []any, src sourceFields, malformed int) Message {
	now := e.opts.Now()
	image := after
	if op == cdc.OpDelete {
		image = before
	}
	key, dbzKey := e.keys(t, image)
	opByte := byte(op)
	if malformed == malformedOp {
		opByte = 'x'
	}

	b := e.buf[:0]
	if e.opts.Flatten {
		b = e.appendFlat(b, t, opByte, image, src, now)
	} else {
		b = e.appendEnvelope(b, t, opByte, before, after, src, now)
	}
	e.buf = b

	m := Message{Topic: t.topic, Data: append([]byte(nil), b...), Table: t.full, Attributes: e.attributes(t, op, src)}
	if e.opts.Ordering {
		m.OrderingKey = dbzKey
	}
	if malformed == 0 {
		m.Key, m.Op, m.Version = key, op, cdc.NewVersion(src.seq, src.pos, uint64(src.row))
	}
	return m
}

// appendEnvelope appends the change event envelope (before, after, source,
// op, ts_*), inside the schema envelope when Schemas is on.
func (e *encoder) appendEnvelope(b []byte, t *tableState, op byte, before, after []any, src sourceFields, now time.Time) []byte {
	if e.opts.Schemas {
		b = append(b, `{"schema":`...)
		b = append(b, t.valueSchema...)
		b = append(b, `,"payload":`...)
	}
	b = append(b, `{"before":`...)
	b = appendRow(b, t.table, before, appendDebezium)
	b = append(b, `,"after":`...)
	b = appendRow(b, t.table, after, appendDebezium)
	b = append(b, `,"source":`...)
	b = e.appendSource(b, t, src, now)
	b = append(b, `,"transaction":null,"op":"`...)
	b = append(b, op)
	b = append(b, `","ts_ms":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, `,"ts_us":`...)
	b = strconv.AppendInt(b, now.UnixMicro(), 10)
	b = append(b, `,"ts_ns":`...)
	b = strconv.AppendInt(b, now.UnixNano(), 10)
	b = append(b, '}')
	if e.opts.Schemas {
		b = append(b, '}')
	}
	return b
}

// appendFlat appends the row as ExtractNewRecordState writes it with the
// compact profile's settings (debezium-server/application.properties):
// the row image (a delete's before image) in table order; then `__deleted`,
// the string "true" for a delete and "false" otherwise, which the rewrite
// mode inserts first (DefaultDeleteHandlingStrategy.handleRecord /
// handleDeleteRecord); then the add.fields in their listed order
// (ExtractNewRecordState.addFields runs after the rewrite), named by
// AbstractExtractNewRecordState.FieldReference: `struct.field` becomes
// `__struct_field`, a bare source field `__field`. Never a schema.
func (e *encoder) appendFlat(b []byte, t *tableState, op byte, image []any, src sourceFields, now time.Time) []byte {
	b = appendRow(b, t.table, image, appendDebezium)
	b = b[:len(b)-1] // reopen the row object
	if op == byte(cdc.OpDelete) {
		b = append(b, `,"__deleted":"true","__op":"`...)
	} else {
		b = append(b, `,"__deleted":"false","__op":"`...)
	}
	b = append(b, op, '"')
	if !src.omitPos {
		b = append(b, `,"__source_file":"`...)
		b = appendBinlogFile(b, src.seq)
		b = append(b, `","__source_pos":`...)
		b = strconv.AppendUint(b, src.pos, 10)
	}
	b = append(b, `,"__source_row":`...)
	b = strconv.AppendInt(b, int64(src.row), 10)
	b = append(b, `,"__source_ts_ms":`...)
	b = strconv.AppendInt(b, commitMillis(src, now), 10)
	b = append(b, `,"__db":`...)
	b = cdc.AppendString(b, e.opts.Database)
	b = append(b, `,"__table":`...)
	b = cdc.AppendString(b, t.name)
	b = append(b, `,"__ts_ms":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	return append(b, '}')
}

// The extended headers Debezium 3.6 adds to every record while
// extended.headers.enabled is true, its default (CommonConnectorConfig
// EXTENDED_HEADERS_ENABLED; EventDispatcher.getExtendedHeaders;
// DebeziumHeaderProducer.contextHeaders), and the two a primary-key change
// carries (RelationalChangeRecordEmitter.emitUpdateAsPrimaryKeyChangeRecord).
// Debezium Server's Pub/Sub sink copies every header into an attribute
// (PubSubChangeConsumer: putAllAttributes(convertHeaders(record))).
const (
	headerLogicalName = "__debezium.context.connectorLogicalName" // topic.prefix
	headerTaskID      = "__debezium.context.taskId"               // "0": the one task
	headerConnector   = "__debezium.context.connectorName"        // "mysql" (Module.name())
	headerRunID       = "__debezium.context.runId"                // a UUID per connector start
	headerNewKey      = "__debezium.newkey"                       // on the delete of a key change
	headerOldKey      = "__debezium.oldkey"                       // on the create of a key change
)

// attributes returns the message's Pub/Sub attributes, nil when there are
// none. Header values are written by the header converter, Kafka's
// JsonConverter with its default schemas.enable=true (Debezium Server's
// debezium.format.header.* sets nothing else), so each is a schema envelope.
func (e *encoder) attributes(t *tableState, op cdc.Op, src sourceFields) map[string]string {
	var attrs map[string]string
	if e.opts.ContextHeaders {
		attrs = map[string]string{
			headerLogicalName: stringHeader(e.opts.Server),
			headerTaskID:      stringHeader("0"),
			headerConnector:   stringHeader("mysql"),
			headerRunID:       stringHeader(e.runID),
		}
	}
	if e.opts.KeyChangeHeaders && src.pkOther != nil {
		if attrs == nil {
			attrs = map[string]string{}
		}
		name := headerOldKey
		if op == cdc.OpDelete {
			name = headerNewKey
		}
		attrs[name] = `{"schema":` + string(t.keySchema) + `,"payload":` + string(e.keyJSON(t, src.pkOther)) + `}`
	}
	return attrs
}

// stringHeader is a Connect STRING header as JsonConverter writes it with
// schemas enabled.
func stringHeader(v string) string {
	return `{"schema":{"type":"string","optional":false},"payload":` + string(cdc.AppendString(nil, v)) + `}`
}

// runUUID is the connector run's ID (UUIDUtils.generateNewUUID: a random
// version 4 UUID), drawn from the seed so output stays reproducible.
func runUUID(seed uint64) string {
	r := newRand(seed ^ 0x5eed)
	var u [16]byte
	for i := range u {
		u[i] = byte(r.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// keys returns the cache key (no prefix) and the Debezium key JSON of a row.
func (e *encoder) keys(t *tableState, row []any) (string, string) {
	parts := make([][]byte, len(t.key))
	for i, ki := range t.key {
		parts[i] = appendCanonical(nil, &t.cols[ki], row[ki])
	}
	key, err := cdc.AppendKey(nil, "", t.full, parts...)
	if err != nil {
		panic(fmt.Sprintf("changegen: key of %s: %v", t.full, err)) // model keys are never null
	}
	dbzKey := string(e.keyJSON(t, row))
	if e.opts.KeySchemas {
		dbzKey = `{"schema":` + string(t.keySchema) + `,"payload":` + dbzKey + `}`
	}
	return string(key), dbzKey
}

// keyJSON returns the Debezium key of a row without schema: {"col":value}.
func (e *encoder) keyJSON(t *tableState, row []any) []byte {
	kb := []byte("{")
	for i, ki := range t.key {
		c := &t.cols[ki]
		if i > 0 {
			kb = append(kb, ',')
		}
		kb = cdc.AppendString(kb, c.name)
		kb = append(kb, ':')
		kb = appendDebezium(kb, c, row[ki])
	}
	return append(kb, '}')
}

// appendRow appends a row image as a JSON object, each column written by
// value (appendDebezium or appendCanonical); a nil row is null.
func appendRow(b []byte, t *table, row []any, value func([]byte, *column, any) []byte) []byte {
	if row == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i := range t.cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = cdc.AppendString(b, t.cols[i].name)
		b = append(b, ':')
		b = value(b, &t.cols[i], row[i])
	}
	return append(b, '}')
}

// commitMillis is source.ts_ms: the binlog event's time, which has
// one-second resolution; a snapshot read is stamped when it is read.
func commitMillis(src sourceFields, now time.Time) int64 {
	if src.gtid == 0 {
		return now.UnixMilli()
	}
	return now.Unix() * 1000
}

// appendBinlogFile appends the binlog file name of a sequence number.
func appendBinlogFile(b []byte, seq uint64) []byte {
	return fmt.Appendf(b, "mysql-bin.%06d", seq)
}

// appendSource appends the MySQL connector's source block.
func (e *encoder) appendSource(b []byte, t *tableState, src sourceFields, now time.Time) []byte {
	commit := commitMillis(src, now)
	b = append(b, `{"version":"`+debeziumVer+`","connector":"mysql","name":`...)
	b = cdc.AppendString(b, e.opts.Server)
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, commit, 10)
	b = append(b, `,"snapshot":"`...)
	b = append(b, src.snapshot...)
	b = append(b, `","db":`...)
	b = cdc.AppendString(b, e.opts.Database)
	b = append(b, `,"sequence":null,"ts_us":`...)
	b = strconv.AppendInt(b, commit*1000, 10)
	b = append(b, `,"ts_ns":`...)
	b = strconv.AppendInt(b, commit*1000000, 10)
	b = append(b, `,"table":`...)
	b = cdc.AppendString(b, t.name)
	if src.gtid == 0 {
		b = append(b, `,"server_id":0,"gtid":null`...)
	} else {
		b = append(b, `,"server_id":`...)
		b = strconv.AppendInt(b, serverID, 10)
		b = append(b, `,"gtid":"`+gtidSource+`:`...)
		b = strconv.AppendUint(b, src.gtid, 10)
		b = append(b, '"')
	}
	if !src.omitPos {
		b = append(b, `,"file":"`...)
		b = appendBinlogFile(b, src.seq)
		b = append(b, `","pos":`...)
		b = strconv.AppendUint(b, src.pos, 10)
	}
	b = append(b, `,"row":`...)
	b = strconv.AppendInt(b, int64(src.row), 10)
	if src.gtid == 0 {
		b = append(b, `,"thread":null`...)
	} else {
		b = append(b, `,"thread":`...)
		b = strconv.AppendInt(b, int64(src.thread), 10)
	}
	return append(b, `,"query":null}`...)
}
