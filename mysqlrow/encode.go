package mysqlrow

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// kind is how a column's value is encoded; it comes from the column's type in
// information_schema, never from the value.
type kind uint8

const (
	kindInt kind = iota
	kindUint
	kindFloat32
	kindFloat64
	kindDecimal
	kindString
	kindBytes
	kindDate
	kindDateTime
	kindTimestamp
	kindTime
	kindBit
	kindJSON
	kindGeometry
)

// kinds maps information_schema.COLUMNS.DATA_TYPE to a kind. Integer types
// become kindUint when COLUMN_TYPE says unsigned; longtext becomes kindJSON
// on MariaDB when a json_valid check guards it.
var kinds = map[string]kind{
	"tinyint": kindInt, "smallint": kindInt, "mediumint": kindInt, "int": kindInt, "integer": kindInt,
	"bigint": kindInt, "year": kindInt,
	"float": kindFloat32, "double": kindFloat64, "real": kindFloat64,
	"decimal": kindDecimal, "numeric": kindDecimal,
	"char": kindString, "varchar": kindString, "tinytext": kindString, "text": kindString,
	"mediumtext": kindString, "longtext": kindString, "enum": kindString, "set": kindString,
	"binary": kindBytes, "varbinary": kindBytes, "tinyblob": kindBytes, "blob": kindBytes,
	"mediumblob": kindBytes, "longblob": kindBytes,
	"date": kindDate, "datetime": kindDateTime, "timestamp": kindTimestamp, "time": kindTime,
	"bit": kindBit, "json": kindJSON,
	"geometry": kindGeometry, "point": kindGeometry, "linestring": kindGeometry, "polygon": kindGeometry,
	"multipoint": kindGeometry, "multilinestring": kindGeometry, "multipolygon": kindGeometry,
	"geometrycollection": kindGeometry, "geomcollection": kindGeometry,
}

// appendValue appends the canonical JSON of one column value as the driver
// returned it (nil, int64, uint64, float32, float64 or []byte: the text
// protocol with interpolated parameters, see Configure).
func appendValue(dst []byte, c *column, v any) ([]byte, error) {
	if v == nil {
		return append(dst, "null"...), nil
	}
	switch c.kind {
	case kindInt:
		switch x := v.(type) {
		case int64:
			return cdc.AppendInt(dst, x), nil
		case []byte:
			n, err := strconv.ParseInt(string(x), 10, 64)
			if err != nil {
				return dst, err
			}
			return cdc.AppendInt(dst, n), nil
		}
	case kindUint:
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return dst, fmt.Errorf("unsigned value %d", x)
			}
			return cdc.AppendUint(dst, uint64(x)), nil
		case uint64:
			return cdc.AppendUint(dst, x), nil
		case []byte:
			n, err := strconv.ParseUint(string(x), 10, 64)
			if err != nil {
				return dst, err
			}
			return cdc.AppendUint(dst, n), nil
		}
	case kindFloat32, kindFloat64:
		bits := 64
		if c.kind == kindFloat32 {
			bits = 32
		}
		switch x := v.(type) {
		case float64:
			return cdc.AppendFloat(dst, x, bits), nil
		case float32:
			return cdc.AppendFloat(dst, float64(x), bits), nil
		case []byte:
			f, err := strconv.ParseFloat(string(x), bits)
			if err != nil {
				return dst, err
			}
			return cdc.AppendFloat(dst, f, bits), nil
		}
	case kindDecimal:
		if x, ok := v.([]byte); ok {
			return cdc.AppendDecimalText(dst, string(x), c.scale)
		}
	case kindString:
		if x, ok := v.([]byte); ok {
			return cdc.AppendString(dst, string(x)), nil
		}
	case kindBytes:
		if x, ok := v.([]byte); ok {
			return cdc.AppendBytes(dst, x), nil
		}
	case kindDate, kindDateTime, kindTimestamp:
		if x, ok := v.([]byte); ok {
			return appendDateTime(dst, c, string(x))
		}
	case kindTime:
		if x, ok := v.([]byte); ok {
			micros, err := parseTime(string(x))
			if err != nil {
				return dst, err
			}
			return cdc.AppendTime(dst, micros), nil
		}
	case kindBit:
		if x, ok := v.([]byte); ok {
			return cdc.AppendBits(dst, x), nil
		}
	case kindJSON:
		if x, ok := v.([]byte); ok {
			return cdc.AppendJSON(dst, x)
		}
	case kindGeometry:
		// MySQL's internal geometry format, which is also what the binlog
		// (and so Debezium) carries: a little-endian 4-byte SRID, then WKB.
		if x, ok := v.([]byte); ok {
			if len(x) < 4 {
				return dst, fmt.Errorf("geometry of %d bytes has no SRID", len(x))
			}
			return cdc.AppendGeometry(dst, x[4:], int64(binary.LittleEndian.Uint32(x))), nil
		}
	}
	return dst, fmt.Errorf("unexpected driver value %T", v)
}

// appendDateTime parses "YYYY-MM-DD[ HH:MM:SS[.ffffff]]". MySQL's zero
// dates ("0000-00-00...") become null in a nullable column and the epoch
// otherwise, as Debezium represents them.
func appendDateTime(dst []byte, c *column, s string) ([]byte, error) {
	bad := func() ([]byte, error) { return dst, fmt.Errorf("date/time value %q", s) }
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return bad()
	}
	y, ok1 := atoi(s[0:4])
	mo, ok2 := atoi(s[5:7])
	d, ok3 := atoi(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return bad()
	}
	var h, mi, sec, nanos int
	if len(s) > 10 {
		if len(s) < 19 || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
			return bad()
		}
		var ok4, ok5, ok6 bool
		h, ok4 = atoi(s[11:13])
		mi, ok5 = atoi(s[14:16])
		sec, ok6 = atoi(s[17:19])
		if !ok4 || !ok5 || !ok6 {
			return bad()
		}
		if len(s) > 19 {
			f, ok := fraction(s[19:])
			if !ok {
				return bad()
			}
			nanos = f
		}
	}
	if y == 0 && mo == 0 && d == 0 {
		if c.nullable {
			return append(dst, "null"...), nil
		}
		y, mo, d, h, mi, sec, nanos = 1970, 1, 1, 0, 0, 0, 0
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nanos, time.UTC)
	switch c.kind {
	case kindDate:
		return cdc.AppendDate(dst, floorDiv(t.Unix(), 86400)), nil
	case kindTimestamp:
		return cdc.AppendTimestamp(dst, t), nil
	}
	return cdc.AppendDateTime(dst, t), nil
}

// parseTime parses a TIME value "[-]H+:MM:SS[.ffffff]" into microseconds.
func parseTime(s string) (int64, error) {
	orig := s
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	i := 0
	for i < len(s) && s[i] != ':' {
		i++
	}
	if i == 0 || len(s) < i+6 || s[i+3] != ':' {
		return 0, fmt.Errorf("time value %q", orig)
	}
	h, ok1 := atoi(s[:i])
	m, ok2 := atoi(s[i+1 : i+3])
	sec, ok3 := atoi(s[i+4 : i+6])
	nanos, ok4 := 0, true
	if len(s) > i+6 {
		nanos, ok4 = fraction(s[i+6:])
	}
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, fmt.Errorf("time value %q", orig)
	}
	micros := (int64(h)*3600+int64(m)*60+int64(sec))*1e6 + int64(nanos/1000)
	if neg {
		micros = -micros
	}
	return micros, nil
}

// fraction parses ".ffffff" (1 to 9 digits) into nanoseconds.
func fraction(s string) (int, bool) {
	if len(s) < 2 || len(s) > 10 || s[0] != '.' {
		return 0, false
	}
	n, ok := atoi(s[1:])
	if !ok {
		return 0, false
	}
	for i := len(s) - 1; i < 9; i++ {
		n *= 10
	}
	return n, true
}

func atoi(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
