package bench

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// EventOptions shape the generated change events.
type EventOptions struct {
	Schema      bool   // true: schema-enveloped ({"schema":…,"payload":…}), as with schemas.enable=true
	Keys        int    // distinct primary keys, cycled in order so every key sees growing versions
	TopicPrefix string // Debezium topic.prefix, also source.name
	DB, Table   string
	Seed        uint64           // row values are pseudo-random from this seed
	Clock       func() time.Time // source.ts_ms and publishTime; nil means time.Now
}

// DefaultEventOptions is the benchmark's table: shop.orders, 18 columns of
// mixed MySQL types, 10,000 rows.
func DefaultEventOptions(schema bool) EventOptions {
	return EventOptions{Schema: schema, Keys: 10000, TopicPrefix: "bench", DB: "shop", Table: "orders", Seed: 1}
}

// Generator writes Debezium MySQL change events for one table with strictly
// increasing binlog positions, wrapped in Pub/Sub push envelopes. It is not
// safe for concurrent use.
type Generator struct {
	opts   EventOptions
	rnd    *rand.Rand
	schema []byte // the "schema" member, written once
	pos    uint64 // binlog position of the next event
	n      uint64 // events written
	seen   []bool // key index -> a create was already written
	prev   [][]byte
	buf    []byte
}

// binlogFile is the binlog the events come from; its sequence is 3.
const binlogFile = "mysql-bin.000003"

// NewGenerator returns a generator whose first event is at binlog position
// startPos (use a position above every earlier run's to keep versions growing).
func NewGenerator(opts EventOptions, startPos uint64) (*Generator, error) {
	if opts.Keys < 1 {
		return nil, fmt.Errorf("bench: %d keys: want at least 1", opts.Keys)
	}
	if opts.DB == "" || opts.Table == "" || opts.TopicPrefix == "" {
		return nil, fmt.Errorf("bench: topic prefix, database and table must be set")
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	g := &Generator{
		opts: opts,
		rnd:  rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		pos:  startPos,
		seen: make([]bool, opts.Keys),
		prev: make([][]byte, opts.Keys),
	}
	g.schema = g.appendSchema(nil)
	return g, nil
}

// Pos returns the binlog position the next event will carry.
func (g *Generator) Pos() uint64 { return g.pos }

// Batch returns the next n push envelope bodies.
func (g *Generator) Batch(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// Next returns the next push envelope body: a create for a key's first
// event, an update (with the before image) after that.
func (g *Generator) Next() []byte {
	k := int(g.n % uint64(g.opts.Keys))
	id := int64(k + 1)
	now := g.opts.Clock()
	after := g.appendRow(nil, id)
	op := byte('c')
	if g.seen[k] {
		op = 'u'
	}
	ev := g.buf[:0]
	if g.opts.Schema {
		ev = append(ev, `{"schema":`...)
		ev = append(ev, g.schema...)
		ev = append(ev, `,"payload":`...)
	}
	ev = append(ev, `{"before":`...)
	if op == 'u' {
		ev = append(ev, g.prev[k]...)
	} else {
		ev = append(ev, "null"...)
	}
	ev = append(ev, `,"after":`...)
	ev = append(ev, after...)
	ev = g.appendSource(ev, now)
	ev = append(ev, `,"transaction":null,"op":"`...)
	ev = append(ev, op)
	ev = append(ev, `","ts_ms":`...)
	ev = strconv.AppendInt(ev, now.UnixMilli(), 10)
	ev = append(ev, `,"ts_us":`...)
	ev = strconv.AppendInt(ev, now.UnixMicro(), 10)
	ev = append(ev, `,"ts_ns":`...)
	ev = strconv.AppendInt(ev, now.UnixNano(), 10)
	ev = append(ev, '}')
	if g.opts.Schema {
		ev = append(ev, '}')
	}
	g.buf = ev
	g.seen[k], g.prev[k] = true, after

	body := g.appendEnvelope(nil, ev, id, now)
	g.n++
	// Binlog row events of a row this size take a few hundred bytes.
	g.pos += 300 + uint64(g.rnd.IntN(400))
	return body
}

// appendEnvelope wraps a change event the way a Pub/Sub push subscription
// delivers it (both spellings of the id and time fields, as Pub/Sub sends).
func (g *Generator) appendEnvelope(b, event []byte, id int64, now time.Time) []byte {
	msgID := strconv.FormatUint(1_000_000_000_000+g.n, 10)
	pt := now.UTC().Format(time.RFC3339Nano)
	b = append(b, `{"message":{"attributes":{},"data":"`...)
	b = base64.StdEncoding.AppendEncode(b, event)
	b = append(b, `","messageId":"`+msgID+`","message_id":"`+msgID+`","orderingKey":"{\"id\":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `}","publishTime":"`+pt+`","publish_time":"`+pt+`"},"subscription":"projects/bench/subscriptions/`...)
	b = append(b, g.opts.TopicPrefix+"."+g.opts.DB+"."+g.opts.Table+`","deliveryAttempt":1}`...)
	return b
}

func (g *Generator) appendSource(b []byte, now time.Time) []byte {
	b = append(b, `,"source":{"version":"2.7.3.Final","connector":"mysql","name":"`...)
	b = append(b, g.opts.TopicPrefix...)
	b = append(b, `","ts_ms":`...)
	// MySQL binlog timestamps have one-second resolution.
	b = strconv.AppendInt(b, now.Unix()*1000, 10)
	b = append(b, `,"snapshot":"false","db":"`...)
	b = append(b, g.opts.DB...)
	b = append(b, `","sequence":null,"ts_us":`...)
	b = strconv.AppendInt(b, now.Unix()*1_000_000, 10)
	b = append(b, `,"ts_ns":`...)
	b = strconv.AppendInt(b, now.Unix()*1_000_000_000, 10)
	b = append(b, `,"table":"`...)
	b = append(b, g.opts.Table...)
	b = append(b, `","server_id":223344,"gtid":null,"file":"`+binlogFile+`","pos":`...)
	b = strconv.AppendUint(b, g.pos, 10)
	b = append(b, `,"row":0,"thread":17,"query":null}`...)
	return b
}

var (
	statuses   = []string{"new", "paid", "shipped", "cancelled"}
	currencies = []string{"EUR", "USD", "GBP"}
	tagSets    = []string{"", "gift", "gift,priority", "fragile,priority"}
	notes      = []string{
		"Leave the parcel with the neighbour at number 12 if nobody answers.",
		"Customer asked for recycled packaging.",
		"Deliver after 18:00 on weekdays; call ahead.",
	}
)

// appendRow writes the after (or before) image of row id with fresh values,
// in Debezium's default MySQL encodings (see the schema below).
func (g *Generator) appendRow(b []byte, id int64) []byte {
	r := g.rnd
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"customer_id":`...)
	b = strconv.AppendInt(b, int64(1000+r.IntN(90000)), 10)
	b = append(b, `,"status":"`+statuses[r.IntN(len(statuses))]+`","email":"customer`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `@example.com","total":"`...)
	b = appendDecimalBytes(b, int64(r.IntN(10_000_000))) // up to 99999.99
	b = append(b, `","discount":"`...)
	b = appendDecimalBytes(b, int64(r.IntN(5000)))
	b = append(b, `","currency":"`+currencies[r.IntN(len(currencies))]+`","quantity":`...)
	b = strconv.AppendInt(b, int64(1+r.IntN(20)), 10)
	b = append(b, `,"weight_kg":`...)
	b = strconv.AppendFloat(b, float64(r.IntN(100000))/1000, 'g', -1, 64)
	b = append(b, `,"is_gift":`...)
	b = strconv.AppendInt(b, int64(r.IntN(2)), 10)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(id) * time.Minute)
	b = append(b, `,"created_at":`...)
	b = strconv.AppendInt(b, created.UnixMilli()+int64(r.IntN(1000)), 10)
	b = append(b, `,"updated_at":"`...)
	b = created.Add(time.Duration(r.IntN(1e6))*time.Second).AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, `","ship_date":`...)
	b = strconv.AppendInt(b, created.Unix()/86400+int64(r.IntN(10)), 10)
	b = append(b, `,"ship_window":`...)
	b = strconv.AppendInt(b, int64(8+r.IntN(10))*3600*1_000_000, 10)
	b = append(b, `,"tags":"`+tagSets[r.IntN(len(tagSets))]+`","attrs":"{\"channel\":\"web\",\"coupon\":null,\"items\":`...)
	b = strconv.AppendInt(b, int64(1+r.IntN(9)), 10)
	b = append(b, `}","sku_hash":"`...)
	var h [16]byte
	for i := range h {
		h[i] = byte(r.Uint32())
	}
	b = base64.StdEncoding.AppendEncode(b, h[:])
	b = append(b, `","note":`...)
	if i := r.IntN(len(notes) + 1); i < len(notes) {
		b = append(b, '"')
		b = append(b, notes[i]...)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}

// appendDecimalBytes writes an unscaled DECIMAL value the way Kafka
// Connect's Decimal logical type does: minimal big-endian two's complement,
// base64 (decimal.handling.mode=precise).
func appendDecimalBytes(b []byte, unscaled int64) []byte {
	var raw [8]byte
	for i := range raw {
		raw[7-i] = byte(unscaled >> (8 * i))
	}
	i := 0
	for i < 7 && ((raw[i] == 0 && raw[i+1]&0x80 == 0) || (raw[i] == 0xff && raw[i+1]&0x80 != 0)) {
		i++
	}
	return base64.StdEncoding.AppendEncode(b, raw[i:])
}

// columns is the table as Debezium's schema envelope describes each column.
var columns = []string{
	`{"type":"int64","optional":false,"field":"id"}`,
	`{"type":"int32","optional":false,"field":"customer_id"}`,
	`{"type":"string","optional":false,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"new,paid,shipped,cancelled"},"field":"status"}`,
	`{"type":"string","optional":false,"field":"email"}`,
	`{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"total"}`,
	`{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"5"},"field":"discount"}`,
	`{"type":"string","optional":false,"field":"currency"}`,
	`{"type":"int16","optional":false,"field":"quantity"}`,
	`{"type":"double","optional":true,"field":"weight_kg"}`,
	`{"type":"int16","optional":false,"field":"is_gift"}`,
	`{"type":"int64","optional":false,"name":"io.debezium.time.Timestamp","version":1,"field":"created_at"}`,
	`{"type":"string","optional":false,"name":"io.debezium.time.ZonedTimestamp","version":1,"field":"updated_at"}`,
	`{"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1,"field":"ship_date"}`,
	`{"type":"int64","optional":true,"name":"io.debezium.time.MicroTime","version":1,"field":"ship_window"}`,
	`{"type":"string","optional":true,"name":"io.debezium.data.EnumSet","version":1,"parameters":{"allowed":"gift,priority,fragile"},"field":"tags"}`,
	`{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1,"field":"attrs"}`,
	`{"type":"bytes","optional":true,"field":"sku_hash"}`,
	`{"type":"string","optional":true,"field":"note"}`,
}

// sourceSchema is the MySQL connector's source block schema.
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
	`{"type":"string","optional":true,"field":"query"}` +
	`],"optional":false,"name":"io.debezium.connector.mysql.Source","field":"source"}`

// appendSchema writes the "schema" member of the envelope as Debezium's
// JsonConverter does: the row struct twice (before, after), source,
// transaction, op and timestamps.
func (g *Generator) appendSchema(b []byte) []byte {
	name := g.opts.TopicPrefix + "." + g.opts.DB + "." + g.opts.Table
	row := func(field string) {
		b = append(b, `{"type":"struct","fields":[`...)
		for i, c := range columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, c...)
		}
		b = append(b, `],"optional":true,"name":"`+name+`.Value","field":"`+field+`"},`...)
	}
	b = append(b, `{"type":"struct","fields":[`...)
	row("before")
	row("after")
	b = append(b, sourceSchema...)
	b = append(b, `,{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}`...)
	b = append(b, `,{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},{"type":"int64","optional":true,"field":"ts_us"},{"type":"int64","optional":true,"field":"ts_ns"}`...)
	b = append(b, `],"optional":false,"name":"`+name+`.Envelope","version":2}`...)
	return b
}
