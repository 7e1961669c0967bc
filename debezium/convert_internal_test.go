package debezium

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendUnscaled(t *testing.T) {
	for _, tc := range []struct {
		b      []byte
		scale  int
		quoted bool
		want   string
	}{
		{[]byte{0x04, 0xce}, 2, true, `"12.30"`},
		{[]byte{0xfb}, 2, true, `"-0.05"`},
		{[]byte{0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, false, `18446744073709551615`},
		{[]byte{0x80, 0, 0, 0, 0, 0, 0, 0, 0}, 0, false, `-2361183241434822606848`},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 3, true, `"-0.001"`},
		{nil, 2, true, `"0.00"`},
	} {
		assert.Equal(t, tc.want, string(appendUnscaled(nil, tc.b, tc.scale, tc.quoted)), "%x", tc.b)
	}
}

func TestParseClock(t *testing.T) {
	for in, want := range map[string]int64{
		"13:04:05":        (13*3600 + 4*60 + 5) * 1e6,
		"13:04:05.25Z":    (13*3600+4*60+5)*1e6 + 250000,
		"-838:59:59":      -(838*3600 + 59*60 + 59) * 1e6,
		"00:00:00.000001": 1,
	} {
		got, err := parseClock(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "1:2:3", "13:60:00", "13:04", "13:04:05.", "13:04:05.1234567890", "a:00:00", "13:04:05x"} {
		_, err := parseClock(bad)
		assert.Error(t, err, bad)
	}
}

func TestParseUTC(t *testing.T) {
	got, ok := parseUTC([]byte("2024-05-01T13:04:05.120Z"))
	require.True(t, ok)
	assert.Equal(t, time.Date(2024, 5, 1, 13, 4, 5, 120e6, time.UTC), got)
	got, ok = parseUTC([]byte("2024-05-01T13:04:05Z"))
	require.True(t, ok)
	assert.Equal(t, time.Date(2024, 5, 1, 13, 4, 5, 0, time.UTC), got)
	for _, other := range []string{"2024-02-30T00:00:00Z", "2024-05-01T13:04:05+02:00", "2024-05-01 13:04:05Z", "2024-05-01T25:04:05Z", "2024-05-01T13:04:05.Z"} {
		_, ok := parseUTC([]byte(other))
		assert.False(t, ok, other)
	}
}

func TestHugeExponent(t *testing.T) {
	for s, want := range map[string]bool{"1.5": false, "1e200": false, "1E-200": false, "1e201": true, "1e+0000000300": true, "1e99999999": true} {
		assert.Equal(t, want, hugeExponent([]byte(s)), s)
	}
}

func TestAppendUnescaped(t *testing.T) {
	for raw, want := range map[string]string{
		`a\"b\\c\/d`:   `a"b\c/d`,
		`\n\r\t\b\f`:   "\n\r\t\b\f",
		`\u00e9\u65e5`: "é日",
		`\ud83d\ude00`: "😀",
		`\ud83d`:       "\ufffd",
		`\ude00x`:      "\ufffdx",
		`\ud83d\u0041`: "\ufffdA",
	} {
		got, err := appendUnescaped(nil, []byte(raw))
		require.NoError(t, err, raw)
		assert.Equal(t, want, string(got), raw)
	}
}

func TestScannerRejects(t *testing.T) {
	for _, bad := range []string{`"abc`, "\"a\x01b\"", `"\x"`, `"\u12"`, `01`, `-`, `1.`, `1e`, `tru`, `[1,]`, `{"a"1}`, `{"a":1,}`, `[1 2]`} {
		s := scanner{b: []byte(bad)}
		_, err := s.value()
		if err == nil && !s.atEnd() {
			continue // a valid prefix followed by junk: the caller's atEnd check rejects it
		}
		assert.Error(t, err, bad)
	}
	deep := make([]byte, 0, 2*maxDepth+4)
	for range maxDepth + 2 {
		deep = append(deep, '[')
	}
	s := scanner{b: deep}
	_, err := s.value()
	assert.ErrorContains(t, err, "nested deeper")
	s = scanner{b: deep}
	_, err = s.skipDoc()
	assert.ErrorContains(t, err, "nested deeper")
}
