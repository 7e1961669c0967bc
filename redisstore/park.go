package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// Default bounds of the rejected stream. The stream lives in the cache's
// own Redis, which runs with noeviction: parked payloads must never crowd
// out cache writes, so the stream is bounded by bytes as well as entries,
// and a message that does not fit is refused (its delivery is retried and
// the subscription's dead-letter topic keeps it) rather than an older entry
// trimmed.
const (
	// DefaultParkMaxEntries bounds the number of entries.
	DefaultParkMaxEntries = 100000
	// DefaultParkMaxBytes bounds the bytes of all entries' values: 64 MiB.
	DefaultParkMaxBytes = 64 << 20
	// DefaultParkMaxEntryBytes bounds one entry's values: 1 MiB.
	DefaultParkMaxEntryBytes = 1 << 20
)

// ErrParkTooLarge is returned (wrapped) by RedisParker.Park for a message
// whose entry would exceed the per-entry bound, and ErrParkFull when the
// stream holds its bound of entries or bytes. Either way the message is not
// parked: the transport retries it and the dead-letter topic is the backstop.
var (
	ErrParkTooLarge = errors.New("message too large for the rejected stream")
	ErrParkFull     = errors.New("rejected stream full")
)

// RejectedStreamKey returns the key of the rejected stream for a prefix:
// <prefix>__cdc:rejected.
func RejectedStreamKey(prefix string) string { return prefix + "__cdc:rejected" }

// RejectedBytesKey returns the key of the rejected stream's byte count:
// <prefix>__cdc:rejected:bytes, the sum of the value lengths of its entries.
func RejectedBytesKey(prefix string) string { return prefix + "__cdc:rejected:bytes" }

// ParkLimits bound the rejected stream; a zero field takes its default.
type ParkLimits struct {
	MaxEntries, MaxBytes, MaxEntryBytes int64
}

// RedisParker parks rejected messages in a bounded Redis stream, the
// default when no reject topic is configured. It implements
// pipeline.Parker.
//
// Stream format (a contract: cachectl and other tools read it). Key
// <prefix>__cdc:rejected; each entry has the fields:
//
//	reason        why the message was rejected (text)
//	payload       the message data, raw bytes as delivered
//	attributes    the message attributes as a JSON object ({} when none)
//	message_id    the queue's message id ("" when unknown)
//	publish_time  publish time, RFC 3339 with nanoseconds, UTC ("" when unknown)
//	ordering_key  the Debezium key (Pub/Sub ordering key, Kafka record key; "" when none)
//	rejected_at   when it was parked, RFC 3339 with nanoseconds, UTC
//
// <prefix>__cdc:rejected:bytes holds the sum of the lengths of every
// entry's values. Park refuses a message when the stream holds MaxEntries
// entries, when its bytes would pass MaxBytes, or when its own entry is
// over MaxEntryBytes; nothing already parked is ever trimmed. Remove an
// entry with Delete, which keeps the count right (a plain XDEL leaves it
// high, so the stream refuses early, until the stream is empty again).
//
// Replaying an entry means publishing payload with attributes and
// ordering_key to the table's topic again.
type RedisParker struct {
	client redis.UniversalClient
	keys   []string // the stream and its byte count
	limits ParkLimits
}

var _ pipeline.Parker = (*RedisParker)(nil)

// NewRedisParker returns a parker writing to prefix's rejected stream with
// the default limits.
func NewRedisParker(client redis.UniversalClient, prefix string) *RedisParker {
	return NewRedisParkerLimits(client, prefix, ParkLimits{})
}

// NewRedisParkerLimits returns a parker with the given limits.
func NewRedisParkerLimits(client redis.UniversalClient, prefix string, l ParkLimits) *RedisParker {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultParkMaxEntries
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultParkMaxBytes
	}
	if l.MaxEntryBytes <= 0 {
		l.MaxEntryBytes = DefaultParkMaxEntryBytes
	}
	return &RedisParker{client: client, keys: []string{RejectedStreamKey(prefix), RejectedBytesKey(prefix)}, limits: l}
}

// parkScript adds an entry if the stream has room. KEYS: the stream, its
// byte count. ARGV: max entries, max bytes, max entry bytes, the entry's
// bytes, then its fields and values. Returns the entry id, or -1 (entry too
// large), -2 (too many entries), -3 (too many bytes). The count is taken as
// zero when the stream is empty, so a count left high by a plain XDEL or a
// deleted stream heals.
var parkScript = redis.NewScript(`
local n = tonumber(ARGV[4])
if n > tonumber(ARGV[3]) then return -1 end
local len = redis.call('XLEN', KEYS[1])
if len >= tonumber(ARGV[1]) then return -2 end
local used = 0
if len > 0 then used = tonumber(redis.call('GET', KEYS[2]) or '0') end
if used + n > tonumber(ARGV[2]) then return -3 end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
redis.call('SET', KEYS[2], used + n)
return id
`)

// unparkScript deletes entries and subtracts their bytes. KEYS: the stream,
// its byte count; ARGV: entry ids. Returns how many were deleted.
var unparkScript = redis.NewScript(`
local deleted = 0
for _, id in ipairs(ARGV) do
  local e = redis.call('XRANGE', KEYS[1], id, id)
  if e[1] then
    local n = 0
    local f = e[1][2]
    for i = 2, #f, 2 do n = n + #f[i] end
    redis.call('XDEL', KEYS[1], id)
    if redis.call('DECRBY', KEYS[2], n) < 0 then redis.call('SET', KEYS[2], 0) end
    deleted = deleted + 1
  end
end
return deleted
`)

// Park adds the message to the stream, or returns an error wrapping
// ErrParkTooLarge or ErrParkFull when it does not fit.
func (p *RedisParker) Park(ctx context.Context, rej pipeline.Rejected) error {
	attrs := []byte("{}")
	if len(rej.Attributes) > 0 {
		var err error
		if attrs, err = json.Marshal(rej.Attributes); err != nil {
			return fmt.Errorf("park: attributes: %w", err)
		}
	}
	published := ""
	if !rej.PublishTime.IsZero() {
		published = rej.PublishTime.UTC().Format(time.RFC3339Nano)
	}
	values := []string{
		"reason", rej.Reason,
		"payload", string(rej.Payload),
		"attributes", string(attrs),
		"message_id", rej.MessageID,
		"publish_time", published,
		"ordering_key", rej.Key,
		"rejected_at", rej.RejectedAt.UTC().Format(time.RFC3339Nano),
	}
	var size int64
	for i := 1; i < len(values); i += 2 {
		size += int64(len(values[i]))
	}
	if size > p.limits.MaxEntryBytes {
		// Refused before sending megabytes to Redis for nothing.
		return fmt.Errorf("park in %s: %w (%d bytes, limit %d)", p.keys[0], ErrParkTooLarge, size, p.limits.MaxEntryBytes)
	}
	args := make([]any, 0, 4+len(values))
	args = append(args, p.limits.MaxEntries, p.limits.MaxBytes, p.limits.MaxEntryBytes, size)
	for _, v := range values {
		args = append(args, v)
	}
	res, err := parkScript.Run(ctx, p.client, p.keys, args...).Result()
	if err != nil {
		return fmt.Errorf("park in %s: %w", p.keys[0], err)
	}
	switch res {
	case int64(-1):
		return fmt.Errorf("park in %s: %w (%d bytes, limit %d)", p.keys[0], ErrParkTooLarge, size, p.limits.MaxEntryBytes)
	case int64(-2):
		return fmt.Errorf("park in %s: %w: %d entries", p.keys[0], ErrParkFull, p.limits.MaxEntries)
	case int64(-3):
		return fmt.Errorf("park in %s: %w: %d bytes would pass the %d-byte bound", p.keys[0], ErrParkFull, size, p.limits.MaxBytes)
	}
	return nil
}

// Delete removes parked entries by id and subtracts their bytes; it
// returns how many existed.
func (p *RedisParker) Delete(ctx context.Context, ids ...string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	n, err := unparkScript.Run(ctx, p.client, p.keys, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("unpark from %s: %w", p.keys[0], err)
	}
	return n, nil
}
