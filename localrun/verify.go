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

// Verify compares each expected key's record under prefix with its expected
// state: a row must be cached byte for byte at the expected version (or a
// newer one, which means the cache saw changes the expectation does not
// know); a deleted row must not be cached (a tombstone or no record).
func Verify(ctx context.Context, rdb redis.Cmdable, prefix string, expected []changegen.Expect) (Verdict, error) {
	var v Verdict
	for start := 0; start < len(expected); start += verifyBatch {
		batch := expected[start:min(start+verifyBatch, len(expected))]
		pipe := rdb.Pipeline()
		cmds := make([]*redis.SliceCmd, len(batch))
		for i, e := range batch {
			cmds[i] = pipe.HMGet(ctx, prefix+e.Key, "v", "d", "t")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return v, fmt.Errorf("verify: %w", err)
		}
		for i, e := range batch {
			vals := cmds[i].Val()
			ver, _ := vals[0].(string)
			row, hasRow := vals[1].(string)
			_, tomb := vals[2].(string)
			v.Checked++
			var kind, got string
			switch {
			case e.Deleted && hasRow:
				kind, got = "resurrected", "row at "+ver+": "+row
			case e.Deleted:
			case !hasRow:
				kind, got = "missing", fmt.Sprintf("no row (version %q, tombstone %t)", ver, tomb)
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
