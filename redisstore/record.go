package redisstore

import (
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"

	"github.com/redis/go-redis/v9"
)

// The fields of a record hash (design section 2, "Record").
const (
	// FieldVersion holds the cdc.Version of the newest change known for the row.
	FieldVersion = "v"
	// FieldData holds the row as canonical JSON; its presence is a hit.
	FieldData = "d"
	// FieldTombstone is "1" when the row is deleted.
	FieldTombstone = "t"
	// FieldLease holds the read path's fill lease token.
	FieldLease = "l"
)

// Record kinds passed to applyScript as ARGV[2].
const (
	kindRow       = "d" // {v, d}
	kindTombstone = "t" // {v, t}
	kindMarker    = "m" // {v}
)

// Return codes of applyScript.
const (
	codeWritten = 0
	codeStale   = 1
	codeAbsent  = 2 // refresh mode and no record at all
)

// applyScript writes a batch of changes, each if it is newer than its
// record and than its table's truncate watermark, in order, each with its own
// result. KEYS[1] the watermark hash (TruncatedKey), KEYS[2] the checkpoint
// hash (CheckpointKey), KEYS[i+2] the record of change i; ARGV holds six per
// change: version, kind (d|t|m), refresh ("1": write only where a record
// exists), ttl in ms ("0": none), table (the watermark's field), row JSON (""
// unless kind d). Returns one element per change: 0 written, 1 stale, 2
// absent (refresh), or the error text of a command that failed (a key of
// another type), which fails that change alone.
//
// A refresh-mode change that finds no record leaves no record, but it
// raises its table's fill floor, the field "floor|<db.table>" of the
// checkpoint hash, to its version (never lowering it), in the same atomic
// call, so before the change is acknowledged. A fill lease taken after it
// reads the floor (acquireScript), and the fill's version is at least the
// floor's: a fill can never carry a version below a change already
// processed for its key, in any instance, whatever the stored checkpoint
// says yet.
//
// One call per batch, rather than one EVALSHA per change, is what makes
// coalescing pay: Redis's cost is mostly per command, not per byte, so the
// script reads each table's watermark once per batch and, for the common
// change to a row, needs three commands (HMGET, HSET, PEXPIRE or PERSIST)
// where a script per change needed five. HMGET of v, t and l says whether
// HDEL is needed; PERSIST stays unconditional so an old TTL (a marker's, a
// lease's, an earlier ttl setting's) never survives.
//
// Versions are fixed-width digit strings, so string order is version order.
// A change at or below the watermark is stale even where no record is left:
// the truncate's scan may already have passed the key, and writing would
// bring back a row the truncate removed. The keys of a batch span hash slots,
// so the store needs a single primary (as the lease scripts do), not Redis
// Cluster.
var applyScript = redis.NewScript(applyLua)

// applyArgs is how many ARGV entries each change of applyScript takes.
const applyArgs = 6

const applyLua = `
local wm, out = {}, {}
local function apply(key, ver, kind, refresh, ttl, tbl, row)
  local r = redis.pcall('HMGET', key, 'v', 't', 'l')
  if r.err then return r.err end
  local v = r[1]
  if v and v >= ver then return 1 end
  local w = wm[tbl]
  if w == nil then
    w = redis.pcall('HGET', KEYS[1], tbl)
    if type(w) == 'table' then return w.err end
    wm[tbl] = w
  end
  if w and w >= ver then return 1 end
  if refresh == '1' and not (v or r[2] or r[3]) and redis.call('EXISTS', key) == 0 then
    return 2
  end
  local e
  if kind == 'd' then
    e = redis.pcall('HSET', key, 'v', ver, 'd', row)
    if type(e) == 'table' then return e.err end
    if r[2] or r[3] then redis.call('HDEL', key, 't', 'l') end
  elseif kind == 't' then
    e = redis.pcall('HSET', key, 'v', ver, 't', '1')
    if type(e) == 'table' then return e.err end
    redis.call('HDEL', key, 'd', 'l')
  else
    e = redis.pcall('HSET', key, 'v', ver)
    if type(e) == 'table' then return e.err end
    redis.call('HDEL', key, 'd', 't', 'l')
  end
  if ttl ~= '0' then
    redis.call('PEXPIRE', key, ttl)
  else
    redis.call('PERSIST', key)
  end
  return 0
end
local floor, raised = {}, {}
for i = 1, #KEYS - 2 do
  local a = (i - 1) * 6
  local ver, tbl = ARGV[a + 1], ARGV[a + 5]
  out[i] = apply(KEYS[i + 2], ver, ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], tbl, ARGV[a + 6])
  if out[i] == 2 then
    if floor[tbl] == nil or floor[tbl] < ver then floor[tbl] = ver end
    raised[tbl] = raised[tbl] or {}
    table.insert(raised[tbl], i)
  end
end
for tbl, ver in pairs(floor) do
  local f = redis.pcall('HGET', KEYS[2], 'floor|' .. tbl)
  if type(f) ~= 'table' and (not f or f < ver) then
    f = redis.pcall('HSET', KEYS[2], 'floor|' .. tbl, ver)
  end
  if type(f) == 'table' and f.err then
    for _, i in ipairs(raised[tbl]) do out[i] = f.err end
  end
end
return out
`

// ApplySharedKeys is how many keys every call of the apply script starts
// with (the watermark and checkpoint hashes) before the records' keys.
const ApplySharedKeys = 2

// watermarkScript raises a table's truncate watermark, never lowering it.
// KEYS[1] the watermark hash; ARGV: table, the truncate's version. Returns
// -1 when the watermark was already above the version (an older truncate
// redelivered), 0 when it equals it (a duplicate), 1 when raised.
var watermarkScript = redis.NewScript(`
local w = redis.call('HGET', KEYS[1], ARGV[1])
if w and w > ARGV[2] then return -1 end
if w == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// truncateScript deletes a record older than a truncate. KEYS[1] record;
// ARGV[1] the truncate's version. A record without v (a bare lease) is older
// than anything: its fill may have read rows the truncate removed.
var truncateScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if v and v >= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`)

// checkpointScript raises one server's checkpoint, never lowering it, and
// records which server streams each listed table. KEYS[1] checkpoint hash;
// ARGV: server, version, commit_ms, applied_ms, server_id, tables...
var checkpointScript = redis.NewScript(`
local s = ARGV[1]
local cur = redis.call('HGET', KEYS[1], s)
if not cur or cur < ARGV[2] then
  redis.call('HSET', KEYS[1], s, ARGV[2], s .. '|commit_ms', ARGV[3], s .. '|applied_ms', ARGV[4], s .. '|server_id', ARGV[5])
end
for i = 6, #ARGV do redis.call('HSET', KEYS[1], 'table|' .. ARGV[i], s) end
return 0
`)

// escapeGlob quotes the characters SCAN MATCH treats as patterns, so a
// table prefix matches only itself.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ApplyCommand returns the apply script's Lua source, and the keys and
// arguments with which the store calls it for a batch of one change: upsert
// row at version into the record key of table (no TTL, replicate mode). Tools
// that drive the script without the store, such as the benchmark's
// redis-benchmark run, use it so they call the script exactly as the store
// does when a change finds no other to share its call. The first
// ApplySharedKeys keys are the batch's, the rest one per change.
func ApplyCommand(prefix, table, key string, version cdc.Version, row []byte) (src string, keys, args []string) {
	return applyLua, []string{TruncatedKey(prefix), CheckpointKey(prefix), key},
		[]string{string(version), kindRow, "0", "0", table, string(row)}
}
