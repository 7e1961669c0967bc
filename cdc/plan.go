package cdc

import (
	"fmt"
	"time"
)

// Kind is the record a change leaves when it is newer than what the cache
// holds (design section 2, "Apply rules").
type Kind uint8

// The kinds of Plan.
const (
	KindRow       Kind = iota // {v, d}: the row
	KindTombstone             // {v, t}: deleted
	KindMarker                // {v}: changed, not cached (invalidate mode)
	KindTruncate              // the table's watermark is raised
)

// Plan is what a change will write, decided from the change and the config
// alone, before any store reads a record.
type Plan struct {
	Kind Kind
	// Refresh is true in refresh mode: write only where a record exists.
	Refresh bool
	// TTL is the record's TTL; 0 none.
	TTL time.Duration
}

// Plan checks a change against the config. ok is false, with the change's
// result, when no store needs to be asked: ignored (heartbeats, unlisted
// tables) or invalid (wrapping ErrInvalid: no key, no row, a malformed
// version, an unknown op). Every store plans through it, so the rules that
// need no record are written once.
func (c *Config) Plan(ch Change) (p Plan, res Result, ok bool) {
	if ch.Op == OpIgnore {
		return p, Result{Outcome: OutcomeIgnored}, false
	}
	t, listed := c.Lookup(ch.Table)
	if c.OnlyListed && !listed {
		return p, Result{Outcome: OutcomeIgnored}, false
	}
	if !ch.Version.Valid() {
		return p, invalid(ch, fmt.Sprintf("version %q is not %d digits", ch.Version, VersionLen)), false
	}
	if ch.Op == OpTruncate {
		return Plan{Kind: KindTruncate}, Result{}, true
	}
	if ch.Key == "" {
		return p, invalid(ch, "no key"), false
	}
	p.Refresh = t.Mode == ModeRefresh
	switch {
	case ch.Op == OpDelete:
		p.Kind, p.TTL = KindTombstone, c.tombstoneTTL()
	case !ch.Op.IsUpsert():
		return p, invalid(ch, fmt.Sprintf("unknown op %q", ch.Op)), false
	case t.Mode == ModeInvalidate, ch.Untyped:
		// An untyped row cannot be cached as canonical JSON: a marker makes
		// readers miss and read MySQL.
		p.Kind, p.TTL = KindMarker, c.tombstoneTTL()
	case len(ch.Row) == 0:
		return p, invalid(ch, "no row"), false
	default:
		p.Kind, p.TTL = KindRow, t.TTL
	}
	return p, Result{}, true
}

func invalid(ch Change, why string) Result {
	return Result{Outcome: OutcomeFailed, Err: fmt.Errorf("%w: %s of %s key %q: %s", ErrInvalid, ch.Op, ch.Table, ch.Key, why)}
}

// tombstoneTTL guards against a hand-built config without one: a tombstone
// that never expires would leak.
func (c *Config) tombstoneTTL() time.Duration {
	if c.TombstoneTTL > 0 {
		return c.TombstoneTTL
	}
	return DefaultTombstoneTTL
}

// Valid reports whether v is VersionLen decimal digits.
func (v Version) Valid() bool {
	if len(v) != VersionLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}
