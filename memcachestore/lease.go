package memcachestore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// The read path on memcached (design section 4): reads, and fill leases
// (Facebook's memcache leases, NSDI 2013) on the record format. A reader that
// misses replaces the record by L<token>[:<version>]: add where there was
// none, compare-and-swap over a marker (keeping its version and TTL) or an
// expired lease. Only the holder fills, by a compare-and-swap on the lease
// item's CAS token. Every change the Store applies replaces the item, which
// changes its token, so a change applied between the lease and the fill makes
// the fill lose instead of writing an older row. The token ends in the
// lease's deadline (Unix ms) so that a lease whose holder died is taken over
// after it, as on Redis; clocks only decide when, never whether a fill is
// safe, which the compare-and-swap alone decides.

// Found is one record as a reader sees it.
type Found struct {
	// Record is the record; Kind is 0 when there is none (absent, or at or
	// below its table's truncate watermark).
	Record Record
	// Err is this key's error: its node did not answer, or an error reply
	// (ErrReply), or an item that is not a record (ErrNotRecord).
	Err error
}

// Read reads the records of keys (the records' Redis-form keys, of table,
// under prefix) with the table's truncate watermark, in one pipelined round
// trip per node. A record at or below the watermark is absent.
func Read(ctx context.Context, c *Client, prefix, table string, keys []string) []Found {
	gets := make([]Op, len(keys)+1)
	ops := make([]*Op, len(gets))
	for i, k := range keys {
		gets[i].Key = Key(prefix, k)
	}
	mark := &gets[len(keys)]
	mark.Key = TruncatedKey(prefix, table)
	for i := range gets {
		ops[i] = &gets[i]
	}
	c.Do(ctx, ops)
	out := make([]Found, len(keys))
	wm, werr := watermark(mark)
	if mark.Err != nil {
		werr = mark.Err
	}
	for i := range keys {
		g := &gets[i]
		switch {
		case werr != nil:
			out[i].Err = fmt.Errorf("memcachestore: read %s: %w", keys[i], werr)
		case g.Err != nil:
			out[i].Err = fmt.Errorf("memcachestore: read %s: %w", keys[i], g.Err)
		case g.Status == StatusHit:
			rec, err := ParseRecord(g.Value)
			if err != nil {
				out[i].Err = fmt.Errorf("memcachestore: read %s: %w", keys[i], err)
			} else if rec.Version == "" || rec.Version > wm {
				out[i].Record = rec
			}
		}
	}
	return out
}

// LeaseState is what AcquireLeases found at a key.
type LeaseState uint8

// The answers of AcquireLeases.
const (
	// LeaseFailed: the key could not be leased; Lease.Err says why.
	LeaseFailed LeaseState = iota
	// LeaseGranted: the caller holds the lease and may fill.
	LeaseGranted
	// LeaseHit: the record has a row; Lease.Row holds it.
	LeaseHit
	// LeaseDeleted: the record is a tombstone.
	LeaseDeleted
	// LeaseBusy: another reader holds an unexpired lease, or another reader
	// or a change wrote the record between this call's read and its write.
	LeaseBusy
	// LeaseSkipped: no fill can be made now: the table's truncate watermark
	// is at or above every version the fill could carry (the checkpoint has
	// not yet caught up with the truncate), so the fill would read as
	// truncated. The caller reads the database without filling.
	LeaseSkipped
)

// Lease is one answer of AcquireLeases; a granted one is given back to
// FillLeases.
type Lease struct {
	// State says which of the other fields are set.
	State LeaseState
	// Row is the record's row when State is LeaseHit.
	Row []byte
	// Err is the key's error when State is LeaseFailed: see Found.Err.
	Err error
	// Token is the lease's token when State is LeaseGranted.
	Token string
	// Checkpoint is the larger of the checkpoint version of the Debezium
	// server that streams the table and the table's fill floor (FloorKey),
	// read with the lease: every change up to it had committed before the
	// caller reads the database, so the fill's version is at least this.
	// Empty when neither is recorded.
	Checkpoint cdc.Version

	item    string      // the memcached key
	version cdc.Version // the version the lease item keeps (a marker's); "" none
	cas     uint64      // the lease item's CAS token
	left    int64       // seconds the replaced marker had left, -1 none; 0 for a bare lease
}

// AcquireLeases tries to take the fill lease of each key (Redis-form keys of
// table, under prefix) for ttl, in two pipelined round trips: every record
// with the table's watermark, fill floor and the checkpoint, then the lease
// writes. A
// lease is given back by a fill or a release, taken by any applied change,
// and on an absent row its item expires after ttl (rounded up to seconds).
func AcquireLeases(ctx context.Context, c *Client, prefix, table string, keys []string, ttl time.Duration) []Lease {
	gets := make([]Op, len(keys)+3)
	ops := make([]*Op, len(gets))
	for i, k := range keys {
		gets[i].Key = Key(prefix, k)
	}
	mark, cpGet, floorGet := &gets[len(keys)], &gets[len(keys)+1], &gets[len(keys)+2]
	mark.Key, cpGet.Key, floorGet.Key = TruncatedKey(prefix, table), CheckpointKey(prefix), FloorKey(prefix, table)
	for i := range gets {
		ops[i] = &gets[i]
	}
	c.Do(ctx, ops)

	out := make([]Lease, len(keys))
	wm, floor, ferr := leaseFloor(mark, cpGet, floorGet, table)
	now := time.Now()
	var sets []*Op
	var setFor []int // out index of sets[j]
	for i := range keys {
		l, g := &out[i], &gets[i]
		l.item = g.Key
		if ferr != nil {
			l.Err = fmt.Errorf("memcachestore: lease %s: %w", keys[i], ferr)
			continue
		}
		if g.Err != nil {
			l.Err = fmt.Errorf("memcachestore: lease %s: %w", keys[i], g.Err)
			continue
		}
		var rec Record
		present := g.Status == StatusHit
		if present {
			r, err := ParseRecord(g.Value)
			if err != nil {
				l.Err = fmt.Errorf("memcachestore: lease %s: %w", keys[i], err)
				continue
			}
			if r.Version == "" || r.Version > wm {
				rec = r // else truncated: absent, though the item is there
			}
		}
		switch rec.Kind {
		case KindRow:
			l.State, l.Row = LeaseHit, rec.Row
			continue
		case KindTombstone:
			l.State = LeaseDeleted
			continue
		case KindLease:
			if leaseDeadline(rec.Lease) > now.UnixMilli() {
				l.State = LeaseBusy
				continue
			}
		}
		// A marker, an expired lease, or nothing: take the lease.
		l.version = rec.Version
		if wm != "" && max(l.version, floor) <= wm {
			l.State = LeaseSkipped
			continue
		}
		l.Checkpoint = floor
		l.Token = strconv.FormatUint(rand.Uint64(), 36) + "." + strconv.FormatInt(now.Add(ttl).UnixMilli(), 10)
		set := &Op{Key: g.Key, Set: true, Value: Record{Kind: KindLease, Lease: l.Token, Version: l.version}.Append(nil)}
		if l.version != "" {
			// The lease keeps the marker's version for as long as the
			// marker would have: a version must not be forgotten early.
			l.left = g.TTL
			set.Exptime = leftExptime(g.TTL, now)
		} else {
			set.Exptime = exptime(ttl, now)
		}
		if present {
			set.CAS = g.Token
		} else {
			set.Add = true
		}
		sets = append(sets, set)
		setFor = append(setFor, i)
	}
	c.Do(ctx, sets)
	for j, set := range sets {
		l := &out[setFor[j]]
		switch {
		case set.Err != nil:
			l.Err = fmt.Errorf("memcachestore: lease %s: %w", keys[setFor[j]], set.Err)
		case set.Status == StatusStored:
			l.State, l.cas = LeaseGranted, set.Token
		default:
			l.State = LeaseBusy // a change or another reader wrote first
		}
	}
	return out
}

// leaseFloor reads from their answers the watermark, and the larger of the
// checkpoint version of the server that streams table and the table's fill
// floor (FloorKey).
func leaseFloor(mark, cpGet, floorGet *Op, table string) (wm, floor cdc.Version, err error) {
	if err := firstErr(mark, floorGet); err != nil {
		return "", "", err
	}
	if wm, err = watermark(mark); err != nil {
		return "", "", err
	}
	if floor, err = watermark(floorGet); err != nil {
		return "", "", err
	}
	cps, err := decodeCheckpoints(cpGet)
	if err != nil {
		return "", "", err
	}
	return wm, max(floor, cps.For(table).Version), nil
}

// leaseDeadline is the Unix ms after the last '.' of a lease token; 0 (long
// expired) when it has none.
func leaseDeadline(token string) int64 {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return 0
	}
	ms, _ := strconv.ParseInt(token[i+1:], 10, 64)
	return ms
}

// leftExptime is the expiry of an item that keeps left seconds of another's
// (mg's t flag: -1 none).
func leftExptime(left int64, now time.Time) int64 {
	if left < 0 {
		return 0
	}
	return exptime(time.Duration(max(left, 1))*time.Second, now)
}

// Fill is one write under a lease.
type Fill struct {
	// Lease is the granted lease the fill is made under.
	Lease Lease
	// Row is the row's canonical JSON; nil writes a tombstone (the database
	// has no such row).
	Row []byte
	// Release gives the lease back without writing a row (Row and TTL are
	// ignored): a bare lease is deleted, a marker's put back.
	Release bool
	// TTL is the record's TTL; 0 keeps it until changed.
	TTL time.Duration
}

// zeroVersion is the version of a fill made before any checkpoint or change
// was known: the record format needs one, and every change is above it.
var zeroVersion = cdc.NewVersion(0, 0, 0)

// FillLeases writes (or releases) each fill whose lease is still held, in one
// pipelined round trip per node, and reports per fill whether it was
// written: false means a change (or another reader after the lease expired)
// got there first, which is the lease doing its job. The version written is
// the larger of the record's (a marker's) and the lease's checkpoint. A
// tombstone keeps a longer TTL the marker had. The error is the first fill
// that got no answer or an error reply (ErrReply).
func FillLeases(ctx context.Context, c *Client, fills []Fill) ([]bool, error) {
	now := time.Now()
	ops := make([]*Op, len(fills))
	for i, f := range fills {
		l := &f.Lease
		op := &Op{Key: l.item, CAS: l.cas}
		switch {
		case l.State != LeaseGranted || l.cas == 0:
			return nil, fmt.Errorf("memcachestore: fill %s: not a granted lease", l.item)
		case f.Release && l.version == "":
			op.Delete = true
		case f.Release:
			op.Set, op.Exptime = true, leftExptime(l.left, now)
			op.Value = Record{Kind: KindMarker, Version: l.version}.Append(nil)
		default:
			v := max(l.version, l.Checkpoint)
			if v == "" {
				v = zeroVersion
			}
			rec := Record{Kind: KindRow, Version: v, Row: f.Row}
			op.Exptime = exptime(f.TTL, now)
			if f.Row == nil {
				rec.Kind = KindTombstone
				if f.TTL > 0 && l.left > 0 && time.Duration(l.left)*time.Second > f.TTL {
					op.Exptime = leftExptime(l.left, now)
				}
			}
			op.Set, op.Value = true, rec.Append(nil)
		}
		ops[i] = op
	}
	c.Do(ctx, ops)
	ok := make([]bool, len(fills))
	var first error
	for i, op := range ops {
		switch {
		case op.Err != nil:
			if first == nil {
				first = fmt.Errorf("memcachestore: fill %s: %w", op.Key, op.Err)
			}
		case op.Status == StatusStored:
			ok[i] = true
		}
	}
	return ok, first
}
