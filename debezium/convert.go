package debezium

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

func appendName(dst []byte, name string) []byte { return cdc.AppendString(dst, name) }

// converter holds the scratch space one value conversion needs.
type converter struct {
	tmp []byte // unescaped strings, decoded base64
}

// convert reads one value of the given kind at the cursor and appends its
// canonical JSON to dst.
func (cv *converter) convert(dst []byte, s *scanner, k kind, scale int) ([]byte, error) {
	if s.null() {
		return append(dst, "null"...), nil
	}
	c := s.peek()
	switch k {
	case kPass, kMeta:
		return cv.pass(dst, s)
	case kInt:
		if c == 't' || c == 'f' {
			return cv.boolean(dst, s)
		}
		return integer(dst, s)
	case kBool:
		if c == 't' || c == 'f' {
			return cv.boolean(dst, s)
		}
		return integer(dst, s)
	case kFloat32, kFloat64:
		text, _, err := s.number()
		if err != nil {
			return dst, err
		}
		bits := 64
		if k == kFloat32 {
			bits = 32
		}
		f, err := strconv.ParseFloat(string(text), bits)
		if err != nil {
			return dst, fmt.Errorf("float %s: %w", text, err)
		}
		return cdc.AppendFloat(dst, f, bits), nil
	case kString:
		if c != '"' {
			return dst, errors.New("want a string")
		}
		return cv.str(dst, s)
	case kDecimal:
		if c != '"' {
			return cv.decimalText(dst, s, scale) // decimal.format=numeric
		}
		if err := cv.readBase64(s); err != nil {
			return dst, err
		}
		return appendUnscaled(dst, cv.tmp, scale, true), nil
	case kDecimalText:
		return cv.decimalText(dst, s, scale)
	case kUint:
		return cv.unsigned(dst, s)
	case kDate, kTimeMs, kTimeMicros, kTimeNanos, kTsMs, kTsMicros, kTsNanos:
		if c == '"' {
			return cv.isoText(dst, s, k)
		}
		return temporalInt(dst, s, k)
	case kZonedTs, kZonedTime, kIsoDate, kIsoTime, kIsoTimestamp:
		if c != '"' {
			if k == kZonedTs { // a TIMESTAMP declared in the config, connect mode: ms
				n, err := int64At(s)
				if err != nil {
					return dst, err
				}
				return cdc.AppendTimestamp(dst, time.UnixMilli(n)), nil
			}
			return dst, errors.New("want an ISO date/time string")
		}
		return cv.isoText(dst, s, k)
	case kJSON:
		if c != '"' {
			span, err := s.value() // already a document (schemaless passthrough)
			if err != nil {
				return dst, err
			}
			return cdc.AppendJSON(dst, span)
		}
		if err := cv.text(s); err != nil {
			return dst, err
		}
		return cdc.AppendJSON(dst, cv.tmp)
	case kBits:
		switch {
		case c == 't' || c == 'f':
			return cv.boolean(dst, s)
		case c == '"':
			if err := cv.readBase64(s); err != nil {
				return dst, err
			}
			if len(cv.tmp) > 8 {
				return dst, fmt.Errorf("bits: %d bytes is more than BIT(64)", len(cv.tmp))
			}
			// Debezium writes the bits little-endian; AppendBits wants MySQL's big-endian.
			b := cv.tmp
			for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
				b[i], b[j] = b[j], b[i]
			}
			return cdc.AppendBits(dst, b), nil
		}
		return integer(dst, s)
	case kBytes:
		if c != '"' {
			return dst, errors.New("want a base64 string")
		}
		if err := cv.readBase64(s); err != nil {
			return dst, err
		}
		return cdc.AppendBytes(dst, cv.tmp), nil
	case kGeometry:
		return cv.geometry(dst, s)
	case kVarDecimal:
		return cv.varDecimal(dst, s)
	}
	return dst, fmt.Errorf("unhandled kind %d", k)
}

func (cv *converter) boolean(dst []byte, s *scanner) ([]byte, error) {
	lit, err := s.literal()
	if err != nil {
		return dst, err
	}
	switch lit[0] {
	case 't':
		return append(dst, '1'), nil
	case 'f':
		return append(dst, '0'), nil
	}
	return dst, errors.New("want a boolean")
}

func integer(dst []byte, s *scanner) ([]byte, error) {
	text, isInt, err := s.number()
	if err != nil {
		return dst, err
	}
	if !isInt {
		return dst, fmt.Errorf("%s is not an integer", text)
	}
	return append(dst, text...), nil
}

func int64At(s *scanner) (int64, error) {
	text, isInt, err := s.number()
	if err != nil {
		return 0, err
	}
	if !isInt {
		return 0, fmt.Errorf("%s is not an integer", text)
	}
	n, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("integer %s: %w", text, err)
	}
	return n, nil
}

// temporal bounds keep time arithmetic from overflowing on hostile input:
// MySQL's range is years 1000-9999 (0000 for zero dates).
const (
	maxDays   = 3_000_000               // ±8000 years
	maxMillis = maxDays * 86400 * 1000  // same span in ms
	maxTimeUs = 1000 * 3600 * 1_000_000 // TIME is within ±838:59:59
)

func temporalInt(dst []byte, s *scanner, k kind) ([]byte, error) {
	n, err := int64At(s)
	if err != nil {
		return dst, err
	}
	var limit int64
	switch k {
	case kDate:
		limit = maxDays
	case kTimeMs:
		limit = maxTimeUs / 1000
	case kTimeMicros:
		limit = maxTimeUs
	case kTsMs:
		limit = maxMillis
	case kTsMicros:
		limit = maxMillis * 1000
	}
	if limit != 0 && (n > limit || n < -limit) {
		return dst, fmt.Errorf("temporal value %d is out of range", n)
	}
	switch k {
	case kDate:
		return cdc.AppendDate(dst, n), nil
	case kTimeMs:
		return cdc.AppendTime(dst, n*1000), nil
	case kTimeMicros:
		return cdc.AppendTime(dst, n), nil
	case kTimeNanos:
		return cdc.AppendTime(dst, n/1000), nil
	case kTsMs:
		return cdc.AppendDateTime(dst, time.UnixMilli(n).UTC()), nil
	case kTsMicros:
		return cdc.AppendDateTime(dst, time.UnixMicro(n).UTC()), nil
	default: // kTsNanos
		return cdc.AppendDateTime(dst, time.Unix(0, n).UTC()), nil
	}
}

// isoText converts the ISO strings of time.precision.mode=isostring and
// ZonedTimestamp/ZonedTime; the int kinds accept them too when a schemaless
// column is declared in the config but Debezium ran in isostring mode.
func (cv *converter) isoText(dst []byte, s *scanner, k kind) ([]byte, error) {
	if err := cv.text(s); err != nil {
		return dst, err
	}
	if k == kZonedTs { // the common case, without allocating
		if t, ok := parseUTC(cv.tmp); ok {
			return cdc.AppendTimestamp(dst, t), nil
		}
	}
	text := string(cv.tmp)
	switch k {
	case kDate, kIsoDate:
		t, err := time.Parse("2006-01-02Z07:00", text)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, text); err != nil {
				return dst, fmt.Errorf("date %q: %w", text, err)
			}
		}
		// The calendar date as written, whatever zone suffix it carries.
		midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return cdc.AppendDate(dst, midnight.Unix()/86400), nil
	case kTimeMs, kTimeMicros, kTimeNanos, kIsoTime:
		us, err := parseClock(text)
		if err != nil {
			return dst, err
		}
		return cdc.AppendTime(dst, us), nil
	case kZonedTime:
		t, err := time.Parse("15:04:05.999999999Z07:00", text)
		if err != nil {
			return dst, fmt.Errorf("time %q: %w", text, err)
		}
		t = t.UTC()
		us := int64(t.Hour())*3_600_000_000 + int64(t.Minute())*60_000_000 + int64(t.Second())*1_000_000 + int64(t.Nanosecond()/1000)
		return cdc.AppendTime(dst, us), nil
	case kZonedTs:
		if t, ok := parseUTC(cv.tmp); ok {
			return cdc.AppendTimestamp(dst, t), nil
		}
		t, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			return dst, fmt.Errorf("timestamp %q: %w", text, err)
		}
		return cdc.AppendTimestamp(dst, t), nil
	default: // DATETIME: kTs*, kIsoTimestamp
		t, err := time.Parse(time.RFC3339Nano, text)
		if err != nil {
			if t, err = time.Parse("2006-01-02T15:04:05.999999999", text); err != nil {
				return dst, fmt.Errorf("datetime %q: %w", text, err)
			}
		}
		return cdc.AppendDateTime(dst, t.UTC()), nil
	}
}

// parseUTC parses the form ZonedTimestamp takes for MySQL TIMESTAMP columns,
// "2006-01-02T15:04:05[.fffffffff]Z"; other forms go to time.Parse.
func parseUTC(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[len(b)-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(p []byte) (int, bool) {
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	nanos := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		f, ok := num(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			f *= 10
		}
		nanos = f
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, nanos, time.UTC)
	if t.Day() != d { // Feb 30 and the like: let time.Parse report it
		return time.Time{}, false
	}
	return t, true
}

// parseClock parses a TIME text "[-]H+:MM:SS[.f][Z]" into microseconds.
func parseClock(text string) (int64, error) {
	bad := fmt.Errorf("time %q is not [-]HH:MM:SS[.ffffff]", text)
	t := text
	if n := len(t); n > 0 && t[n-1] == 'Z' {
		t = t[:n-1]
	}
	neg := len(t) > 0 && t[0] == '-'
	if neg {
		t = t[1:]
	}
	var parts [3]int64
	for i := range parts {
		j := 0
		for j < len(t) && j < 4 && '0' <= t[j] && t[j] <= '9' {
			parts[i] = parts[i]*10 + int64(t[j]-'0')
			j++
		}
		if j == 0 || (i > 0 && (j != 2 || parts[i] > 59)) {
			return 0, bad
		}
		t = t[j:]
		if i < 2 {
			if len(t) == 0 || t[0] != ':' {
				return 0, bad
			}
			t = t[1:]
		}
	}
	var frac int64
	if len(t) > 0 {
		if t[0] != '.' || len(t) == 1 || len(t) > 10 {
			return 0, bad
		}
		scale := int64(100_000)
		for _, c := range []byte(t[1:]) {
			if c < '0' || c > '9' {
				return 0, bad
			}
			frac += int64(c-'0') * scale
			scale /= 10
		}
	}
	us := (parts[0]*3600+parts[1]*60+parts[2])*1_000_000 + frac
	if neg {
		us = -us
	}
	return us, nil
}

// text reads a string at the cursor into cv.tmp, unescaped.
func (cv *converter) text(s *scanner) error {
	raw, esc, err := s.str()
	if err != nil {
		return err
	}
	if !esc {
		cv.tmp = append(cv.tmp[:0], raw...)
		return nil
	}
	cv.tmp, err = appendUnescaped(cv.tmp[:0], raw)
	return err
}

// str appends a string value in canonical form. A string with no escapes
// and valid UTF-8 is already canonical: copying it is what AppendString
// would produce.
func (cv *converter) str(dst []byte, s *scanner) ([]byte, error) {
	raw, esc, err := s.str()
	if err != nil {
		return dst, err
	}
	if !esc && utf8.Valid(raw) {
		dst = append(dst, '"')
		dst = append(dst, raw...)
		return append(dst, '"'), nil
	}
	if esc {
		if cv.tmp, err = appendUnescaped(cv.tmp[:0], raw); err != nil {
			return dst, err
		}
		raw = cv.tmp
	}
	return cdc.AppendString(dst, string(raw)), nil
}

// pass appends any value as written, with strings made canonical and
// nested documents compacted.
func (cv *converter) pass(dst []byte, s *scanner) ([]byte, error) {
	switch c := s.peek(); {
	case c == '"':
		return cv.str(dst, s)
	case c == '{' || c == '[':
		span, err := s.value()
		if err != nil {
			return dst, err
		}
		return cdc.AppendJSON(dst, span)
	case c == '-' || '0' <= c && c <= '9':
		text, _, err := s.number()
		if err != nil {
			return dst, err
		}
		return append(dst, text...), nil
	}
	lit, err := s.literal()
	if err != nil {
		return dst, err
	}
	return append(dst, lit...), nil
}

// readBase64 decodes a base64 string at the cursor into cv.tmp.
func (cv *converter) readBase64(s *scanner) error {
	raw, esc, err := s.str()
	if err != nil {
		return err
	}
	if esc { // Jackson may write '/' as "\/"
		if cv.tmp, err = appendUnescaped(cv.tmp[:0], raw); err != nil {
			return err
		}
		raw = append([]byte(nil), cv.tmp...)
	}
	n := base64.StdEncoding.DecodedLen(len(raw))
	if cap(cv.tmp) < n {
		cv.tmp = make([]byte, n)
	}
	m, err := base64.StdEncoding.Decode(cv.tmp[:n], raw)
	if err != nil {
		return fmt.Errorf("base64 %q: %w", truncate(raw), err)
	}
	cv.tmp = cv.tmp[:m]
	return nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// decimalText converts a decimal written as a string or number (string and
// double modes, decimal.format=numeric) to exactly scale decimals.
func (cv *converter) decimalText(dst []byte, s *scanner, scale int) ([]byte, error) {
	var text []byte
	if s.peek() == '"' {
		if err := cv.text(s); err != nil {
			return dst, err
		}
		text = cv.tmp
	} else {
		var err error
		if text, _, err = s.number(); err != nil {
			return dst, err
		}
	}
	if len(text) > 100 || hugeExponent(text) {
		return dst, fmt.Errorf("decimal %q is too long or its exponent too large", truncate(text))
	}
	return cdc.AppendDecimalText(dst, string(text), scale)
}

// hugeExponent reports an exponent beyond ±200, which no DECIMAL needs and
// which would make big.Rat compute enormous powers of ten.
func hugeExponent(text []byte) bool {
	i := bytes.IndexAny(text, "eE")
	if i < 0 {
		return false
	}
	exp := bytes.TrimLeft(text[i+1:], "+-")
	exp = bytes.TrimLeft(exp, "0")
	return len(exp) > 3 || len(exp) == 3 && string(exp) > "200"
}

// unsigned converts BIGINT UNSIGNED. A string is always a Decimal of scale
// 0 as base64 bytes (bigint.unsigned.handling.mode=precise:
// BinlogValueConverters builds SpecialValueDecimal.builder(PRECISE, 20, 0)
// for it). A number is long mode, where Debezium passes the binlog's signed
// long through (convertBigInt): a negative one is the value minus 2^64.
func (cv *converter) unsigned(dst []byte, s *scanner) ([]byte, error) {
	if s.peek() != '"' {
		text, isInt, err := s.number()
		if err != nil {
			return dst, err
		}
		if !isInt {
			return dst, fmt.Errorf("%s is not an integer", text)
		}
		if text[0] != '-' {
			return append(dst, text...), nil
		}
		n, err := strconv.ParseInt(string(text), 10, 64)
		if err != nil {
			return dst, fmt.Errorf("bigint unsigned %s: %w", text, err)
		}
		return strconv.AppendUint(dst, uint64(n), 10), nil
	}
	if err := cv.readBase64(s); err != nil {
		return dst, err
	}
	if len(cv.tmp) > 9 || len(cv.tmp) == 9 && cv.tmp[0] != 0 {
		return dst, fmt.Errorf("bigint unsigned: %d bytes is more than 64 bits", len(cv.tmp))
	}
	return appendUnscaled(dst, cv.tmp, 0, false), nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// appendUnscaled appends a big-endian two's complement integer with scale
// decimals: a quoted DECIMAL when quoted, else a bare integer.
func appendUnscaled(dst, b []byte, scale int, quoted bool) []byte {
	if len(b) <= 8 {
		var n int64
		if len(b) > 0 && b[0]&0x80 != 0 {
			n = -1
		}
		for _, c := range b {
			n = n<<8 | int64(c)
		}
		if !quoted {
			return strconv.AppendInt(dst, n, 10)
		}
		return cdc.AppendDecimalInt64(dst, n, scale)
	}
	v := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 { // negative: subtract 2^(8*len)
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if !quoted {
		return v.Append(dst, 10)
	}
	return cdc.AppendDecimal(dst, v, scale)
}

// geometry converts Debezium's spatial struct {wkb, srid} (Point also has
// x and y, which the wkb already holds).
func (cv *converter) geometry(dst []byte, s *scanner) ([]byte, error) {
	if err := s.begin('{'); err != nil {
		return dst, errors.New("geometry: want an object {wkb, srid}")
	}
	var wkb []byte
	var srid int64
	for n := 0; ; n++ {
		key, ok, err := s.member(n)
		if err != nil {
			return dst, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "wkb":
			if err := cv.readBase64(s); err != nil {
				return dst, fmt.Errorf("geometry wkb: %w", err)
			}
			wkb = append(wkb[:0], cv.tmp...)
		case "srid":
			if s.null() {
				continue
			}
			if srid, err = int64At(s); err != nil {
				return dst, fmt.Errorf("geometry srid: %w", err)
			}
		default:
			if _, err := s.value(); err != nil {
				return dst, err
			}
		}
	}
	if wkb == nil {
		return dst, errors.New("geometry: no wkb")
	}
	return cdc.AppendGeometry(dst, wkb, srid), nil
}

// varDecimal converts io.debezium.data.VariableScaleDecimal {scale, value}.
func (cv *converter) varDecimal(dst []byte, s *scanner) ([]byte, error) {
	if err := s.begin('{'); err != nil {
		return dst, errors.New("variable scale decimal: want an object {scale, value}")
	}
	var value []byte
	scale := int64(-1)
	for n := 0; ; n++ {
		key, ok, err := s.member(n)
		if err != nil {
			return dst, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "scale":
			if scale, err = int64At(s); err != nil {
				return dst, err
			}
		case "value":
			if err := cv.readBase64(s); err != nil {
				return dst, err
			}
			value = append(value[:0], cv.tmp...)
		default:
			if _, err := s.value(); err != nil {
				return dst, err
			}
		}
	}
	if value == nil || scale < 0 || scale > maxScale {
		return dst, errors.New("variable scale decimal: needs value and a scale in 0..100")
	}
	return appendUnscaled(dst, value, int(scale), true), nil
}

// typeKind maps a column type declared in the config or the column
// registry (for schemaless events) to a kind, under the encodings of the
// compact profile (the README's Debezium settings): DECIMAL by mode, DATE
// as days, DATETIME(0-3) as ms and DATETIME(4-6) as µs and TIME as µs
// (time.precision.mode=adaptive_time_microseconds: JdbcValueConverters.
// convertTimestamp picks by the column's precision; BinlogValueConverters
// sends TIME through convertDurationToMicroseconds), TIMESTAMP as a UTC
// ZonedTimestamp string, binary as base64.
func typeKind(ct cdc.ColumnType, mode cdc.DecimalMode) (kind, int) {
	switch ct.Base {
	case "int", "year":
		return kInt, 0
	case "bool":
		return kBool, 0
	case "bigint unsigned":
		return kUint, 0
	case "decimal":
		// precise: a base64 string (a number when JsonConverter's
		// decimal.format=numeric); string: SpecialValueDecimal.fromLogical
		// writes BigDecimal.toPlainString(); double: a number.
		if mode == cdc.DecimalPrecise {
			return kDecimal, ct.Scale
		}
		return kDecimalText, ct.Scale
	case "float":
		// FLOAT(M,D) arrives as the float32 widened to a double (below):
		// parsing at 32 bits gives back the stored value.
		return kFloat32, 0
	case "double":
		return kFloat64, 0
	case "date":
		return kDate, 0
	case "datetime":
		if ct.Precision <= 3 {
			return kTsMs, 0
		}
		return kTsMicros, 0
	case "timestamp":
		return kZonedTs, 0
	case "time":
		return kTimeMicros, 0
	case "bit":
		return kBits, 0
	case "json":
		return kJSON, 0
	case "binary":
		return kBytes, 0
	case "geometry":
		return kGeometry, 0
	case "string":
		return kString, 0
	}
	return kPass, 0
}

// declared adjusts a schema's kind by the type the config declares for the
// column, where the schema alone cannot tell: DECIMAL(20,0) from BIGINT
// UNSIGNED, and decimals in string or double mode.
func declared(k kind, scale int, ct cdc.ColumnType) (kind, int) {
	switch {
	case k == kFloat64 && ct.Base == "float":
		// FLOAT(M,D): BinlogValueConverters.schemaBuilder gives FLOAT32 only
		// to a FLOAT without scale and length <= 24; the rest falls to
		// JdbcValueConverters (Types.FLOAT -> float64), whose convertDouble
		// widens the binlog's Float with Number.doubleValue(): 10.22 is sent
		// as 10.220000267028809. Parsed at 32 bits it is 10.22 again, as the
		// database fallback prints it.
		return kFloat32, 0
	case k == kInt && ct.Base == "bigint unsigned":
		return kUint, 0 // long mode
	case k == kUint && ct.Base == "decimal":
		return kDecimal, ct.Scale
	case (k == kString || k == kFloat64) && ct.Base == "decimal":
		return kDecimalText, ct.Scale
	case k == kString && ct.Base == "bigint unsigned":
		return kUint, 0
	}
	return k, scale
}
