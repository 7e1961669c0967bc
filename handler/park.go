package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Rejected is a message that can never be applied, with why and everything
// needed to replay it.
type Rejected struct {
	// Reason says what was wrong, e.g. "decode: no key for table x.y".
	Reason string
	// Payload is the message data as delivered (for a broken wrapped
	// envelope, the whole request body).
	Payload []byte
	// Attributes are the message attributes; may be nil.
	Attributes map[string]string
	// MessageID, PublishTime (RFC 3339, as Pub/Sub wrote it), OrderingKey and
	// Subscription come from the push; empty when the push did not carry them.
	MessageID    string
	PublishTime  string
	OrderingKey  string
	Subscription string
	// RejectedAt is when the handler gave up on the message.
	RejectedAt time.Time
}

// Parker keeps rejected messages where an operator (cachectl) can inspect
// and replay them. An error means the message is not safely kept: the push
// is then answered 5xx so Pub/Sub redelivers it. Park must not keep
// rej.Payload after it returns (it lives in a reused request buffer).
type Parker interface {
	Park(ctx context.Context, rej Rejected) error
}

// RejectedStreamMaxLen caps the rejected stream (approximately, MAXLEN ~).
const RejectedStreamMaxLen = 100000

// RejectedStreamKey returns the key of the rejected stream for a prefix:
// <prefix>__cdc:rejected.
func RejectedStreamKey(prefix string) string { return prefix + "__cdc:rejected" }

// RedisParker parks rejected messages in a capped Redis stream, the default
// when no reject topic is configured.
//
// Stream format (a contract: cachectl and other tools read it). Key
// <prefix>__cdc:rejected, trimmed with XADD MAXLEN ~ 100000; each entry has
// the fields:
//
//	reason        why the message was rejected (text)
//	payload       the message data, raw bytes as delivered
//	attributes    the message attributes as a JSON object ({} when none)
//	message_id    Pub/Sub message id ("" when unknown)
//	publish_time  Pub/Sub publish time, RFC 3339 as delivered ("" when unknown)
//	ordering_key  Pub/Sub ordering key, the Debezium key ("" when none)
//	rejected_at   when it was parked, RFC 3339 with nanoseconds, UTC
//
// Replaying an entry means publishing payload with attributes and
// ordering_key to the table's topic again.
type RedisParker struct {
	client redis.UniversalClient
	key    string
}

// NewRedisParker returns a parker writing to prefix's rejected stream.
func NewRedisParker(client redis.UniversalClient, prefix string) *RedisParker {
	return &RedisParker{client: client, key: RejectedStreamKey(prefix)}
}

// Park adds the message to the stream.
func (p *RedisParker) Park(ctx context.Context, rej Rejected) error {
	attrs := []byte("{}")
	if len(rej.Attributes) > 0 {
		var err error
		if attrs, err = json.Marshal(rej.Attributes); err != nil {
			return fmt.Errorf("park: attributes: %w", err)
		}
	}
	err := p.client.XAdd(ctx, &redis.XAddArgs{
		Stream: p.key,
		MaxLen: RejectedStreamMaxLen,
		Approx: true,
		Values: []any{
			"reason", rej.Reason,
			"payload", rej.Payload,
			"attributes", attrs,
			"message_id", rej.MessageID,
			"publish_time", rej.PublishTime,
			"ordering_key", rej.OrderingKey,
			"rejected_at", rej.RejectedAt.UTC().Format(time.RFC3339Nano),
		},
	}).Err()
	if err != nil {
		return fmt.Errorf("park in %s: %w", p.key, err)
	}
	return nil
}
