package cdc

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendKey(t *testing.T) {
	for _, tc := range []struct {
		prefix, table string
		parts         []string
		want          string
	}{
		{"", "inventory.customers", []string{`1004`}, "inventory.customers:1004"},
		{"", "shop.order_items", []string{`17`, `3`}, "shop.order_items:17:3"},
		{"ns1:", "shop.t", []string{`"a:b"`, `"50%"`}, "ns1:shop.t:a%3Ab:50%25"},
		{"", "shop.t", []string{`"say \"hi\""`}, `shop.t:say "hi"`},
		{"", "shop.t", []string{`"back\\slash:é"`}, `shop.t:back\slash%3Aé`},
		{"", "shop.t", []string{`"12.30"`, `-5`}, "shop.t:12.30:-5"},
		{"", "shop.t", []string{`"2024-05-01T13:04:05Z"`}, "shop.t:2024-05-01T13%3A04%3A05Z"},
		{"", "shop.t", []string{`""`}, "shop.t:"},
		{"", "shop.t", []string{`"%3A"`}, "shop.t:%253A"},
	} {
		parts := make([][]byte, len(tc.parts))
		for i, p := range tc.parts {
			parts[i] = []byte(p)
		}
		got, err := AppendKey([]byte("keep:"), tc.prefix, tc.table, parts...)
		require.NoError(t, err, tc.parts)
		assert.Equal(t, "keep:"+tc.want, string(got), tc.parts)
	}
}

// Escaping keeps keys unambiguous: different composite keys never collide.
func TestAppendKeyUnambiguous(t *testing.T) {
	a, err := AppendKey(nil, "", "d.t", []byte(`"a:b"`), []byte(`"c"`))
	require.NoError(t, err)
	b, err := AppendKey(nil, "", "d.t", []byte(`"a"`), []byte(`"b:c"`))
	require.NoError(t, err)
	assert.NotEqual(t, string(a), string(b))
}

func TestAppendKeyRejects(t *testing.T) {
	for _, bad := range []string{``, `null`, `"unterminated`, `"bad \x escape"`} {
		_, err := AppendKey(nil, "", "d.t", []byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestKeyPart(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{1004, `1004`}, {int8(-3), `-3`}, {int16(7), `7`}, {int32(-70000), `-70000`}, {int64(-1 << 63), `-9223372036854775808`},
		{uint(3), `3`}, {uint8(255), `255`}, {uint16(65535), `65535`}, {uint32(1 << 31), `2147483648`}, {uint64(1<<64 - 1), `18446744073709551615`},
		{"a\"b", `"a\"b"`}, {[]byte{0, 1, 255}, `"AAH/"`}, {json.RawMessage(`"12.30"`), `"12.30"`},
	} {
		got, err := KeyPart(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, string(got), tc.in)
	}
	_, err := KeyPart(1.5)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "float64")
}

func TestTableKeyPrefix(t *testing.T) {
	assert.Equal(t, "p:shop.t:", TableKeyPrefix("p:", "shop.t"))
}
