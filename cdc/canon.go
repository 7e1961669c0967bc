package cdc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"
)

// The Append* functions write one value in the canonical JSON of the design
// (section 2, "Canonical row JSON"). Both the change-stream decoder and the
// MySQL fallback encode through them, which is what keeps the two paths
// byte-identical.

// AppendString appends s as a JSON string with minimal escaping: only '"',
// '\\' and control characters are escaped; '<', '>', '&' and UTF-8 are kept as
// they are. Invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendInt appends a signed integer.
func AppendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// AppendUint appends an unsigned integer, exact up to 2^64-1.
func AppendUint(dst []byte, n uint64) []byte { return strconv.AppendUint(dst, n, 10) }

// AppendBool appends a BOOL (TINYINT(1)) as the integer 1 or 0.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, '1')
	}
	return append(dst, '0')
}

// AppendFloat appends f as the shortest decimal text that reads back to the
// same value at the column's width (bits 32 for FLOAT, 64 for DOUBLE), in
// the same form as ECMAScript's Number.prototype.toString: plain digits for
// 1e-6 <= |f| < 1e21, exponent form outside. NaN and infinities cannot be
// stored in MySQL and are written as null.
func AppendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	if bits == 32 {
		abs = float64(float32(abs))
	}
	fmtc := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmtc = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, fmtc, -1, bits)
	if fmtc == 'e' {
		// 1e-07 -> 1e-7, as ECMAScript writes it.
		n := len(dst)
		if n-start >= 4 && dst[n-4] == 'e' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// AppendDecimal appends a DECIMAL(p,s) as a JSON string with exactly scale
// decimals, from its unscaled integer value.
func AppendDecimal(dst []byte, unscaled *big.Int, scale int) []byte {
	var buf [48]byte
	digits := new(big.Int).Abs(unscaled).Append(buf[:0], 10)
	return appendScaled(dst, unscaled.Sign() < 0, digits, scale)
}

// AppendDecimalInt64 is AppendDecimal for an unscaled value that fits an
// int64, without big.Int (the common case on the change stream's hot path).
func AppendDecimalInt64(dst []byte, unscaled int64, scale int) []byte {
	u := uint64(unscaled)
	if unscaled < 0 {
		u = -u // two's complement: right for math.MinInt64 too
	}
	var buf [24]byte
	return appendScaled(dst, unscaled < 0, strconv.AppendUint(buf[:0], u, 10), scale)
}

// appendScaled writes the decimal digits of an unscaled magnitude with the
// point placed scale digits from the right, quoted.
func appendScaled(dst []byte, neg bool, digits []byte, scale int) []byte {
	dst = append(dst, '"')
	if neg {
		dst = append(dst, '-')
	}
	if scale <= 0 {
		dst = append(dst, digits...)
		for i := 0; i < -scale; i++ {
			dst = append(dst, '0')
		}
		return append(dst, '"')
	}
	if len(digits) <= scale {
		dst = append(dst, '0', '.')
		for i := len(digits); i < scale; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
		return append(dst, '"')
	}
	dst = append(dst, digits[:len(digits)-scale]...)
	dst = append(dst, '.')
	dst = append(dst, digits[len(digits)-scale:]...)
	return append(dst, '"')
}

// AppendDecimalText appends a decimal given as text ("12.3", "-0.5", "7",
// "1.2E+1") as a JSON string with exactly scale decimals. It fails when the
// text is not a number or has more significant decimals than scale.
func AppendDecimalText(dst []byte, text string, scale int) ([]byte, error) {
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return dst, fmt.Errorf("decimal %q is not a number", text)
	}
	mul := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(scale, 0))), nil)
	num := new(big.Int).Mul(r.Num(), mul)
	q, m := new(big.Int).QuoRem(num, r.Denom(), new(big.Int))
	if m.Sign() != 0 {
		return dst, fmt.Errorf("decimal %q has more than %d decimals", text, scale)
	}
	return AppendDecimal(dst, q, max(scale, 0)), nil
}

// AppendDate appends a DATE given as days since 1970-01-01.
func AppendDate(dst []byte, days int64) []byte {
	t := time.Unix(days*86400, 0).UTC()
	dst = append(dst, '"')
	dst = appendYMD(dst, t)
	return append(dst, '"')
}

// AppendDateTime appends a DATETIME(p): "2024-05-01T13:04:05" with the
// fraction's trailing zeros trimmed (no fraction when it is zero).
func AppendDateTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = appendYMD(dst, t)
	dst = append(dst, 'T')
	dst = appendClock(dst, int64(t.Hour()), t.Minute(), t.Second(), t.Nanosecond())
	return append(dst, '"')
}

// AppendTimestamp appends a TIMESTAMP(p) in UTC: "2024-05-01T13:04:05Z",
// fraction trimmed as for DATETIME.
func AppendTimestamp(dst []byte, t time.Time) []byte {
	dst = AppendDateTime(dst, t.UTC())
	dst[len(dst)-1] = 'Z'
	return append(dst, '"')
}

// AppendTime appends a TIME(p) given in microseconds: "13:04:05" with a
// trimmed fraction; it may be negative and may exceed 24 hours.
func AppendTime(dst []byte, micros int64) []byte {
	dst = append(dst, '"')
	if micros < 0 {
		dst = append(dst, '-')
		micros = -micros
	}
	sec := micros / 1e6
	dst = appendClock(dst, sec/3600, int(sec/60%60), int(sec%60), int(micros%1e6)*1000)
	return append(dst, '"')
}

func appendYMD(dst []byte, t time.Time) []byte {
	y, m, d := t.Date()
	if y < 0 {
		dst = append(dst, '-')
		y = -y
	}
	dst = appendPadded(dst, int64(y), 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, int64(m), 2)
	dst = append(dst, '-')
	return appendPadded(dst, int64(d), 2)
}

func appendClock(dst []byte, h int64, m, s, nanos int) []byte {
	dst = appendPadded(dst, h, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, int64(m), 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, int64(s), 2)
	if nanos == 0 {
		return dst
	}
	dst = append(dst, '.')
	dst = appendPadded(dst, int64(nanos), 9)
	end := len(dst)
	for dst[end-1] == '0' {
		end--
	}
	return dst[:end]
}

func appendPadded(dst []byte, n int64, width int) []byte {
	var b [20]byte
	i := len(b)
	for n > 0 || len(b)-i < width {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, b[i:]...)
}

// AppendBytes appends binary data as a base64 (standard, padded) string.
func AppendBytes(dst []byte, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// AppendJSON appends a JSON column's value compacted. MySQL returns JSON
// normalised (sorted keys) on both paths; MariaDB keeps the text as written,
// also on both paths, so compacting is all that is needed.
func AppendJSON(dst []byte, doc []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, doc); err != nil {
		return dst, fmt.Errorf("json column: %w", err)
	}
	return buf.Bytes(), nil
}

// AppendBits appends a BIT(n) column as an integer; b holds the value
// big-endian, as MySQL returns it (Debezium's little-endian bytes must be
// reversed first).
func AppendBits(dst []byte, b []byte) []byte {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return AppendUint(dst, n)
}

// AppendGeometry appends a spatial value as {"wkb": base64, "srid": n}.
func AppendGeometry(dst []byte, wkb []byte, srid int64) []byte {
	dst = append(dst, `{"wkb":`...)
	dst = AppendBytes(dst, wkb)
	dst = append(dst, `,"srid":`...)
	dst = AppendInt(dst, srid)
	return append(dst, '}')
}
