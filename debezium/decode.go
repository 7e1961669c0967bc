package debezium

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// Decoder turns Debezium messages into changes. It is safe for concurrent
// use: compiled schemas and interned names are shared under locks, and each
// Decode takes its scratch space from a pool.
type Decoder struct {
	cfg   *cdc.Config
	reg   atomic.Pointer[cdc.Registry] // the column registry's latest snapshot; nil until one is set
	plans planCache
	names interner
	pool  sync.Pool // of *state
}

// SetRegistry makes r the column registry the decoder types and keys
// schemaless rows with (nil: none). Safe to call while decoding: each
// message sees one snapshot.
func (d *Decoder) SetRegistry(r *cdc.Registry) { d.reg.Store(r) }

// Registry returns the column registry snapshot in use, or nil.
func (d *Decoder) Registry() *cdc.Registry { return d.reg.Load() }

// NewDecoder returns a decoder for the tables of cfg (nil means
// cdc.DefaultConfig).
func NewDecoder(cfg *cdc.Config) *Decoder {
	if cfg == nil {
		cfg = cdc.DefaultConfig()
	}
	d := &Decoder{cfg: cfg}
	d.plans.seed = maphash.MakeSeed()
	d.plans.m = make(map[uint64]*cachedPlan)
	d.plans.prefixed = make(map[uint64][]*cachedPlan)
	d.names.m = make(map[string]string)
	d.pool.New = func() any { return new(state) }
	return d
}

// state is the scratch space of one Decode.
type state struct {
	cv     converter
	vals   []byte  // canonical values of the decoded row image
	fields []field // the decoded row image, in column order
	meta   []span  // ExtractNewRecordState __ fields of the value
	keys   []span  // the Debezium key's fields
	out    []byte  // the row JSON being built
	key    []byte  // the Redis key being built
	parts  [][]byte
	// untyped is set by decodeRow for a schemaless column with no type.
	untyped bool
}

// field is one decoded column: its name and canonical value in state.vals
// (start < 0: absent from the payload, written as null).
type field struct {
	name       []byte
	quoted     []byte // `"name":` when known from the schema
	kind       kind
	scale      int
	start, end int
}

// span is a member of an object: its key and raw value.
type span struct {
	name, value []byte
}

func (st *state) reset() {
	st.vals, st.fields, st.meta, st.keys = st.vals[:0], st.fields[:0], st.meta[:0], st.keys[:0]
	st.out, st.key, st.parts = st.out[:0], st.key[:0], st.parts[:0]
	st.untyped = false
}

// members are the spans of an envelope's (or payload's) known keys.
type members struct {
	n                               int
	schema, payload                 []byte
	before, after, source, op, tsMs []byte
	ddl, databaseName, tableChanges []byte
	status, id                      []byte
	hasSchemaField                  bool
}

// collect scans the object at the cursor, keeping the spans of known keys
// and of __ (add.fields) keys.
func (st *state) collect(s *scanner, m *members) error {
	if err := s.begin('{'); err != nil {
		return err
	}
	for n := 0; ; n++ {
		key, ok, err := s.member(n)
		if err != nil {
			return err
		}
		if !ok {
			m.n = n
			return nil
		}
		var v []byte
		if c := s.peek(); c == '{' || c == '[' {
			v, err = s.skipDoc()
		} else {
			v, err = s.value()
		}
		if err != nil {
			return err
		}
		switch string(key) {
		case "schema":
			m.schema, m.hasSchemaField = v, true
		case "payload":
			m.payload = v
		case "before":
			m.before = v
		case "after":
			m.after = v
		case "source":
			m.source = v
		case "op":
			m.op = v
		case "ts_ms":
			m.tsMs = v
		case "ddl":
			m.ddl = v
		case "databaseName":
			m.databaseName = v
		case "tableChanges":
			m.tableChanges = v
		case "status":
			m.status = v
		case "id":
			m.id = v
		default:
			if bytes.HasPrefix(key, []byte(metaPrefix)) {
				st.meta = append(st.meta, span{key, v})
			}
		}
	}
}

var errNotObject = errors.New("debezium: value is not a JSON object")

// Decode decodes one message. value is the Pub/Sub message data (the
// Debezium value JSON); key is the Debezium key JSON (the Pub/Sub
// orderingKey, present when Debezium's ordering is on) or nil. Any error is
// permanent (the caller parks the message): its text names what was wrong,
// and the change returned with it carries only its Table, when the message
// named one before the error (else "").
func (d *Decoder) Decode(value, key []byte) (cdc.Change, error) {
	st := d.pool.Get().(*state)
	st.reset()
	ch, err := d.decode(st, value, key)
	d.pool.Put(st)
	if err != nil {
		// Only the table survives an error: the caller parks and counts the
		// message under it when the message named one.
		return cdc.Change{Table: ch.Table}, err
	}
	return ch, nil
}

func (d *Decoder) decode(st *state, value, key []byte) (cdc.Change, error) {
	s := scanner{b: value}
	if s.atEnd() || s.null() && s.atEnd() {
		// A Kafka-style tombstone after a delete: nothing to apply.
		return cdc.Change{Op: cdc.OpIgnore, Reason: "tombstone"}, nil
	}
	s.i = 0
	var top, inner members
	var p *plan
	body, m := value, &top
	if e, payload, tombstone, ok := d.splitKnown(st, value, &inner); ok {
		if e.err != nil {
			return cdc.Change{}, fmt.Errorf("debezium: %w", e.err)
		}
		if tombstone {
			return cdc.Change{Op: cdc.OpIgnore, Reason: "tombstone"}, nil
		}
		p, body, m = e.plan, payload, &inner
	} else {
		if s.peek() != '{' {
			return cdc.Change{}, errNotObject
		}
		if err := st.collect(&s, &top); err != nil {
			return cdc.Change{}, fmt.Errorf("debezium: value: %w", err)
		}
		if !s.atEnd() {
			return cdc.Change{}, fmt.Errorf("debezium: value: %w", s.errorf("data after the JSON value"))
		}
	}
	if m == &top && top.n == 2 && top.hasSchemaField && top.payload != nil && len(st.meta) == 0 {
		// The JsonConverter envelope {"schema":…,"payload":…}.
		ps := scanner{b: top.payload}
		if ps.null() {
			return cdc.Change{Op: cdc.OpIgnore, Reason: "tombstone"}, nil
		}
		if sc := (&scanner{b: top.schema}); p == nil && top.schema != nil && !sc.null() {
			var err error
			if p, err = d.plans.get(top.schema); err != nil {
				return cdc.Change{}, fmt.Errorf("debezium: %w", err)
			}
		}
		if ps.peek() != '{' {
			return cdc.Change{}, errors.New("debezium: payload is not a JSON object")
		}
		st.meta = st.meta[:0]
		if err := st.collect(&ps, &inner); err != nil {
			return cdc.Change{}, fmt.Errorf("debezium: payload: %w", err)
		}
		body, m = top.payload, &inner
	}
	// Without a schema the shape is told by the members present. A
	// flattened row's __ metadata wins over its columns, which may be named
	// like the members of an envelope or a control record (op, source, ddl,
	// status, id...): only a message without them is looked at further.
	guess := p == nil && !flatMeta(st.meta)
	switch {
	case p != nil && p.shape == shapeHeartbeat,
		guess && m.n == 1 && m.tsMs != nil,
		guess && bytes.Contains(key, []byte(nameServerKey)):
		return cdc.Change{Op: cdc.OpIgnore, Reason: "heartbeat", EventMs: optInt(m.tsMs)}, nil
	case p != nil && p.shape == shapeSchemaChange,
		guess && m.op == nil && (m.ddl != nil || m.tableChanges != nil || m.databaseName != nil):
		return cdc.Change{Op: cdc.OpIgnore, Reason: "schema-change", EventMs: optInt(m.tsMs)}, nil
	case p != nil && p.shape == shapeTransaction,
		guess && m.op == nil && m.id != nil && isTxStatus(m.status):
		return cdc.Change{Op: cdc.OpIgnore, Reason: "transaction", EventMs: optInt(m.tsMs)}, nil
	case p != nil && p.shape == shapeEnvelope, guess && m.op != nil && m.source != nil:
		return d.envelope(st, p, m, key)
	}
	var row *rowPlan
	var table string
	if p != nil {
		row, table = p.after, p.table
	}
	return d.flat(st, row, table, body, key)
}

// splitKnown reads {"schema":S,"payload":P}, as JsonConverter writes it,
// when S is a schema already compiled: the common case, found without
// scanning S, with P scanned once, by collecting its members into m (or
// found null: a tombstone). P's span is taken to run to the envelope's
// closing brace and proves to be one value when collect ends there. ok is
// false for anything else, which the general path then decides, errors
// included, exactly as if this path did not exist.
func (d *Decoder) splitKnown(st *state, value []byte, m *members) (e *cachedPlan, payload []byte, tombstone, ok bool) {
	const head = `{"schema":`
	if len(value) < len(head) || string(value[:len(head)]) != head {
		return nil, nil, false, false
	}
	if e = d.plans.known(value[len(head):]); e == nil {
		return nil, nil, false, false
	}
	s := scanner{b: value, i: len(head) + len(e.raw)}
	key, more, err := s.member(1)
	if err != nil || !more || string(key) != "payload" {
		return nil, nil, false, false
	}
	end := len(value)
	for end > s.i && isSpace(value[end-1]) {
		end--
	}
	if end == s.i || value[end-1] != '}' {
		return nil, nil, false, false
	}
	ps := scanner{b: value[:end-1], i: s.i}
	ps.ws()
	start := ps.i
	if ps.null() {
		return e, nil, true, ps.atEnd()
	}
	if ps.peek() != '{' {
		return nil, nil, false, false
	}
	if err := st.collect(&ps, m); err != nil || !ps.atEnd() {
		st.meta = st.meta[:0]
		*m = members{}
		return nil, nil, false, false
	}
	return e, value[start:ps.i], false, true
}

// flatMeta reports whether a message's __ members include one that only
// ExtractNewRecordState's add.fields or delete rewriting writes: __op,
// __deleted or __source_*.
func flatMeta(meta []span) bool {
	for _, f := range meta {
		n := f.name[len(metaPrefix):]
		if string(n) == "op" || string(n) == "deleted" || bytes.HasPrefix(n, []byte("source_")) {
			return true
		}
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isTxStatus(v []byte) bool { return string(v) == `"BEGIN"` || string(v) == `"END"` }

// optInt reads an optional integer span, 0 when absent or not an integer.
func optInt(v []byte) int64 {
	if v == nil {
		return 0
	}
	n, err := int64At(&scanner{b: v})
	if err != nil {
		return 0
	}
	return n
}

// source is what the decoder takes from Debezium's source block.
type source struct {
	name, db, table, file []byte
	serverID, tsMs        int64
	pos, row              int64
	hasPos                bool
	snapshot              bool
}

func (src *source) set(name []byte, v []byte, prefix string) error {
	s := scanner{b: v}
	if s.null() {
		return nil
	}
	var err error
	switch string(name) {
	case "name":
		src.name, err = stringAt(&s)
	case "db":
		src.db, err = stringAt(&s)
	case "table":
		src.table, err = stringAt(&s)
	case "file":
		src.file, err = stringAt(&s)
	case "server_id":
		src.serverID, err = int64At(&s)
	case "ts_ms":
		src.tsMs, err = int64At(&s)
	case "pos":
		src.pos, err = int64At(&s)
		src.hasPos = err == nil
	case "row":
		src.row, err = int64At(&s)
	case "snapshot":
		switch s.peek() {
		case 't', 'f':
			var lit []byte
			lit, err = s.literal()
			src.snapshot = err == nil && lit[0] == 't'
		default:
			// "true", "first", "first_in_data_collection", "last_in_data_collection",
			// "last", "incremental"; any future value but "false" is a snapshot too.
			var v []byte
			v, err = stringAt(&s)
			src.snapshot = err == nil && len(v) > 0 && string(v) != "false"
		}
	}
	if err != nil {
		return fmt.Errorf("%s%s: %w", prefix, name, err)
	}
	if src.pos < 0 || src.row < 0 {
		return fmt.Errorf("%s%s: negative", prefix, name)
	}
	return nil
}

// stringAt reads a string value; it aliases the input unless it had escapes.
func stringAt(s *scanner) ([]byte, error) {
	raw, esc, err := s.str()
	if err == nil && esc {
		raw, err = appendUnescaped(nil, raw)
	}
	return raw, err
}

func (d *Decoder) parseSource(v []byte) (source, error) {
	var src source
	s := scanner{b: v}
	if err := s.begin('{'); err != nil {
		return src, errors.New("debezium: source is not an object")
	}
	for n := 0; ; n++ {
		key, ok, err := s.member(n)
		if err != nil {
			return src, fmt.Errorf("debezium: source: %w", err)
		}
		if !ok {
			return src, nil
		}
		val, err := s.value()
		if err != nil {
			return src, fmt.Errorf("debezium: source: %w", err)
		}
		if err := src.set(key, val, "source."); err != nil {
			return src, fmt.Errorf("debezium: %w", err)
		}
	}
}

// serverName is the message's Debezium server name, or the config's
// server_name when the message names none (flattened compact rows).
func (d *Decoder) serverName(name []byte) string {
	if len(name) == 0 {
		return d.cfg.ServerName
	}
	return d.names.get(name, nil)
}

// header fills the fields every change shares and applies only_listed.
func (d *Decoder) header(src *source, table string, what string) (cdc.Change, *cdc.Table, error) {
	ch := cdc.Change{
		Table:    table,
		Server:   d.serverName(src.name),
		ServerID: src.serverID,
		CommitMs: src.tsMs,
		Snapshot: src.snapshot,
	}
	if src.file == nil || !src.hasPos {
		return ch, nil, fmt.Errorf("debezium: %s: the binlog position (file, pos) is missing: cannot order the change", what)
	}
	seq, ok := binlogSeq(src.file)
	if !ok {
		_, err := cdc.BinlogSeq(string(src.file))
		return ch, nil, fmt.Errorf("debezium: %s: %w", what, err)
	}
	ch.Version = cdc.NewVersion(seq, uint64(src.pos), uint64(src.row))
	t, listed := d.cfg.Lookup(table)
	if d.cfg.OnlyListed && !listed {
		ch.Op, ch.Reason = cdc.OpIgnore, "unlisted"
		return ch, nil, nil
	}
	return ch, t, nil
}

// binlogSeq is cdc.BinlogSeq without converting the name to a string.
func binlogSeq(file []byte) (uint64, bool) {
	digits := file[bytes.LastIndexByte(file, '.')+1:]
	if len(digits) == 0 || len(digits) > 19 || !isDigits(digits) {
		return 0, false
	}
	var n uint64
	for _, c := range digits {
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// envelope decodes a change event with before/after/source/op.
func (d *Decoder) envelope(st *state, p *plan, m *members, key []byte) (cdc.Change, error) {
	var op cdc.Op
	switch string(m.op) {
	case `"c"`, `"u"`, `"d"`, `"r"`, `"t"`:
		op = cdc.Op(m.op[1])
	default:
		return cdc.Change{}, fmt.Errorf("debezium: op %s is not c, u, d, r or t", truncate(m.op))
	}
	if m.source == nil {
		return cdc.Change{}, errors.New("debezium: change event has no source block")
	}
	src, err := d.parseSource(m.source)
	if err != nil {
		return cdc.Change{}, err
	}
	if len(src.db) == 0 || len(src.table) == 0 {
		return cdc.Change{}, errors.New("debezium: source.db or source.table is missing")
	}
	ch, t, err := d.header(&src, d.names.get(src.db, src.table), "source")
	if err != nil || ch.Op == cdc.OpIgnore {
		return ch, err
	}
	ch.Op, ch.EventMs = op, optInt(m.tsMs)
	if op == cdc.OpTruncate {
		return ch, nil
	}
	image, what, rp := m.after, "after", (*rowPlan)(nil)
	if p != nil {
		rp = p.after
	}
	if op == cdc.OpDelete {
		image, what = m.before, "before"
		if p != nil {
			rp = p.before
		}
	}
	if image == nil || (&scanner{b: image}).null() {
		if op == cdc.OpDelete && len(key) > 0 {
			// No before image (binlog_row_image=MINIMAL leaves only the key
			// columns, a converter may drop it): the Debezium key still names
			// the row.
			return d.finish(st, ch, t, d.reg.Load().Lookup(ch.Table), key)
		}
		return ch, fmt.Errorf("debezium: op %c without %s", op, what)
	}
	if p != nil && rp == nil {
		return ch, fmt.Errorf("debezium: schema has no %s struct", what)
	}
	ts := d.reg.Load().Lookup(ch.Table)
	if err := st.decodeRow(image, rp, t, ts, d.cfg.DecimalHandlingMode, what); err != nil {
		return ch, err
	}
	return d.finish(st, ch, t, ts, key)
}

// flat decodes a row flattened by ExtractNewRecordState; its position and
// op come from the add.fields columns (st.meta).
func (d *Decoder) flat(st *state, rp *rowPlan, schemaTable string, body, key []byte) (cdc.Change, error) {
	var src source
	var op cdc.Op = cdc.OpUpdate // upserts apply alike; c/u/r only matter when __op says so
	deleted := false
	var eventMs int64
	for _, f := range st.meta {
		switch string(f.name[len(metaPrefix):]) {
		case "op":
			switch string(f.value) {
			case `"c"`, `"u"`, `"d"`, `"r"`:
				op = cdc.Op(f.value[1])
			case `"t"`:
				op = cdc.OpTruncate
			default:
				return cdc.Change{}, fmt.Errorf("debezium: __op %s is not c, u, d, r or t", truncate(f.value))
			}
		case "deleted":
			deleted = string(f.value) == `"true"` || string(f.value) == "true"
		case "ts_ms":
			eventMs = optInt(f.value)
		default:
			prefix := metaPrefix
			field, cut := bytes.CutPrefix(f.name[len(metaPrefix):], []byte("source_"))
			if cut {
				prefix = metaPrefix + "source_"
			}
			if err := src.set(field, f.value, prefix); err != nil {
				return cdc.Change{}, fmt.Errorf("debezium: %w", err)
			}
		}
	}
	if deleted {
		op = cdc.OpDelete
	}
	if !src.hasPos || src.file == nil {
		return cdc.Change{}, errors.New("debezium: the row has no op/source and no binlog position: " +
			"ExtractNewRecordState must add it (transforms.<name>.add.fields=op,source.file,source.pos,source.row,source.db,source.table)")
	}
	table := schemaTable
	if len(src.db) > 0 && len(src.table) > 0 {
		table = d.names.get(src.db, src.table)
	}
	if table == "" {
		return cdc.Change{}, errors.New("debezium: flattened row names no table: add source.db,source.table to the ExtractNewRecordState add.fields")
	}
	ch, t, err := d.header(&src, table, "add.fields")
	if err != nil || ch.Op == cdc.OpIgnore {
		return ch, err
	}
	ch.Op, ch.EventMs = op, eventMs
	if op == cdc.OpTruncate {
		return ch, nil
	}
	if op == cdc.OpRead {
		ch.Snapshot = true
	}
	ts := d.reg.Load().Lookup(ch.Table)
	if err := st.decodeRow(body, rp, t, ts, d.cfg.DecimalHandlingMode, "row"); err != nil {
		return ch, err
	}
	return d.finish(st, ch, t, ts, key)
}

// decodeRow decodes a row image into st.fields/st.vals. Column types come,
// first that applies, from the schema in the message (refined by a declared
// type where the schema cannot tell), the config's types:, the column
// registry (ts, may be nil), or, with neither, the value as written. A
// schemaless column the registry does not type while the table has an
// entry sets st.untyped.
func (st *state) decodeRow(image []byte, rp *rowPlan, t *cdc.Table, ts *cdc.TableSchema, mode cdc.DecimalMode, what string) error {
	s := scanner{b: image}
	if err := s.begin('{'); err != nil {
		return fmt.Errorf("debezium: %s is not an object", what)
	}
	if rp != nil {
		for i := range rp.cols {
			c := &rp.cols[i]
			k, scale := c.kind, c.scale
			if ct, ok := declaredType(t, ts, c.name); ok {
				k, scale = declared(k, scale, ct)
			}
			st.fields = append(st.fields, field{name: c.nameB, quoted: c.quoted, kind: k, scale: scale, start: -1})
		}
	}
	for n := 0; ; n++ {
		name, ok, err := s.member(n)
		if err != nil {
			return fmt.Errorf("debezium: %s: %w", what, err)
		}
		if !ok {
			return nil
		}
		var f *field
		if rp != nil {
			i := rp.lookup(name, n)
			if i < 0 {
				return fmt.Errorf("debezium: %s.%s is not in the schema", what, truncate(name))
			}
			f = &st.fields[i]
		} else {
			k, scale := kPass, 0
			if bytes.HasPrefix(name, []byte(metaPrefix)) {
				k = kMeta
			} else if ct, ok := declaredType(t, ts, string(name)); ok {
				k, scale = typeKind(ct, mode)
			} else if ts != nil {
				st.untyped = true
			}
			st.fields = append(st.fields, field{name: name, kind: k, scale: scale, start: -1})
			f = &st.fields[len(st.fields)-1]
		}
		if f.kind == kMeta {
			if _, err := s.value(); err != nil {
				return fmt.Errorf("debezium: %s.%s: %w", what, name, err)
			}
			continue
		}
		start := len(st.vals)
		st.vals, err = st.cv.convert(st.vals, &s, f.kind, f.scale)
		if err != nil {
			return fmt.Errorf("debezium: %s.%s: %w", what, truncate(name), err)
		}
		f.start, f.end = start, len(st.vals)
	}
}

// declaredType is a column's type from the config's types:, else from the
// column registry.
func declaredType(t *cdc.Table, ts *cdc.TableSchema, col string) (cdc.ColumnType, bool) {
	if ct, ok := t.ColumnTypes[col]; ok {
		return ct, true
	}
	if ts != nil {
		return ts.Type(col)
	}
	return cdc.ColumnType{}, false
}

// finish builds the key and, for upserts, the row (none for an untyped
// row: the store leaves a marker).
func (d *Decoder) finish(st *state, ch cdc.Change, t *cdc.Table, ts *cdc.TableSchema, key []byte) (cdc.Change, error) {
	if err := st.buildKey(d, ch.Table, t, ts, key); err != nil {
		return ch, err
	}
	ch.Key = string(st.key)
	if ch.Op == cdc.OpDelete {
		return ch, nil
	}
	if st.untyped {
		ch.Untyped = true
		return ch, nil
	}
	filter := len(t.Columns) > 0 || len(t.Exclude) > 0
	out := append(st.out, '{')
	for i := range st.fields {
		f := &st.fields[i]
		if f.kind == kMeta || filter && !t.Keep(string(f.name)) {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		if f.quoted != nil {
			out = append(out, f.quoted...)
		} else {
			out = appendColumnName(out, f.name)
			out = append(out, ':')
		}
		if f.start < 0 {
			out = append(out, "null"...)
		} else {
			out = append(out, st.vals[f.start:f.end]...)
		}
	}
	out = append(out, '}')
	st.out = out
	ch.Row = bytes.Clone(out)
	return ch, nil
}

// appendColumnName writes a column name as a JSON string; names without
// escapes or invalid UTF-8 are copied.
func appendColumnName(dst, name []byte) []byte {
	for _, c := range name {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return appendName(dst, string(name))
		}
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"')
}

// buildKey writes the Redis key: key columns from the config, else from
// the column registry, else the Debezium key's fields; values from the row
// image, else from the key.
func (st *state) buildKey(d *Decoder, table string, t *cdc.Table, ts *cdc.TableSchema, key []byte) error {
	if err := st.parseKey(key); err != nil {
		return err
	}
	cols := t.Key
	if len(cols) == 0 && ts != nil {
		cols = ts.Key
	}
	n := len(cols)
	if n == 0 {
		n = len(st.keys)
	}
	if n == 0 {
		return fmt.Errorf("debezium: no key for %s: no key columns in the config or the column registry and no Debezium key (run cachectl schema sync, set key: in the table config, or turn on debezium.sink.pubsub.ordering.enabled)", table)
	}
	for i := 0; i < n; i++ {
		var name []byte
		if len(cols) > 0 {
			name = []byte(cols[i])
		} else {
			name = st.keys[i].name
		}
		part, err := st.keyPart(name)
		if err != nil {
			return fmt.Errorf("debezium: no key for %s: %w", table, err)
		}
		st.parts = append(st.parts, part)
	}
	var err error
	if st.key, err = cdc.AppendKey(st.key[:0], d.cfg.Prefix, table, st.parts...); err != nil {
		return fmt.Errorf("debezium: no key for %s: %w", table, err)
	}
	return nil
}

func (st *state) keyPart(name []byte) ([]byte, error) {
	for i := range st.fields {
		f := &st.fields[i]
		if f.kind != kMeta && string(f.name) == string(name) {
			if f.start < 0 || string(st.vals[f.start:f.end]) == "null" {
				return nil, fmt.Errorf("key column %q is null", name)
			}
			return st.vals[f.start:f.end], nil
		}
	}
	for _, k := range st.keys {
		if string(k.name) == string(name) {
			start := len(st.vals)
			v, err := st.cv.convert(st.vals, &scanner{b: k.value}, kPass, 0)
			if err != nil {
				return nil, fmt.Errorf("key column %q: %w", name, err)
			}
			st.vals = v
			if string(v[start:]) == "null" {
				return nil, fmt.Errorf("key column %q is null", name)
			}
			return v[start:], nil
		}
	}
	return nil, fmt.Errorf("key column %q is neither in the row nor in the Debezium key", name)
}

// parseKey reads the Debezium key (with or without schema) into st.keys.
func (st *state) parseKey(key []byte) error {
	s := scanner{b: key}
	if s.atEnd() || s.null() {
		return nil
	}
	s.i = 0
	if s.peek() != '{' {
		return errors.New("debezium: key is not a JSON object")
	}
	obj := key
	var m members
	mark := len(st.meta)
	if err := st.collect(&s, &m); err != nil {
		return fmt.Errorf("debezium: key: %w", err)
	}
	st.meta = st.meta[:mark]
	if m.n == 2 && m.hasSchemaField && m.payload != nil {
		obj = m.payload
		if (&scanner{b: obj}).null() {
			return nil
		}
	}
	s = scanner{b: obj}
	if err := s.begin('{'); err != nil {
		return errors.New("debezium: key payload is not a JSON object")
	}
	for n := 0; ; n++ {
		name, ok, err := s.member(n)
		if err != nil {
			return fmt.Errorf("debezium: key: %w", err)
		}
		if !ok {
			return nil
		}
		v, err := s.value()
		if err != nil {
			return fmt.Errorf("debezium: key: %w", err)
		}
		st.keys = append(st.keys, span{name, v})
	}
}

// maxNames bounds the interned names (tables and servers).
const maxNames = 4096

// interner hands out one string per table or server name so that decoding
// does not allocate it per message.
type interner struct {
	mu sync.RWMutex // guards m
	m  map[string]string
}

// get returns a, or "a.b" when b is not nil, as a shared string.
func (in *interner) get(a, b []byte) string {
	var tmp [128]byte
	k := append(tmp[:0], a...)
	if b != nil {
		k = append(k, '.')
		k = append(k, b...)
	}
	in.mu.RLock()
	s, ok := in.m[string(k)]
	in.mu.RUnlock()
	if ok {
		return s
	}
	s = string(k)
	in.mu.Lock()
	if len(in.m) >= maxNames {
		clear(in.m)
	}
	in.m[s] = s
	in.mu.Unlock()
	return s
}
