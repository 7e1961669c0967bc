package cdc

import (
	"fmt"
	"strconv"
)

// VersionLen is the length of every non-empty Version.
const VersionLen = 40

// Version orders the changes of one row: binlog file sequence, position and
// row index printed fixed-width (%010d%020d%010d) so that byte order is
// numeric order. The empty Version is below every other.
type Version string

// NewVersion builds the version of the row-th row of the binlog event at pos
// in binlog file number seq.
func NewVersion(seq, pos, row uint64) Version {
	var b [VersionLen]byte
	putPadded(b[0:10], seq)
	putPadded(b[10:30], pos)
	putPadded(b[30:40], row)
	return Version(b[:])
}

func putPadded(dst []byte, n uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + n%10)
		n /= 10
	}
}

// ParseVersion checks and splits a version string.
func ParseVersion(s string) (seq, pos, row uint64, err error) {
	if len(s) != VersionLen {
		return 0, 0, 0, fmt.Errorf("version %q: want %d digits", s, VersionLen)
	}
	parts := [3]*uint64{&seq, &pos, &row}
	for i, r := range [3][2]int{{0, 10}, {10, 30}, {30, 40}} {
		n, err := strconv.ParseUint(s[r[0]:r[1]], 10, 64)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("version %q: %w", s, err)
		}
		*parts[i] = n
	}
	return seq, pos, row, nil
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v Version) Compare(w Version) int {
	switch {
	case v < w:
		return -1
	case v > w:
		return 1
	}
	return 0
}

// BinlogSeq parses the file sequence from a binlog file name such as
// "mysql-bin.000003": the number after the last dot.
func BinlogSeq(file string) (uint64, error) {
	i := len(file) - 1
	for i >= 0 && file[i] != '.' {
		i--
	}
	n, err := strconv.ParseUint(file[i+1:], 10, 64)
	if err != nil || i == len(file)-1 {
		return 0, fmt.Errorf("binlog file %q: no sequence number after the last '.'", file)
	}
	return n, nil
}
