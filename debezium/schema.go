package debezium

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
)

// kind is how one field's JSON value becomes canonical JSON.
type kind uint8

const (
	kPass         kind = iota // as written: strings re-escaped minimally, numbers as is, objects compacted
	kInt                      // integer; a boolean (BOOLEAN seen in DDL) as 1/0
	kBool                     // boolean as 1/0
	kFloat32                  // FLOAT
	kFloat64                  // DOUBLE
	kString                   // CHAR, VARCHAR, TEXT, ENUM, SET
	kDecimal                  // Decimal: base64 two's complement + scale
	kDecimalText              // decimal.handling.mode=string/double with a scale from the config
	kUint                     // BIGINT UNSIGNED in precise mode (Decimal, scale 0): an integer
	kDate                     // int32 days since the epoch
	kTimeMs                   // TIME as int32 ms
	kTimeMicros               // TIME as int64 µs
	kTimeNanos                // TIME as int64 ns
	kTsMs                     // DATETIME as int64 ms
	kTsMicros                 // DATETIME as int64 µs
	kTsNanos                  // DATETIME as int64 ns
	kZonedTs                  // TIMESTAMP as an ISO string with zone
	kZonedTime                // ISO time with zone
	kIsoDate                  // time.precision.mode=isostring DATE
	kIsoTime                  // isostring TIME
	kIsoTimestamp             // isostring DATETIME
	kJSON                     // JSON column as a string holding the document
	kBits                     // BIT(n): bytes little-endian, or a boolean for BIT(1)
	kBytes                    // BINARY/BLOB: base64 text
	kGeometry                 // struct {wkb, srid}
	kVarDecimal               // io.debezium.data.VariableScaleDecimal struct {scale, value}
	kMeta                     // ExtractNewRecordState add.fields column (__...): not part of the row
)

// column is the compiled plan of one field of a row struct.
type column struct {
	name   string
	nameB  []byte // name as bytes, for the row image
	quoted []byte // `"name":` in canonical JSON
	kind   kind
	scale  int
}

// rowPlan decodes one row struct (before/after, or a flattened row).
type rowPlan struct {
	cols  []column
	index map[string]int
}

func (r *rowPlan) lookup(name []byte, hint int) int {
	if hint < len(r.cols) && r.cols[hint].name == string(name) {
		return hint
	}
	if i, ok := r.index[string(name)]; ok {
		return i
	}
	return -1
}

// shape is what a value schema describes.
type shape uint8

const (
	shapeEnvelope shape = iota + 1
	shapeFlat
	shapeHeartbeat
	shapeSchemaChange
	shapeTransaction
)

// plan is a compiled value schema.
type plan struct {
	shape  shape
	after  *rowPlan // envelope after, or the flattened row
	before *rowPlan // envelope before
	// table is "db.table" from a flattened row's schema name
	// (<topic.prefix>.<db>.<table>.Value), the fallback when add.fields
	// carries no db/table.
	table string
}

// schemaJSON is Kafka Connect's JsonConverter schema.
type schemaJSON struct {
	Type       string                     `json:"type"`
	Name       string                     `json:"name"`
	Field      string                     `json:"field"`
	Parameters map[string]json.RawMessage `json:"parameters"`
	Fields     []schemaJSON               `json:"fields"`
}

func (s *schemaJSON) param(name string) string {
	raw, ok := s.Parameters[name]
	if !ok {
		return ""
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	return string(raw)
}

func (s *schemaJSON) field(name string) *schemaJSON {
	for i := range s.Fields {
		if s.Fields[i].Field == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// Schema names Debezium gives its records and semantic types.
const (
	nameHeartbeat    = "io.debezium.connector.common.Heartbeat"
	nameServerKey    = "io.debezium.connector.mysql.ServerNameKey"
	nameSchemaChange = "io.debezium.connector.mysql.SchemaChangeValue"
	nameTransaction  = "io.debezium.connector.common.TransactionMetadataValue"
	metaPrefix       = "__" // ExtractNewRecordState's default add.fields.prefix
)

// maxScale bounds decimal scales (MySQL allows 30) so hostile schemas cannot
// ask for absurd padding.
const maxScale = 100

// compileSchema turns a value schema into a plan.
func compileSchema(raw []byte) (*plan, error) {
	var s schemaJSON
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	switch {
	case s.Name == nameHeartbeat || strings.HasSuffix(s.Name, ".Heartbeat"):
		return &plan{shape: shapeHeartbeat}, nil
	case s.Name == nameSchemaChange || strings.HasSuffix(s.Name, ".SchemaChangeValue"):
		return &plan{shape: shapeSchemaChange}, nil
	case s.Name == nameTransaction || strings.HasSuffix(s.Name, ".TransactionMetadataValue"):
		return &plan{shape: shapeTransaction}, nil
	}
	if s.Type != "struct" {
		return nil, fmt.Errorf("schema: type %q is not a struct", s.Type)
	}
	if s.field("op") != nil && s.field("source") != nil && !flatSchema(&s) {
		p := &plan{shape: shapeEnvelope}
		var err error
		if f := s.field("after"); f != nil {
			if p.after, err = compileRow(f, "after"); err != nil {
				return nil, err
			}
		}
		if f := s.field("before"); f != nil {
			if p.before, err = compileRow(f, "before"); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
	row, err := compileRow(&s, "row")
	if err != nil {
		return nil, err
	}
	return &plan{shape: shapeFlat, after: row, table: tableFromSchemaName(s.Name)}, nil
}

// flatSchema reports whether a struct has the fields only
// ExtractNewRecordState adds (__op, __deleted, __source_*): a flattened row,
// whatever its columns are called.
func flatSchema(s *schemaJSON) bool {
	for i := range s.Fields {
		n, ok := strings.CutPrefix(s.Fields[i].Field, metaPrefix)
		if ok && (n == "op" || n == "deleted" || strings.HasPrefix(n, "source_")) {
			return true
		}
	}
	return false
}

// tableFromSchemaName takes "db.table" from "<prefix>.<db>.<table>.Value".
func tableFromSchemaName(name string) string {
	name, ok := strings.CutSuffix(name, ".Value")
	if !ok {
		return ""
	}
	parts := strings.Split(name, ".")
	if len(parts) < 3 {
		return ""
	}
	return parts[len(parts)-2] + "." + parts[len(parts)-1]
}

func compileRow(s *schemaJSON, what string) (*rowPlan, error) {
	if s.Type != "struct" {
		return nil, fmt.Errorf("schema: %s has type %q, want struct", what, s.Type)
	}
	r := &rowPlan{cols: make([]column, len(s.Fields)), index: make(map[string]int, len(s.Fields))}
	for i := range s.Fields {
		f := &s.Fields[i]
		if _, dup := r.index[f.Field]; dup || f.Field == "" {
			return nil, fmt.Errorf("schema: %s field %q is empty or repeated", what, f.Field)
		}
		k, scale, err := fieldKind(f)
		if err != nil {
			return nil, fmt.Errorf("schema: %s.%s: %w", what, f.Field, err)
		}
		if strings.HasPrefix(f.Field, metaPrefix) {
			k = kMeta
		}
		r.cols[i] = column{name: f.Field, nameB: []byte(f.Field), quoted: append(appendName(nil, f.Field), ':'), kind: k, scale: scale}
		r.index[f.Field] = i
	}
	return r, nil
}

// fieldKind maps a field's semantic name, else its literal type, to a kind.
func fieldKind(f *schemaJSON) (kind, int, error) {
	switch f.Name {
	case "org.apache.kafka.connect.data.Decimal":
		scale, err := strconv.Atoi(f.param("scale"))
		if err != nil || scale < 0 || scale > maxScale {
			return 0, 0, fmt.Errorf("decimal scale %q is not a number in 0..%d", f.param("scale"), maxScale)
		}
		// bigint.unsigned.handling.mode=precise emits Decimal with scale 0:
		// no precision before Debezium 2.4, precision 20 since. DECIMAL(20,0)
		// looks the same; declare it in the table's types to keep it a string.
		if p := f.param("connect.decimal.precision"); scale == 0 && (p == "" || p == "20") {
			return kUint, 0, nil
		}
		return kDecimal, scale, nil
	case "io.debezium.data.VariableScaleDecimal":
		return kVarDecimal, 0, nil
	case "io.debezium.time.Date", "org.apache.kafka.connect.data.Date":
		return kDate, 0, nil
	case "io.debezium.time.Time", "org.apache.kafka.connect.data.Time":
		return kTimeMs, 0, nil
	case "io.debezium.time.MicroTime":
		return kTimeMicros, 0, nil
	case "io.debezium.time.NanoTime":
		return kTimeNanos, 0, nil
	case "io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp":
		return kTsMs, 0, nil
	case "io.debezium.time.MicroTimestamp":
		return kTsMicros, 0, nil
	case "io.debezium.time.NanoTimestamp":
		return kTsNanos, 0, nil
	case "io.debezium.time.ZonedTimestamp":
		return kZonedTs, 0, nil
	case "io.debezium.time.ZonedTime":
		return kZonedTime, 0, nil
	case "io.debezium.time.IsoDate":
		return kIsoDate, 0, nil
	case "io.debezium.time.IsoTime":
		return kIsoTime, 0, nil
	case "io.debezium.time.IsoTimestamp":
		return kIsoTimestamp, 0, nil
	case "io.debezium.time.Year":
		return kInt, 0, nil
	case "io.debezium.data.Json":
		return kJSON, 0, nil
	case "io.debezium.data.Bits":
		return kBits, 0, nil
	case "io.debezium.data.Enum", "io.debezium.data.EnumSet":
		return kString, 0, nil
	case "io.debezium.data.geometry.Geometry", "io.debezium.data.geometry.Point":
		return kGeometry, 0, nil
	}
	switch f.Type {
	case "int8", "int16", "int32", "int64":
		return kInt, 0, nil
	case "boolean":
		return kBool, 0, nil
	case "float", "float32": // JsonConverter writes "float" and "double"
		return kFloat32, 0, nil
	case "double", "float64":
		// FLOAT(M,D) is sent as FLOAT64 (see declared); with
		// datatype.propagate.source.type matching it, the schema says so
		// (PropagateSourceMetadataToSchemaParameter: the upper-cased type
		// name in __debezium.source.column.type).
		if strings.HasPrefix(f.param("__debezium.source.column.type"), "FLOAT") {
			return kFloat32, 0, nil
		}
		return kFloat64, 0, nil
	case "string":
		return kString, 0, nil
	case "bytes":
		return kBytes, 0, nil
	case "struct", "array", "map":
		return kPass, 0, nil
	}
	return 0, 0, fmt.Errorf("unknown schema type %q", f.Type)
}

// maxPlans bounds the schema cache; a table has one schema per DDL version,
// so hitting the bound means churn, and starting over is cheap.
const maxPlans = 512

// prefixLen is how much of a schema indexes it for recognising it at the
// start of a message (planCache.known). Debezium schemas of different tables
// share their first bytes ({"type":"struct","fields":[...), so it is long
// enough to reach the first columns.
const prefixLen = 256

// planCache maps schema bytes to compiled plans.
type planCache struct {
	seed maphash.Seed
	mu   sync.RWMutex // guards m, prefixed and compiled
	m    map[uint64]*cachedPlan
	// prefixed indexes the schemas of at least prefixLen bytes by the hash
	// of their first prefixLen bytes.
	prefixed map[uint64][]*cachedPlan
	// compiled counts schema compilations (tests check it stays one per schema).
	compiled int64
}

type cachedPlan struct {
	raw  string
	plan *plan
	err  error
}

func (c *planCache) get(raw []byte) (*plan, error) {
	h := maphash.Bytes(c.seed, raw)
	c.mu.RLock()
	e := c.m[h]
	c.mu.RUnlock()
	if e != nil && e.raw == string(raw) {
		return e.plan, e.err
	}
	p, err := compileSchema(raw)
	e = &cachedPlan{raw: string(raw), plan: p, err: err}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.compiled++
	if len(c.m) >= maxPlans {
		clear(c.m)
		clear(c.prefixed)
	}
	c.m[h] = e
	if len(raw) >= prefixLen {
		ph := maphash.Bytes(c.seed, raw[:prefixLen])
		c.prefixed[ph] = append(c.prefixed[ph], e)
	}
	return p, err
}

// known returns the cached schema that b starts with, if any. A schema is a
// complete JSON object, and no complete object is a proper prefix of
// another, so a match is exactly the message's schema: found this way it
// costs a hash and a memory compare instead of a scan.
func (c *planCache) known(b []byte) *cachedPlan {
	if len(b) < prefixLen {
		return nil
	}
	ph := maphash.Bytes(c.seed, b[:prefixLen])
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.prefixed[ph] {
		if len(b) >= len(e.raw) && string(b[:len(e.raw)]) == e.raw {
			return e
		}
	}
	return nil
}
