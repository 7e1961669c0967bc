package changegen

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// colType is how a column is stored in MySQL, and so how Debezium encodes it.
type colType uint8

const (
	tInt16      colType = iota // TINYINT, SMALLINT: int16
	tInt32                     // MEDIUMINT, INT: int32
	tInt64                     // BIGINT: int64
	tUint64                    // BIGINT UNSIGNED, precise: Decimal bytes, scale 0
	tDecimal                   // DECIMAL(p,s), precise: Decimal bytes
	tFloat32                   // FLOAT: float
	tFloat64                   // DOUBLE: double
	tString                    // VARCHAR
	tEnum                      // ENUM: io.debezium.data.Enum
	tSet                       // SET: io.debezium.data.EnumSet
	tDate                      // DATE: io.debezium.time.Date, days
	tDateTime3                 // DATETIME(3): io.debezium.time.Timestamp, ms
	tDateTime6                 // DATETIME(6): io.debezium.time.MicroTimestamp, µs
	tTimestamp6                // TIMESTAMP(6): io.debezium.time.ZonedTimestamp, ISO text
	tTime6                     // TIME(6): io.debezium.time.MicroTime, µs
	tBlob                      // BLOB: bytes (base64)
	tBit1                      // BIT(1): boolean
	tBits                      // BIT(n>1): io.debezium.data.Bits, little-endian bytes
	tJSON                      // JSON: io.debezium.data.Json, text
	tGeometry                  // GEOMETRY: io.debezium.data.geometry.Geometry struct
)

// column is one column of a model table.
type column struct {
	name     string
	typ      colType
	sqlType  string // as in CACHE_CONFIG types, e.g. "decimal(10,2)"
	optional bool   // nullable
	scale    int    // tDecimal
	prec     int    // tDecimal precision, tBits width
	allowed  string // tEnum, tSet: the members in definition order
}

// ddlType is the column's type in CREATE TABLE: sqlType, with the members
// of an ENUM or SET.
func (c *column) ddlType() string {
	if c.typ != tEnum && c.typ != tSet {
		return c.sqlType
	}
	members := strings.Split(c.allowed, ",")
	for i, m := range members {
		members[i] = "'" + m + "'"
	}
	return c.sqlType + "(" + strings.Join(members, ",") + ")"
}

// geometry is a spatial value: WKB and SRID, as Debezium splits MySQL's
// internal format.
type geometry struct {
	wkb  []byte
	srid int32
}

// table is one table of the model.
type table struct {
	name string   // without the database
	cols []column // in table order
	key  []int    // indices of the primary-key columns
	// keyValues maps a key number (0..keys-1) to the key columns' values.
	keyValues func(k int) []any
	// fill sets the non-key columns of row to new random values.
	fill func(r *rand.Rand, row []any)
}

var (
	firstNames = []string{"Sally", "George", "Edward", "Anne", "José", "Zoë", "Łukasz", "Søren", "李", "Ñandú",
		"O'Brien", "Renée", "Dmitrï", "Ğül", "Mårten", "山田", "Chloé 🙂"}
	lastNames = []string{"Thomas", "Bailey", "Walker", "Kretchmar", "Müller", "García", "Nguyễn", "Дмитриев",
		"Smith \"Jr\"", "Back\\slash", "Tab\there", "Line\nbreak", "<b>&amp;</b>", "Ctl\u0001x", "Ωmega"}
	products = []string{"hammer", "spare tyre", "car battery", "12-pack of drill bits", "box of 100 nails",
		"rocks", "jacket", "Schraubenzieher", "ねじ回し", "café crème"}
	enumMembers = []string{"small", "medium", "large"}
	setMembers  = []string{"red", "green", "blue"}
)

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

// newTables returns the model: customers, order_items and all_types.
func newTables() []*table {
	customers := &table{
		name: "customers",
		cols: []column{
			{name: "id", typ: tInt32, sqlType: "int"},
			{name: "first_name", typ: tString, sqlType: "varchar(255)"},
			{name: "last_name", typ: tString, sqlType: "varchar(255)"},
			{name: "email", typ: tString, sqlType: "varchar(255)"},
		},
		key:       []int{0},
		keyValues: func(k int) []any { return []any{int32(1001 + k)} },
		fill: func(r *rand.Rand, row []any) {
			first, last := pick(r, firstNames), pick(r, lastNames)
			row[1], row[2] = first, last
			row[3] = fmt.Sprintf("%s.%d@example.com", strings.ToLower(strings.Fields(first)[0]), r.IntN(100000))
		},
	}
	orderItems := &table{
		name: "order_items",
		cols: []column{
			{name: "order_id", typ: tInt32, sqlType: "int"},
			{name: "line", typ: tInt16, sqlType: "smallint"},
			{name: "product", typ: tString, sqlType: "varchar(255)"},
			{name: "quantity", typ: tInt32, sqlType: "int"},
			{name: "price", typ: tDecimal, sqlType: "decimal(10,2)", scale: 2, prec: 10},
		},
		key:       []int{0, 1},
		keyValues: func(k int) []any { return []any{int32(10001 + k/4), int16(1 + k%4)} },
		fill: func(r *rand.Rand, row []any) {
			row[2] = pick(r, products)
			row[3] = int32(1 + r.IntN(50))
			row[4] = r.Int64N(10000000) - 100 // includes a few negative prices (refunds)
		},
	}
	allTypes := &table{
		name: "all_types",
		cols: []column{
			{name: "id", typ: tInt32, sqlType: "int"},
			{name: "c_tinyint", typ: tInt16, sqlType: "tinyint", optional: true},
			{name: "c_smallint", typ: tInt16, sqlType: "smallint", optional: true},
			{name: "c_mediumint", typ: tInt32, sqlType: "mediumint", optional: true},
			{name: "c_int", typ: tInt32, sqlType: "int", optional: true},
			{name: "c_bigint", typ: tInt64, sqlType: "bigint", optional: true},
			{name: "c_ubigint", typ: tUint64, sqlType: "bigint unsigned", optional: true, prec: 20},
			{name: "c_decimal", typ: tDecimal, sqlType: "decimal(10,2)", optional: true, scale: 2, prec: 10},
			{name: "c_float", typ: tFloat32, sqlType: "float", optional: true},
			{name: "c_double", typ: tFloat64, sqlType: "double", optional: true},
			{name: "c_varchar", typ: tString, sqlType: "varchar(64)", optional: true},
			{name: "c_enum", typ: tEnum, sqlType: "enum", optional: true, allowed: strings.Join(enumMembers, ",")},
			{name: "c_set", typ: tSet, sqlType: "set", optional: true, allowed: strings.Join(setMembers, ",")},
			{name: "c_date", typ: tDate, sqlType: "date", optional: true},
			{name: "c_datetime3", typ: tDateTime3, sqlType: "datetime(3)", optional: true},
			{name: "c_datetime6", typ: tDateTime6, sqlType: "datetime(6)", optional: true},
			{name: "c_timestamp6", typ: tTimestamp6, sqlType: "timestamp(6)", optional: true},
			{name: "c_time6", typ: tTime6, sqlType: "time(6)", optional: true},
			{name: "c_blob", typ: tBlob, sqlType: "blob", optional: true},
			{name: "c_bit1", typ: tBit1, sqlType: "bit(1)", optional: true},
			{name: "c_bit12", typ: tBits, sqlType: "bit(12)", optional: true, prec: 12},
			{name: "c_json", typ: tJSON, sqlType: "json", optional: true},
			{name: "c_geometry", typ: tGeometry, sqlType: "geometry", optional: true},
			{name: "c_nullable", typ: tString, sqlType: "varchar(32)", optional: true},
		},
		key:       []int{0},
		keyValues: func(k int) []any { return []any{int32(1 + k)} },
	}
	allTypes.fill = func(r *rand.Rand, row []any) {
		for i, c := range allTypes.cols {
			if i == 0 {
				continue
			}
			row[i] = randomValue(r, c)
		}
	}
	return []*table{customers, orderItems, allTypes}
}

// The orders table's value lists.
var (
	orderStatuses   = []string{"new", "paid", "shipped", "cancelled"}
	orderCurrencies = []string{"EUR", "USD", "GBP"}
	orderTags       = []string{"", "gift", "gift,priority", "fragile,priority"}
	orderNotes      = []string{
		"Leave the parcel with the neighbour at number 12 if nobody answers.",
		"Customer asked for recycled packaging.",
		"Deliver after 18:00 on weekdays; call ahead.",
	}
)

// ordersTable is the wide table of load generation (Cycle, the benchmark):
// 18 columns of mixed MySQL types, a BIGINT key and about 1 KB of row JSON.
// It is not part of the Generator's model.
func ordersTable() *table {
	return &table{
		name: "orders",
		cols: []column{
			{name: "id", typ: tInt64, sqlType: "bigint"},
			{name: "customer_id", typ: tInt32, sqlType: "int"},
			{name: "status", typ: tEnum, sqlType: "enum", allowed: strings.Join(orderStatuses, ",")},
			{name: "email", typ: tString, sqlType: "varchar(255)"},
			{name: "total", typ: tDecimal, sqlType: "decimal(12,2)", scale: 2, prec: 12},
			{name: "discount", typ: tDecimal, sqlType: "decimal(5,2)", scale: 2, prec: 5},
			{name: "currency", typ: tString, sqlType: "char(3)"},
			{name: "quantity", typ: tInt16, sqlType: "smallint"},
			{name: "weight_kg", typ: tFloat64, sqlType: "double", optional: true},
			{name: "is_gift", typ: tInt16, sqlType: "tinyint"},
			{name: "created_at", typ: tDateTime3, sqlType: "datetime(3)"},
			{name: "updated_at", typ: tTimestamp6, sqlType: "timestamp(6)"},
			{name: "ship_date", typ: tDate, sqlType: "date", optional: true},
			{name: "ship_window", typ: tTime6, sqlType: "time(6)", optional: true},
			{name: "tags", typ: tSet, sqlType: "set", optional: true, allowed: "gift,priority,fragile"},
			{name: "attrs", typ: tJSON, sqlType: "json", optional: true},
			{name: "sku_hash", typ: tBlob, sqlType: "binary(16)", optional: true},
			{name: "note", typ: tString, sqlType: "varchar(255)", optional: true},
		},
		key:       []int{0},
		keyValues: func(k int) []any { return []any{int64(k + 1)} },
		fill: func(r *rand.Rand, row []any) {
			id := row[0].(int64)
			created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(id) * time.Minute)
			row[1] = int32(1000 + r.IntN(90000))
			row[2] = pick(r, orderStatuses)
			row[3] = fmt.Sprintf("customer%d@example.com", id)
			row[4] = r.Int64N(10_000_000) // up to 99999.99
			row[5] = r.Int64N(5000)
			row[6] = pick(r, orderCurrencies)
			row[7] = int16(1 + r.IntN(20))
			row[8] = float64(r.IntN(100000)) / 1000
			row[9] = int16(r.IntN(2))
			row[10] = created.Add(time.Duration(r.IntN(1000)) * time.Millisecond)
			row[11] = created.Add(time.Duration(r.IntN(1e6)) * time.Second)
			row[12] = created.Unix()/86400 + int64(r.IntN(10))
			row[13] = int64(8+r.IntN(10)) * 3600 * 1_000_000
			row[14] = pick(r, orderTags)
			row[15] = fmt.Sprintf(`{"channel": "web", "coupon": null, "items": %d}`, 1+r.IntN(9))
			sku := make([]byte, 16)
			for i := range sku {
				sku[i] = byte(r.Uint32())
			}
			row[16] = sku
			row[17] = nil
			if i := r.IntN(len(orderNotes) + 1); i < len(orderNotes) {
				row[17] = orderNotes[i]
			}
		},
	}
}

// modelTable returns the model table called name: an inventory table or
// orders; nil if there is none.
func modelTable(name string) *table {
	for _, t := range append(newTables(), ordersTable()) {
		if t.name == name {
			return t
		}
	}
	return nil
}

// randomValue returns a value of the column's type, sometimes an extreme
// one, and NULL for c_nullable half of the time.
func randomValue(r *rand.Rand, c column) any {
	if c.name == "c_nullable" {
		if r.IntN(2) == 0 {
			return nil
		}
		return pick(r, firstNames)
	}
	edge := r.IntN(8) == 0 // extremes now and then
	switch c.typ {
	case tInt16:
		if c.sqlType == "tinyint" {
			if edge {
				return pick(r, []int16{-128, 127})
			}
			return int16(r.IntN(256) - 128)
		}
		if edge {
			return pick(r, []int16{math.MinInt16, math.MaxInt16})
		}
		return int16(r.IntN(65536) - 32768)
	case tInt32:
		if c.sqlType == "mediumint" {
			if edge {
				return pick(r, []int32{-8388608, 8388607})
			}
			return int32(r.IntN(16777216) - 8388608)
		}
		if edge {
			return pick(r, []int32{math.MinInt32, math.MaxInt32})
		}
		return int32(r.Uint32())
	case tInt64:
		if edge {
			return pick(r, []int64{math.MinInt64, math.MaxInt64})
		}
		return int64(r.Uint64())
	case tUint64:
		if edge {
			return pick(r, []uint64{0, math.MaxUint64, 1 << 63})
		}
		return r.Uint64()
	case tDecimal:
		if edge {
			return pick(r, []int64{9999999999, -9999999999, 0, 5, -5})
		}
		return r.Int64N(2*9999999999+1) - 9999999999
	case tFloat32:
		switch {
		case edge:
			return pick(r, []float32{math.MaxFloat32, -math.SmallestNonzeroFloat32, 1e-7, 3e10, 0})
		default:
			return float32(r.IntN(2000000)-1000000) / 100
		}
	case tFloat64:
		switch {
		case edge:
			return pick(r, []float64{math.MaxFloat64, 5e-324, -1.5e300, 1e21, 1e-7, 123456789012, 0})
		default:
			return float64(r.Int64N(2e12)-1e12) / 1e4
		}
	case tString:
		return pick(r, firstNames) + " " + pick(r, lastNames)
	case tEnum:
		return pick(r, enumMembers)
	case tSet:
		var parts []string
		for _, m := range setMembers {
			if r.IntN(2) == 0 {
				parts = append(parts, m)
			}
		}
		return strings.Join(parts, ",")
	case tDate:
		if edge {
			return pick(r, []int64{-354285, 0, 2932896}) // 1000-01-01, 1970-01-01, 9999-12-31
		}
		return int64(r.IntN(40000) - 10000)
	case tDateTime3:
		return time.UnixMilli(r.Int64N(7e12) - 2e12).UTC()
	case tDateTime6:
		if edge {
			return time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
		}
		return time.UnixMicro(r.Int64N(7e15) - 2e15).UTC()
	case tTimestamp6:
		if edge {
			return time.Date(2038, 1, 19, 3, 14, 7, 999999000, time.UTC)
		}
		// Whole seconds now and then: the fraction is padded or absent.
		if r.IntN(4) == 0 {
			return time.Unix(1+r.Int64N(2147483646), 0).UTC()
		}
		return time.UnixMicro(1e6 + r.Int64N(2147483646e6)).UTC()
	case tTime6:
		const maxTime = (838*3600+59*60+59)*1e6 + 999999
		if edge {
			return pick(r, []int64{-maxTime, maxTime, 0})
		}
		return r.Int64N(2*maxTime+1) - maxTime
	case tBlob:
		b := make([]byte, r.IntN(48))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	case tBit1:
		return r.IntN(2) == 1
	case tBits:
		return uint64(r.IntN(1 << c.prec))
	case tJSON:
		// MySQL prints JSON with a space after ':' and ','; canonical is compact.
		return fmt.Sprintf(`{"n": %d, "tags": [%q, "ü"], "ok": %t, "nested": {"x": null}}`,
			r.IntN(1000), pick(r, products), r.IntN(2) == 0)
	case tGeometry:
		wkb := make([]byte, 21) // little-endian WKB POINT
		wkb[0] = 1
		binary.LittleEndian.PutUint32(wkb[1:], 1)
		binary.LittleEndian.PutUint64(wkb[5:], math.Float64bits(float64(r.IntN(36000)-18000)/100))
		binary.LittleEndian.PutUint64(wkb[13:], math.Float64bits(float64(r.IntN(18000)-9000)/100))
		return geometry{wkb: wkb, srid: pick(r, []int32{0, 4326})}
	}
	panic(fmt.Sprintf("changegen: no generator for column %s", c.name))
}
