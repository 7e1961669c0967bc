package localrun

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/changegen"
)

// Mismatch is one key whose record differs from the expected final state.
type Mismatch struct {
	// Key is the cache key without prefix.
	Key string
	// Kind is "missing" (a row expected, no row cached), "stale" (another
	// row or an older version cached) or "resurrected" (a deleted row cached).
	Kind string
	// Want and Got describe the expected and the cached state.
	Want, Got string
}

// Verdict counts the outcome of comparing the cache with expected state.
type Verdict struct {
	// Checked counts the keys compared.
	Checked int
	// Missing, Stale and Resurrected count the mismatches by kind.
	Missing, Stale, Resurrected int
	// Mismatches lists up to MaxListed of them.
	Mismatches []Mismatch
}

// MaxListed bounds Verdict.Mismatches.
const MaxListed = 20

// OK reports whether every key matched.
func (v Verdict) OK() bool { return v.Missing+v.Stale+v.Resurrected == 0 }

// Note counts m by its kind and lists it while fewer than MaxListed are.
// A kind other than "missing", "stale" or "resurrected" is a programming
// error: counting it nowhere would let OK pass a mismatch.
func (v *Verdict) Note(m Mismatch) {
	switch m.Kind {
	case "missing":
		v.Missing++
	case "stale":
		v.Stale++
	case "resurrected":
		v.Resurrected++
	default:
		panic(fmt.Sprintf("localrun: mismatch kind %q", m.Kind))
	}
	if len(v.Mismatches) < MaxListed {
		v.Mismatches = append(v.Mismatches, m)
	}
}

// verifyBatch is the number of keys read per pipeline.
const verifyBatch = 500

// Cached is one key's record as VerifyRecords reads it.
type Cached struct {
	// Version is the record's version ("" when there is none).
	Version string
	// Row is the cached row when HasRow.
	Row    []byte
	HasRow bool
	// Tombstone is true for a deleted row's record.
	Tombstone bool
}

// Records reads the records of keys (prefix included), one Cached per key,
// from the cache: RedisRecords or MemcachedRecords.
type Records func(ctx context.Context, keys []string) ([]Cached, error)

// RedisRecords reads records from Redis (the hash fields v, d and t), one
// pipeline per call.
func RedisRecords(rdb redis.Cmdable) Records {
	return func(ctx context.Context, keys []string) ([]Cached, error) {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.HMGet(ctx, k, "v", "d", "t")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		out := make([]Cached, len(keys))
		for i, cmd := range cmds {
			vals := cmd.Val()
			ver, _ := vals[0].(string)
			row, hasRow := vals[1].(string)
			_, tomb := vals[2].(string)
			out[i] = Cached{Version: ver, Row: []byte(row), HasRow: hasRow, Tombstone: tomb}
		}
		return out, nil
	}
}

// Verify is VerifyRecords on Redis.
func Verify(ctx context.Context, rdb redis.Cmdable, prefix string, expected []changegen.Expect) (Verdict, error) {
	return VerifyRecords(ctx, RedisRecords(rdb), prefix, expected)
}

// VerifyRecords compares each expected key's record under prefix with its
// expected state: a row must be cached byte for byte at the expected version
// (or a newer one, which means the cache saw changes the expectation does not
// know); a deleted row must not be cached (a tombstone or no record).
func VerifyRecords(ctx context.Context, read Records, prefix string, expected []changegen.Expect) (Verdict, error) {
	var v Verdict
	for start := 0; start < len(expected); start += verifyBatch {
		batch := expected[start:min(start+verifyBatch, len(expected))]
		keys := make([]string, len(batch))
		for i, e := range batch {
			keys[i] = prefix + e.Key
		}
		recs, err := read(ctx, keys)
		if err != nil {
			return v, err
		}
		for i, e := range batch {
			c := recs[i]
			ver, row := c.Version, string(c.Row)
			v.Checked++
			var kind, got string
			switch {
			case e.Deleted && c.HasRow:
				kind, got = "resurrected", "row at "+ver+": "+row
			case e.Deleted:
			case !c.HasRow:
				kind, got = "missing", fmt.Sprintf("no row (version %q, tombstone %t)", ver, c.Tombstone)
			case row != string(e.Row) || ver < string(e.Version):
				kind, got = "stale", "row at "+ver+": "+row
			}
			if kind == "" {
				continue
			}
			want := "deleted at " + string(e.Version)
			if !e.Deleted {
				want = "row at " + string(e.Version) + ": " + string(e.Row)
			}
			v.Note(Mismatch{Key: e.Key, Kind: kind, Want: want, Got: got})
		}
	}
	return v, nil
}
