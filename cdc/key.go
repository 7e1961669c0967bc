package cdc

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// AppendKey appends the Redis key of a row to dst:
// <prefix><table>:<pk1>:<pk2>..., where each part is the canonical JSON of a
// key column's value. A JSON string contributes its text without quotes, any
// other value its JSON text; '%' and ':' in a part are percent-escaped so the
// separator stays unambiguous.
func AppendKey(dst []byte, prefix, table string, parts ...[]byte) ([]byte, error) {
	dst = append(dst, prefix...)
	dst = append(dst, table...)
	for _, p := range parts {
		dst = append(dst, ':')
		if len(p) > 0 && p[0] == '"' {
			var s string
			if !hasEscape(p) {
				s = string(p[1 : len(p)-1])
			} else if err := json.Unmarshal(p, &s); err != nil {
				return dst, fmt.Errorf("key part %s: %w", p, err)
			}
			dst = appendKeyEscaped(dst, s)
			continue
		}
		if len(p) == 0 || string(p) == "null" {
			return dst, fmt.Errorf("key part of %s is null or empty", table)
		}
		dst = appendKeyEscaped(dst, string(p))
	}
	return dst, nil
}

// TableKeyPrefix is the prefix every key of the table starts with, for scans.
func TableKeyPrefix(prefix, table string) string { return prefix + table + ":" }

func hasEscape(p []byte) bool {
	if len(p) < 2 || p[len(p)-1] != '"' {
		return true // let json.Unmarshal report it
	}
	for _, c := range p[1 : len(p)-1] {
		if c == '\\' || c == '"' {
			return true
		}
	}
	return false
}

func appendKeyEscaped(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == ':' {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// KeyPart returns the canonical JSON of a primary-key value given by a Go
// caller: integers, strings ([]byte as base64, like BINARY columns) and
// json.RawMessage (already canonical, e.g. a DECIMAL as "12.30").
func KeyPart(v any) ([]byte, error) {
	switch x := v.(type) {
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case uint:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(nil, x, 10), nil
	case string:
		return AppendString(nil, x), nil
	case []byte:
		return AppendString(nil, base64.StdEncoding.EncodeToString(x)), nil
	case json.RawMessage:
		return x, nil
	}
	return nil, fmt.Errorf("key value %v: type %T is not a supported key type (use an integer, a string or json.RawMessage)", v, v)
}
