package memcachestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// maxKeyLen is memcached's limit on a key's length.
const maxKeyLen = 250

// Key is the memcached key of the record with the Redis key redisKey under
// prefix: the same text with bytes outside printable ASCII, space and '%'
// percent-escaped (memcached keys cannot hold spaces or control bytes), or,
// when that is longer than memcached's 250 bytes, prefix + "#" + the hex
// SHA-256 of redisKey.
func Key(prefix, redisKey string) string {
	if !needsEscape(redisKey) && len(redisKey) <= maxKeyLen {
		return redisKey
	}
	const hexd = "0123456789ABCDEF"
	b := make([]byte, 0, len(redisKey)+16)
	for i := 0; i < len(redisKey); i++ {
		c := redisKey[i]
		if c <= ' ' || c > '~' || c == '%' {
			b = append(b, '%', hexd[c>>4], hexd[c&15])
			continue
		}
		b = append(b, c)
	}
	if len(b) <= maxKeyLen {
		return string(b)
	}
	sum := sha256.Sum256([]byte(redisKey))
	return Key("", prefix) + "#" + hex.EncodeToString(sum[:])
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || c == '%' {
			return true
		}
	}
	return false
}

// TruncatedKey is the item holding table's truncate watermark under prefix:
// the version of the newest truncate applied to it. A record at or below it
// is absent.
func TruncatedKey(prefix, table string) string {
	return Key(prefix, prefix+"__cdc:truncated:"+table)
}

// FloorKey is the item holding table's fill floor under prefix: the highest
// version of a refresh-mode change that found no record (and so left none).
// A fill's version is at least the floor (AcquireLeases), so a late
// redelivery older than a change the database read already showed is stale.
func FloorKey(prefix, table string) string {
	return Key(prefix, prefix+"__cdc:floor:"+table)
}

// CheckpointKey is the item holding the checkpoint (JSON, see Checkpoints)
// under prefix.
func CheckpointKey(prefix string) string { return Key(prefix, prefix+"__cdc:checkpoint") }

// The kinds of record, the first byte of an item's value.
const (
	KindRow       = 'D'
	KindTombstone = 'T'
	KindMarker    = 'M'
	KindLease     = 'L'
)

// ErrNotRecord is wrapped by ParseRecord's errors: the item is not in the
// record format (another program's item under the prefix, or damage). It is
// that key's problem, as a Redis key of another type is.
var ErrNotRecord = errors.New("memcachestore: not a record")

// Record is one parsed item.
type Record struct {
	// Kind is KindRow, KindTombstone, KindMarker or KindLease.
	Kind byte
	// Version is the record's version; empty only for a lease taken where
	// no version was known.
	Version cdc.Version
	// Row is the row's canonical JSON (KindRow).
	Row []byte
	// Lease is a lease's token (KindLease).
	Lease string
}

// ParseRecord reads an item's value. Row aliases b.
func ParseRecord(b []byte) (Record, error) {
	if len(b) == 0 {
		return Record{}, fmt.Errorf("%w: empty", ErrNotRecord)
	}
	r := Record{Kind: b[0]}
	switch r.Kind {
	case KindRow, KindTombstone, KindMarker:
		if len(b) < 1+cdc.VersionLen || !digits(b[1:1+cdc.VersionLen]) {
			return Record{}, fmt.Errorf("%w: %.60q: no version", ErrNotRecord, b)
		}
		r.Version = cdc.Version(b[1 : 1+cdc.VersionLen])
		rest := b[1+cdc.VersionLen:]
		if r.Kind == KindRow {
			r.Row = rest
		} else if len(rest) != 0 {
			return Record{}, fmt.Errorf("%w: %.60q: trailing bytes", ErrNotRecord, b)
		}
	case KindLease:
		tok := b[1:]
		if i := bytes.IndexByte(tok, ':'); i >= 0 {
			if v := tok[i+1:]; len(v) != cdc.VersionLen || !digits(v) {
				return Record{}, fmt.Errorf("%w: lease %.60q: bad version", ErrNotRecord, b)
			}
			r.Version = cdc.Version(tok[i+1:])
			tok = tok[:i]
		}
		if len(tok) == 0 {
			return Record{}, fmt.Errorf("%w: lease %.60q: no token", ErrNotRecord, b)
		}
		r.Lease = string(tok)
	default:
		return Record{}, fmt.Errorf("%w: %.60q: unknown kind", ErrNotRecord, b)
	}
	return r, nil
}

func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Append appends the record's item value to dst.
func (r Record) Append(dst []byte) []byte {
	dst = append(dst, r.Kind)
	if r.Kind == KindLease {
		dst = append(dst, r.Lease...)
		if r.Version != "" {
			dst = append(dst, ':')
			dst = append(dst, r.Version...)
		}
		return dst
	}
	dst = append(dst, r.Version...)
	return append(dst, r.Row...)
}
