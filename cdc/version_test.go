package cdc

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewVersionFixedWidth(t *testing.T) {
	v := NewVersion(3, 154, 0)
	assert.Equal(t, Version("0000000003000000000000000001540000000000"), v)
	assert.Len(t, string(NewVersion(0, 0, 0)), VersionLen)
	assert.Len(t, string(NewVersion(9999999999, 1<<63, 4294967295)), VersionLen)
}

func TestVersionOrderIsNumericOrder(t *testing.T) {
	// Listed in numeric order; byte order must agree.
	want := []Version{
		"",
		NewVersion(0, 0, 0),
		NewVersion(1, 999, 9),
		NewVersion(1, 1000, 0),
		NewVersion(1, 1000, 1),
		NewVersion(1, 1000, 10),
		NewVersion(2, 4, 0),
		NewVersion(10, 0, 0),
		NewVersion(10, 18446744073709551615, 0),
		NewVersion(11, 0, 0),
	}
	got := append([]Version(nil), want...)
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	assert.Equal(t, want, got)
	for i := 1; i < len(want); i++ {
		assert.Equal(t, -1, want[i-1].Compare(want[i]))
		assert.Equal(t, 1, want[i].Compare(want[i-1]))
		assert.Equal(t, 0, want[i].Compare(want[i]))
	}
}

func TestParseVersion(t *testing.T) {
	seq, pos, row, err := ParseVersion(string(NewVersion(7, 123456789012, 42)))
	require.NoError(t, err)
	assert.Equal(t, [3]uint64{7, 123456789012, 42}, [3]uint64{seq, pos, row})

	for _, bad := range []string{"", "123", string(NewVersion(1, 2, 3)) + "0", "000000000a000000000000000001540000000000"} {
		_, _, _, err := ParseVersion(bad)
		assert.Error(t, err, bad)
	}
}

func TestBinlogSeq(t *testing.T) {
	for in, want := range map[string]uint64{"mysql-bin.000003": 3, "binlog.1234567": 1234567, "a.b.000010": 10} {
		got, err := BinlogSeq(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "mysql-bin.", "mysql-bin.x1", "mysql-bin.-1"} {
		_, err := BinlogSeq(bad)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "binlog file")
	}
}

func TestOpAndOutcome(t *testing.T) {
	assert.Equal(t, "c", OpCreate.String())
	assert.Equal(t, "i", OpIgnore.String())
	for _, op := range []Op{OpCreate, OpUpdate, OpRead} {
		assert.True(t, op.IsUpsert(), op.String())
	}
	for _, op := range []Op{OpDelete, OpTruncate, OpIgnore} {
		assert.False(t, op.IsUpsert(), op.String())
	}
	assert.Equal(t, "applied", OutcomeApplied.String())
	assert.Equal(t, "failed", OutcomeFailed.String())
	assert.Equal(t, "unknown", NumOutcomes.String())
}
