package cdc

import (
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"":                 `""`,
		"plain":            `"plain"`,
		`q"b\s`:            `"q\"b\\s"`,
		"<a href=x>&amp;":  `"<a href=x>&amp;"`,
		"é日本\u2028":        "\"é日本\u2028\"",
		"\n\r\t\b\f":       `"\n\r\t\b\f"`,
		"\x00\x01\x1f\x7f": "\"\\u0000\\u0001\\u001f\x7f\"",
		"bad\xffutf8\xc3":  "\"bad\ufffdutf8\ufffd\"",
	} {
		got := AppendString([]byte("x"), in)
		assert.Equal(t, "x"+want, string(got), "%q", in)
		var back string
		require.NoError(t, json.Unmarshal(got[1:], &back), "%q", in)
	}
}

func TestAppendIntUintBool(t *testing.T) {
	assert.Equal(t, "-9223372036854775808", string(AppendInt(nil, math.MinInt64)))
	assert.Equal(t, "18446744073709551615", string(AppendUint(nil, math.MaxUint64)))
	assert.Equal(t, "1", string(AppendBool(nil, true)))
	assert.Equal(t, "0", string(AppendBool(nil, false)))
}

func TestAppendFloat(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		bits int
		want string
	}{
		{float64(float32(0.1)), 32, "0.1"},
		{0.1, 64, "0.1"},
		{float64(float32(3.14159)), 32, "3.14159"},
		{1e21, 64, "1e+21"},
		{1e20, 64, "100000000000000000000"},
		{1e-7, 64, "1e-7"},
		{-1e-7, 64, "-1e-7"},
		{1e-6, 64, "0.000001"},
		{1.5e-10, 64, "1.5e-10"},
		{float64(float32(1e21)), 32, "1e+21"},
		{float64(float32(3.4e38)), 32, "3.4e+38"},
		{0, 64, "0"},
		{-2.5, 64, "-2.5"},
		{math.MaxFloat64, 64, "1.7976931348623157e+308"},
		{math.NaN(), 64, "null"},
		{math.Inf(-1), 32, "null"},
	} {
		assert.Equal(t, tc.want, string(AppendFloat(nil, tc.f, tc.bits)), "%v/%d", tc.f, tc.bits)
	}
}

func TestAppendDecimal(t *testing.T) {
	for _, tc := range []struct {
		unscaled string
		scale    int
		want     string
	}{
		{"1230", 2, `"12.30"`},
		{"-5", 2, `"-0.05"`},
		{"0", 2, `"0.00"`},
		{"1", 4, `"0.0001"`},
		{"-42", 0, `"-42"`},
		{"7", -2, `"700"`},
		{"-123456789012345678901234567890123", 3, `"-123456789012345678901234567890.123"`},
	} {
		n, ok := new(big.Int).SetString(tc.unscaled, 10)
		require.True(t, ok)
		assert.Equal(t, tc.want, string(AppendDecimal(nil, n, tc.scale)), tc.unscaled)
	}
}

func TestAppendDecimalText(t *testing.T) {
	for _, tc := range []struct {
		text  string
		scale int
		want  string
	}{
		{"12.3", 2, `"12.30"`},
		{"-0.5", 1, `"-0.5"`},
		{"7", 3, `"7.000"`},
		{"1.2E+1", 2, `"12.00"`},
		{"-0.000", 0, `"0"`},
		{"0.001", 3, `"0.001"`},
	} {
		got, err := AppendDecimalText(nil, tc.text, tc.scale)
		require.NoError(t, err, tc.text)
		assert.Equal(t, tc.want, string(got), tc.text)
	}
	_, err := AppendDecimalText(nil, "abc", 2)
	assert.ErrorContains(t, err, "not a number")
	_, err = AppendDecimalText(nil, "1.234", 2)
	assert.ErrorContains(t, err, "more than 2 decimals")
}

func TestAppendDate(t *testing.T) {
	assert.Equal(t, `"1970-01-01"`, string(AppendDate(nil, 0)))
	assert.Equal(t, `"1969-12-31"`, string(AppendDate(nil, -1)))
	assert.Equal(t, `"2024-05-01"`, string(AppendDate(nil, 19844)))
	assert.Equal(t, `"1000-01-01"`, string(AppendDate(nil, -354285)))
	assert.Equal(t, `"9999-12-31"`, string(AppendDate(nil, 2932896)))
}

func TestAppendDateTimeTrimsFraction(t *testing.T) {
	for nanos, want := range map[int]string{
		0:         `"2024-05-01T13:04:05"`,
		120000000: `"2024-05-01T13:04:05.12"`,
		123456000: `"2024-05-01T13:04:05.123456"`,
		1000:      `"2024-05-01T13:04:05.000001"`,
		500000000: `"2024-05-01T13:04:05.5"`,
	} {
		ts := time.Date(2024, 5, 1, 13, 4, 5, nanos, time.UTC)
		assert.Equal(t, want, string(AppendDateTime(nil, ts)))
	}
}

func TestAppendTimestampIsUTC(t *testing.T) {
	zone := time.FixedZone("CEST", 2*3600)
	ts := time.Date(2024, 5, 1, 15, 4, 5, 250000000, zone)
	assert.Equal(t, `"2024-05-01T13:04:05.25Z"`, string(AppendTimestamp(nil, ts)))
	assert.Equal(t, `"2024-05-01T13:04:05Z"`, string(AppendTimestamp(nil, time.Date(2024, 5, 1, 13, 4, 5, 0, time.UTC))))
}

func TestAppendTime(t *testing.T) {
	const h = 3600 * 1e6
	for micros, want := range map[int64]string{
		0:                               `"00:00:00"`,
		13*h + 4*60e6 + 5e6 + 120000:    `"13:04:05.12"`,
		25*h + 1:                        `"25:00:00.000001"`,
		-(838*h + 59*60e6 + 59e6):       `"-838:59:59"`,
		838*h + 59*60e6 + 59e6 + 999999: `"838:59:59.999999"`,
		-1:                              `"-00:00:00.000001"`,
		-(100*h + 30*60e6 + 500000):     `"-100:30:00.5"`,
	} {
		assert.Equal(t, want, string(AppendTime(nil, micros)), strconv.FormatInt(micros, 10))
	}
}

func TestAppendBytesBitsGeometryJSON(t *testing.T) {
	assert.Equal(t, `"AAEC/w=="`, string(AppendBytes(nil, []byte{0, 1, 2, 255})))
	assert.Equal(t, `""`, string(AppendBytes(nil, nil)))
	assert.Equal(t, `258`, string(AppendBits(nil, []byte{1, 2})))
	assert.Equal(t, `18446744073709551615`, string(AppendBits(nil, []byte{255, 255, 255, 255, 255, 255, 255, 255})))
	assert.Equal(t, `0`, string(AppendBits(nil, nil)))
	assert.Equal(t, `{"wkb":"AQI=","srid":4326}`, string(AppendGeometry(nil, []byte{1, 2}, 4326)))

	got, err := AppendJSON([]byte("x"), []byte("{ \"b\" : 1,\n \"a\": [1, 2, \"<&>\"] }"))
	require.NoError(t, err)
	assert.Equal(t, `x{"b":1,"a":[1,2,"<&>"]}`, string(got))
	got, err = AppendJSON([]byte("x"), []byte(`{"a":`))
	assert.ErrorContains(t, err, "json column")
	assert.Equal(t, "x", string(got), "dst unchanged on error")
}

// The int64 fast path must agree with the big.Int one, edges included.
func TestAppendDecimalInt64MatchesBig(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 5, -5, 99, 100, -100, 123456789, math.MaxInt64, math.MinInt64, math.MinInt64 + 1} {
		for _, scale := range []int{0, 1, 2, 5, 19, 25} {
			want := AppendDecimal(nil, big.NewInt(n), scale)
			if got := AppendDecimalInt64(nil, n, scale); string(got) != string(want) {
				t.Errorf("AppendDecimalInt64(%d, %d) = %s, want %s", n, scale, got, want)
			}
		}
	}
}
