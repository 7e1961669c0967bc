package redisstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// Fill leases of the read path (design section 4; Facebook's memcache leases,
// NSDI 2013). A reader that misses takes the lease: field l of the record
// holds "<token>.<deadline Unix ms>". Only the holder reads the database and
// fills, and only while l still holds its token; every change the apply
// script writes clears l, so a change applied between the lease and the fill
// makes the fill fail instead of writing an older row.

// LeaseState is what AcquireLeases found at a key.
type LeaseState uint8

// The answers of AcquireLeases.
const (
	// LeaseGranted: the caller holds the lease and may fill.
	LeaseGranted LeaseState = iota
	// LeaseHit: the record has a row (filled since the caller missed);
	// Lease.Row holds it.
	LeaseHit
	// LeaseDeleted: the record is a tombstone.
	LeaseDeleted
	// LeaseBusy: another reader holds an unexpired lease.
	LeaseBusy
)

// Lease is one answer of AcquireLeases.
type Lease struct {
	// State says which of the other fields are set.
	State LeaseState
	// Row is the record's row when State is LeaseHit.
	Row []byte
	// Token is the lease value written to l when State is LeaseGranted.
	Token string
	// Checkpoint is the larger of the checkpoint version of the Debezium
	// server that streams the table and the table's fill floor (the newest
	// refresh-mode change that found no record), read atomically with the
	// grant; empty when neither is recorded. Every change up to it had
	// committed before the caller reads the database, so the fill's version
	// is at least this.
	Checkpoint cdc.Version
}

// acquireScript takes a lease where the record has no row, no tombstone and
// no unexpired lease. KEYS[1] record, KEYS[2] checkpoint hash; ARGV: token,
// lease TTL in ms, table. The version it answers is the larger of the
// checkpoint of the server that streams the table and the table's fill
// floor (applyScript): both were processed, so committed, before the caller
// reads the database. A record holding nothing but the lease expires with
// it, so an abandoned lease on an absent row leaves nothing behind; a record
// with a version (a marker) keeps its TTL, and the deadline inside l lets the
// next reader take over.
// Returns {0, lease, checkpoint} granted, {1, row} hit, {2} deleted, {3} busy.
var acquireScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'd', 't', 'l')
if r[1] then return {1, r[1]} end
if r[2] then return {2} end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if r[3] then
  local dl = tonumber(string.match(r[3], '%.(%d+)$'))
  if dl and dl > ms then return {3} end
end
local lease = string.format('%s.%d', ARGV[1], ms + tonumber(ARGV[2]))
local bare = redis.call('HEXISTS', KEYS[1], 'v') == 0
redis.call('HSET', KEYS[1], 'l', lease)
if bare then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local cp = ''
local s = redis.call('HGET', KEYS[2], 'table|' .. ARGV[3])
if s then cp = redis.call('HGET', KEYS[2], s) or '' end
local f = redis.call('HGET', KEYS[2], 'floor|' .. ARGV[3])
if f and f > cp then cp = f end
return {0, lease, cp}
`)

// fillScript writes a row ("d") or a tombstone ("t") where the caller's lease
// is still in l, or with kind "r" only gives the lease back (a record left
// empty disappears). KEYS[1] record; ARGV: lease, kind, checkpoint version,
// TTL in ms ("0": none), row. The version is the larger of the record's and the
// checkpoint; the record is replaced (DEL first), which clears the lease and
// any old TTL. A tombstone keeps a longer TTL the
// record already had (a marker's), so filling never shortens what versions
// are remembered. Returns 1 filled, 0 lease lost.
var fillScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'l') ~= ARGV[1] then return 0 end
if ARGV[2] == 'r' then
  redis.call('HDEL', KEYS[1], 'l')
  return 1
end
local v = redis.call('HGET', KEYS[1], 'v')
local nv = ARGV[3]
if v and v > nv then nv = v end
local ttl = tonumber(ARGV[4])
if ARGV[2] == 't' then
  local left = redis.call('PTTL', KEYS[1])
  if ttl > 0 and left > ttl then ttl = left end
end
redis.call('DEL', KEYS[1])
if ARGV[2] == 'd' then
  redis.call('HSET', KEYS[1], 'd', ARGV[5])
else
  redis.call('HSET', KEYS[1], 't', '1')
end
if nv ~= '' then redis.call('HSET', KEYS[1], 'v', nv) end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`)

// AcquireLeases tries to take the fill lease of each key (records of table,
// under prefix) in one pipeline, for ttl. Leases are released by a fill, by
// any applied change, or when ttl passes.
func AcquireLeases(ctx context.Context, c redis.UniversalClient, prefix, table string, keys []string, ttl time.Duration) ([]Lease, error) {
	cp := CheckpointKey(prefix)
	ms := strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	cmds := evalAll(ctx, c, acquireScript, len(keys), func(i int) ([]string, []any) {
		return []string{keys[i], cp}, []any{strconv.FormatUint(rand.Uint64(), 36), ms, table}
	})
	out := make([]Lease, len(keys))
	for i, cmd := range cmds {
		vals, err := cmd.Slice()
		if err != nil {
			return nil, fmt.Errorf("redisstore: acquire lease %s: %w", keys[i], err)
		}
		if len(vals) == 0 {
			return nil, fmt.Errorf("redisstore: acquire lease %s: empty answer", keys[i])
		}
		code, _ := vals[0].(int64)
		switch {
		case code == 0 && len(vals) == 3:
			token, _ := vals[1].(string)
			version, _ := vals[2].(string)
			out[i] = Lease{State: LeaseGranted, Token: token, Checkpoint: cdc.Version(version)}
		case code == 1 && len(vals) == 2:
			row, _ := vals[1].(string)
			out[i] = Lease{State: LeaseHit, Row: []byte(row)}
		case code == 2:
			out[i] = Lease{State: LeaseDeleted}
		case code == 3:
			out[i] = Lease{State: LeaseBusy}
		default:
			return nil, fmt.Errorf("redisstore: acquire lease %s: unexpected answer %v", keys[i], vals)
		}
	}
	return out, nil
}

// Fill is one write under a lease.
type Fill struct {
	// Key is the record's key.
	Key string
	// Lease is the granted lease the fill is made under.
	Lease Lease
	// Row is the row's canonical JSON; nil writes a tombstone (the database
	// has no such row).
	Row []byte
	// Release gives the lease back without writing anything (Row and TTL
	// are ignored), so other readers need not wait for it to expire.
	Release bool
	// TTL is the record's TTL; 0 keeps it until changed.
	TTL time.Duration
}

// FillLeases writes (or releases) each fill whose lease is still held, in one
// pipeline. It reports per fill whether it was written; false means a change (or another
// reader after the lease expired) got there first, which is the lease doing
// its job, not an error.
func FillLeases(ctx context.Context, c redis.UniversalClient, fills []Fill) ([]bool, error) {
	cmds := evalAll(ctx, c, fillScript, len(fills), func(i int) ([]string, []any) {
		f := &fills[i]
		kind, row := "d", f.Row
		switch {
		case f.Release:
			kind, row = "r", []byte{}
		case row == nil:
			kind, row = "t", []byte{}
		}
		ttl := int64(0)
		if f.TTL > 0 {
			ttl = max(f.TTL.Milliseconds(), 1) // a positive TTL never rounds down to none
		}
		return []string{f.Key}, []any{f.Lease.Token, kind, string(f.Lease.Checkpoint), strconv.FormatInt(ttl, 10), row}
	})
	out := make([]bool, len(fills))
	for i, cmd := range cmds {
		n, err := cmd.Int64()
		if err != nil {
			return nil, fmt.Errorf("redisstore: fill %s: %w", fills[i].Key, err)
		}
		out[i] = n == 1
	}
	return out, nil
}
