package changegen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// Options configure a Generator. The zero value of each field picks the
// default named in its comment.
type Options struct {
	// Seed makes the output reproducible.
	Seed uint64
	// Server is Debezium's topic.prefix, also source.name: "dbserver1".
	Server string
	// Database is the MySQL database: "inventory".
	Database string
	// Schemas writes the value's schema envelope
	// (debezium.format.value.schemas.enable=true).
	Schemas bool
	// KeySchemas writes the key's schema envelope
	// (debezium.format.key.schemas.enable=true).
	KeySchemas bool
	// Ordering sets the ordering key to the Debezium key JSON
	// (debezium.sink.pubsub.ordering.enabled=true).
	Ordering bool
	// Flatten writes rows as ExtractNewRecordState flattens them in the
	// compact profile: the row, __deleted, then the added metadata fields.
	Flatten bool
	// ContextHeaders adds the four __debezium.context.* attributes Debezium
	// 3.6 sends while extended.headers.enabled is on (its default).
	ContextHeaders bool
	// KeyChangeHeaders adds the __debezium.newkey / __debezium.oldkey
	// attribute to the two messages of a primary-key change (Debezium always
	// sends them unless a DropHeaders transform removes them).
	KeyChangeHeaders bool
	// Keys is the number of distinct keys per table: 1000.
	Keys int
	// SnapshotRows is the number of rows per table the snapshot reads: Keys/2.
	SnapshotRows int
	// Now is the clock for the ts_ms fields: time.Now.
	Now func() time.Time
}

// Message is one Pub/Sub message as Debezium Server publishes it, plus what
// the generator knows about it.
type Message struct {
	// Topic is the Pub/Sub topic ID: <server>.<db>.<table>.
	Topic string
	// Data is the message data: the Debezium value JSON.
	Data []byte
	// OrderingKey is the Debezium key JSON when ordering is on, else "".
	OrderingKey string
	// Attributes are the Pub/Sub attributes Debezium Server copies from the
	// record's headers; nil when there are none.
	Attributes map[string]string
	// Table is "db.table".
	Table string
	// Key is the row's cache key without prefix; "" for malformed messages.
	Key string
	// Op is the change's operation; 0 for malformed messages.
	Op cdc.Op
	// Version is the change's version; "" for malformed messages.
	Version cdc.Version
}

// Expect is the final state of one key.
type Expect struct {
	// Key is the cache key without prefix.
	Key string `json:"key"`
	// Version is the version of the key's last change.
	Version cdc.Version `json:"version"`
	// Row is the canonical JSON of the row; nil when Deleted.
	Row json.RawMessage `json:"row,omitempty"`
	// Deleted is true when the last change deleted the row.
	Deleted bool `json:"deleted,omitempty"`
}

// Binlog facts of the simulated MySQL server.
const (
	serverID      = 223344
	gtidSource    = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	firstSeq      = 3
	firstPos      = 157           // after the format description and previous-GTIDs events
	maxBinlogSize = 4 << 20       // rotate like max_binlog_size, small so runs see rotations
	debeziumVer   = "3.6.1.Final" // the image terraform/ deploys
	snapshotChunk = 200           // snapshot messages per Next call
)

// tableState is a model table with its rows and prepared schema bytes.
type tableState struct {
	*table
	full        string // db.table
	topic       string
	valueSchema []byte
	keySchema   []byte
	rows        map[int][]any // live rows by key number
	// live and free are the Generator's key numbers with and without a row.
	live, free keySet
}

// keySet is a set of key numbers with O(1) random pick and removal.
type keySet struct {
	list []int
	idx  map[int]int
}

func (s *keySet) add(k int) {
	if s.idx == nil {
		s.idx = map[int]int{}
	}
	s.idx[k] = len(s.list)
	s.list = append(s.list, k)
}

func (s *keySet) remove(k int) {
	i := s.idx[k]
	last := s.list[len(s.list)-1]
	s.list[i], s.idx[last] = last, i
	s.list = s.list[:len(s.list)-1]
	delete(s.idx, k)
}

func (s *keySet) random(r *rand.Rand) int { return s.list[r.IntN(len(s.list))] }

// Generator produces the change stream. It is not safe for concurrent use.
type Generator struct {
	enc      encoder
	database string // Options.Database
	r        *rand.Rand
	tables   []*tableState
	expect   map[string]*Expect

	seq, pos uint64 // binlog file sequence and position of the last event
	gtid     uint64 // transaction number of the last GTID
	snapSeq  uint64 // binlog file sequence and position the snapshot reads at
	snapPos  uint64
	snapshot []snapRow // rows still to be read by the snapshot
	snapLen  int       // rows the snapshot reads in all
	snapDone int       // rows read so far
}

type snapRow struct {
	t *tableState
	k int
}

// DefaultServer is the server name (Debezium's topic.prefix) the generator
// writes when Options.Server is empty.
const DefaultServer = "dbserver1"

// withDefaults fills in the defaults named in the fields' comments.
func (opts Options) withDefaults() Options {
	if opts.Server == "" {
		opts.Server = DefaultServer
	}
	if opts.Database == "" {
		opts.Database = "inventory"
	}
	if opts.Keys <= 0 {
		opts.Keys = 1000
	}
	if opts.SnapshotRows <= 0 || opts.SnapshotRows > opts.Keys {
		opts.SnapshotRows = opts.Keys / 2
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return opts
}

// newRand is the generators' random source for a seed.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// New returns a generator whose first messages are the snapshot.
func New(opts Options) *Generator {
	opts = opts.withDefaults()
	g := &Generator{
		enc:      newEncoder(opts),
		database: opts.Database,
		r:        newRand(opts.Seed),
		expect:   map[string]*Expect{},
		seq:      firstSeq,
		pos:      firstPos,
		gtid:     1000,
	}
	g.snapSeq, g.snapPos = g.seq, g.pos
	for _, t := range newTables() {
		ts := newTableState(opts, t)
		perm := g.r.Perm(opts.Keys)
		for _, k := range perm[opts.SnapshotRows:] {
			ts.free.add(k)
		}
		// Debezium snapshots table by table, each in key order.
		snap := perm[:opts.SnapshotRows]
		sort.Ints(snap)
		for _, k := range snap {
			ts.rows[k] = ts.newRow(g.r, k)
			ts.live.add(k)
			g.snapshot = append(g.snapshot, snapRow{ts, k})
		}
		g.tables = append(g.tables, ts)
	}
	g.snapLen = len(g.snapshot)
	return g
}

func newTableState(opts Options, t *table) *tableState {
	return &tableState{
		table:       t,
		full:        opts.Database + "." + t.name,
		topic:       opts.Server + "." + opts.Database + "." + t.name,
		valueSchema: valueSchema(opts.Server, opts.Database, t),
		keySchema:   keySchema(opts.Server, opts.Database, t),
		rows:        map[int][]any{},
	}
}

// newRow returns row k with fresh values.
func (t *tableState) newRow(r *rand.Rand, k int) []any {
	row := make([]any, len(t.cols))
	for i, v := range t.keyValues(k) {
		row[t.key[i]] = v
	}
	t.fill(r, row)
	return row
}

// Topics returns the topic IDs of the model's tables.
func (g *Generator) Topics() []string {
	out := make([]string, len(g.tables))
	for i, t := range g.tables {
		out[i] = t.topic
	}
	return out
}

// CacheConfig returns a CACHE_CONFIG YAML for the model: key columns (needed
// when ordering is off, as the Debezium key then is not in the message) and
// column types (needed when schemas are off). With a column registry synced
// from tables made by CreateTables, TablesConfig is enough.
func (g *Generator) CacheConfig(prefix string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "prefix: %q\ntables:\n", prefix)
	for _, t := range g.tables {
		writeTableConfig(&b, t)
	}
	return []byte(b.String())
}

// TablesConfig returns a CACHE_CONFIG YAML that only lists the model's
// tables: their key columns and types come from the column registry.
func (g *Generator) TablesConfig(prefix string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "prefix: %q\ntables:\n", prefix)
	for _, t := range g.tables {
		fmt.Fprintf(&b, "  %s: {}\n", t.full)
	}
	return []byte(b.String())
}

// writeTableConfig writes a table's entry of a CACHE_CONFIG YAML.
func writeTableConfig(b *strings.Builder, t *tableState) {
	fmt.Fprintf(b, "  %s:\n    key: [", t.full)
	for i, k := range t.key {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.cols[k].name)
	}
	b.WriteString("]\n    types:\n")
	for _, c := range t.cols {
		fmt.Fprintf(b, "      %s: %q\n", c.name, c.sqlType)
	}
}

// AllKeys returns the cache key (without prefix) of every row the generator
// can ever write, Options.Keys per table, in model order: a cache that
// cannot delete by prefix (memcached) is cleared key by key.
func (g *Generator) AllKeys() []string {
	out := make([]string, 0, len(g.tables)*g.enc.opts.Keys)
	for _, t := range g.tables {
		row := make([]any, len(t.cols))
		for k := range g.enc.opts.Keys {
			for i, v := range t.keyValues(k) {
				row[t.key[i]] = v
			}
			key, _ := g.enc.keys(t, row)
			out = append(out, key)
		}
	}
	return out
}

// Tables returns the model's tables as db.table, in model order.
func (g *Generator) Tables() []string {
	out := make([]string, len(g.tables))
	for i, t := range g.tables {
		out[i] = t.full
	}
	return out
}

// CreateTables returns the MySQL statements that create the model's
// database and tables as the generated events describe them (columns in
// order, types, nullability, primary key), for `cachectl schema sync` to
// read back. Each is CREATE ... IF NOT EXISTS; DropTables removes them.
func (g *Generator) CreateTables() []string {
	out := []string{"CREATE DATABASE IF NOT EXISTS `" + g.database + "`"}
	for _, t := range g.tables {
		var b strings.Builder
		fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (", quoteTable(t.full))
		for _, c := range t.cols {
			null := "NOT NULL"
			if c.optional {
				null = "NULL"
			}
			fmt.Fprintf(&b, "`%s` %s %s, ", c.name, c.ddlType(), null)
		}
		b.WriteString("PRIMARY KEY (")
		for i, k := range t.key {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "`%s`", t.cols[k].name)
		}
		b.WriteString("))")
		out = append(out, b.String())
	}
	return out
}

// DropTables returns the statements that drop the model's tables.
func (g *Generator) DropTables() []string {
	out := make([]string, len(g.tables))
	for i, t := range g.tables {
		out[i] = "DROP TABLE IF EXISTS " + quoteTable(t.full)
	}
	return out
}

// quoteTable quotes db.table for MySQL.
func quoteTable(full string) string {
	db, name, _ := strings.Cut(full, ".")
	return "`" + db + "`.`" + name + "`"
}

// Next returns the messages of the next binlog event: snapshot reads first,
// then one row event (1 to 5 rows; a primary-key change gives two messages
// per row). It never returns more than max messages, nor none (max >= 1).
func (g *Generator) Next(limit int) []Message {
	limit = min(max(limit, 1), snapshotChunk)
	if len(g.snapshot) > 0 {
		n := min(limit, len(g.snapshot))
		out := make([]Message, 0, n)
		for _, sr := range g.snapshot[:n] {
			out = append(out, g.snapshotRead(sr))
		}
		g.snapshot = g.snapshot[n:]
		return out
	}
	return g.event(limit)
}

// Resnapshot queues a new snapshot: a read (op r) of every live row, table
// by table in key order, at the binlog position of now, as Debezium sends
// when asked to snapshot again (an incremental snapshot signalled through
// its signal table, or a restart with a snapshot mode that snapshots): what
// repairs a cache that lost its records. The next Next calls return it.
func (g *Generator) Resnapshot() {
	g.advance()
	g.snapSeq, g.snapPos = g.seq, g.pos
	g.snapshot, g.snapDone = g.snapshot[:0], 0
	for _, t := range g.tables {
		keys := slices.Clone(t.live.list)
		slices.Sort(keys)
		for _, k := range keys {
			g.snapshot = append(g.snapshot, snapRow{t, k})
		}
	}
	g.snapLen = len(g.snapshot)
}

// Snapshotting reports whether the snapshot still has rows to read.
func (g *Generator) Snapshotting() bool { return len(g.snapshot) > 0 }

func (g *Generator) snapshotRead(sr snapRow) Message {
	g.snapDone++
	flag := "true"
	switch g.snapDone {
	case g.snapLen:
		flag = "last"
	case 1:
		flag = "first"
	}
	src := sourceFields{snapshot: flag, seq: g.snapSeq, pos: g.snapPos}
	return g.message(sr.t, cdc.OpRead, nil, sr.t.rows[sr.k], src, 0)
}

func (g *Generator) event(limit int) []Message {
	t := g.tables[g.weighted([]int{40, 30, 30})]
	keys := len(t.live.list) + len(t.free.list)
	// Keep about half the keys live, so the run ends with rows and deletes.
	insertW := 30
	switch {
	case len(t.live.list) < keys*2/5:
		insertW = 60
	case len(t.live.list) > keys*3/5:
		insertW = 10
	}
	op := [...]string{"insert", "update", "delete", "pk"}[g.weighted([]int{insertW, 45, 15, 10})]
	rows := 1
	if g.r.IntN(10) < 3 {
		rows = 2 + g.r.IntN(4)
	}
	g.advance()
	src := sourceFields{snapshot: "false", seq: g.seq, pos: g.pos, gtid: g.gtid, thread: 1 + g.r.IntN(16)}
	var out []Message
	for row := 0; row < rows; row++ {
		src.row = row
		o := op
		switch {
		case o == "pk" && (len(t.live.list) == 0 || len(t.free.list) == 0 || limit-len(out) < 2):
			o = "update"
		}
		switch {
		case o == "insert" && len(t.free.list) == 0:
			o = "update"
		case (o == "update" || o == "delete") && len(t.live.list) == 0:
			o = "insert"
		}
		switch o {
		case "insert":
			k := t.free.random(g.r)
			t.free.remove(k)
			t.live.add(k)
			t.rows[k] = t.newRow(g.r, k)
			out = append(out, g.message(t, cdc.OpCreate, nil, t.rows[k], src, 0))
		case "update":
			k := t.live.random(g.r)
			before := t.rows[k]
			after := append([]any(nil), before...)
			t.fill(g.r, after)
			t.rows[k] = after
			out = append(out, g.message(t, cdc.OpUpdate, before, after, src, 0))
		case "delete":
			k := t.live.random(g.r)
			out = append(out, g.message(t, cdc.OpDelete, t.rows[k], nil, src, 0))
			t.live.remove(k)
			t.free.add(k)
			delete(t.rows, k)
		case "pk":
			// UPDATE ... SET id = new: Debezium emits a delete of the old key
			// and a create of the new one, both at the row's position.
			old, nk := t.live.random(g.r), t.free.random(g.r)
			row := append([]any(nil), t.rows[old]...)
			for i, v := range t.keyValues(nk) {
				row[t.key[i]] = v
			}
			del, ins := src, src
			del.pkOther, ins.pkOther = row, t.rows[old]
			out = append(out, g.message(t, cdc.OpDelete, t.rows[old], nil, del, 0))
			out = append(out, g.message(t, cdc.OpCreate, nil, row, ins, 0))
			t.live.remove(old)
			t.free.add(old)
			delete(t.rows, old)
			t.free.remove(nk)
			t.live.add(nk)
			t.rows[nk] = row
		}
		if len(out) >= limit {
			break
		}
	}
	return out
}

// advance moves to the next binlog event, rotating the file now and then.
func (g *Generator) advance() {
	g.gtid++
	g.pos += 150 + uint64(g.r.IntN(900))
	if g.pos > maxBinlogSize || g.r.IntN(20000) == 0 {
		g.seq++
		g.pos = firstPos
	}
}

func (g *Generator) weighted(w []int) int {
	total := 0
	for _, x := range w {
		total += x
	}
	n := g.r.IntN(total)
	for i, x := range w {
		if n < x {
			return i
		}
		n -= x
	}
	return len(w) - 1
}

// message encodes one change and records it in the expected state. A
// non-zero malformed kind writes a broken variant and records nothing.
func (g *Generator) message(t *tableState, op cdc.Op, before, after []any, src sourceFields, malformed int) Message {
	m := g.enc.message(t, op, before, after, src, malformed)
	if malformed != 0 {
		return m
	}
	e := &Expect{Key: m.Key, Version: m.Version}
	if op == cdc.OpDelete {
		e.Deleted = true
	} else {
		e.Row = appendRow(nil, t.table, after, appendCanonical)
	}
	g.expect[m.Key] = e
	return m
}

// The kinds of malformed message: undecodable bytes, a truncated event, an
// event without its binlog position, and an event with an unknown op.
const (
	malformedGarbage = iota + 1
	malformedTruncated
	malformedNoPosition
	malformedOp
	numMalformed = malformedOp
)

// Malformed returns a message the pipeline must park: garbage bytes, a
// truncated event, an event without binlog position or one with an unknown
// op, on a random table's topic. It changes no expected state.
func (g *Generator) Malformed() Message {
	t := g.tables[g.r.IntN(len(g.tables))]
	kind := 1 + g.r.IntN(numMalformed)
	if kind == malformedGarbage || len(t.live.list) == 0 {
		data := fmt.Appendf(nil, "\x00garbage %016x not a Debezium event", g.r.Uint64())
		return Message{Topic: t.topic, Data: data, Table: t.full}
	}
	row := t.rows[t.live.random(g.r)]
	src := sourceFields{snapshot: "false", seq: g.seq, pos: g.pos, gtid: g.gtid, thread: 1, omitPos: kind == malformedNoPosition}
	m := g.message(t, cdc.OpUpdate, row, row, src, kind)
	if kind == malformedTruncated {
		m.Data = m.Data[:len(m.Data)/2]
	}
	return m
}

// Expected returns the final state of every key that was ever written,
// sorted by key.
func (g *Generator) Expected() []Expect {
	out := make([]Expect, 0, len(g.expect))
	for _, e := range g.expect {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// WriteExpected writes Expected as JSON lines, the file `cachectl verify
// -expected` reads.
func (g *Generator) WriteExpected(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, e := range g.Expected() {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadExpected reads a file written by WriteExpected.
func ReadExpected(r io.Reader) ([]Expect, error) {
	dec := json.NewDecoder(r)
	var out []Expect
	for line := 1; ; line++ {
		var e Expect
		err := dec.Decode(&e)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("expected state, entry %d: %w", line, err)
		}
		if e.Key == "" || (e.Row == nil) == !e.Deleted {
			return nil, fmt.Errorf("expected state, entry %d: want a key and either a row or deleted", line)
		}
		out = append(out, e)
	}
}
