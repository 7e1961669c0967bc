// Package pipeline is the transport-agnostic batch core of cloudsql-cache:
// every transport (the push handler, the streaming-pull worker, the Kafka
// worker) hands it a batch of queued messages; it decodes them, applies the
// changes with one Store.ApplyBatch call, parks the messages that can never
// apply, counts every outcome and lag by table, and returns one Verdict per
// message that tells the transport whether to acknowledge, or to leave the
// message for redelivery.
//
// The core knows no transport and no store: it sees Messages, a Decoder, a
// Store and a Parker. It logs one line per parked message and one per failed
// batch, none per applied change.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// Message is one queued message, whatever the transport. The core does not
// keep any of its slices after Process returns, so transports may reuse
// their buffers.
type Message struct {
	// Data is the message body: a Debezium event (JSON), or nil for a Kafka
	// tombstone (ignored).
	Data []byte
	// Key is the Debezium key: the Pub/Sub ordering key or the Kafka record
	// key; nil when absent.
	Key []byte
	// Attributes are the Pub/Sub attributes or Kafka headers; may be nil.
	// They are only read when the message is parked.
	Attributes map[string]string
	// ID is the Pub/Sub message id, or "topic/partition/offset" for Kafka.
	ID string
	// Source names where the message came from (the Pub/Sub subscription,
	// the Kafka topic); "" when unknown. Kept with parked messages.
	Source string
	// PublishTime is when the queue accepted the message; zero when unknown.
	PublishTime time.Time
	// Attempt is the delivery attempt when known, else 0.
	Attempt int
}

// Verdict says what the transport does with a message.
type Verdict uint8

const (
	// Ack: applied, deleted, stale or ignored: acknowledge / commit.
	Ack Verdict = iota
	// Parked: permanently bad, kept by the Parker: acknowledge / commit.
	Parked
	// Retry: a transient failure (store or parker unavailable): nack / do
	// not commit, so the message is delivered again later.
	Retry
)

var verdictNames = [...]string{"ack", "parked", "retry"}

// String returns "ack", "parked" or "retry".
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// Decoder turns one message's data and Debezium key (possibly nil) into a
// change. Every error is permanent: the message is parked, and counted and
// logged under the change's Table when the decoder could read it before
// failing ("unknown" otherwise). The change must not alias value or key.
type Decoder interface {
	Decode(value, key []byte) (cdc.Change, error)
}

// Store is a cache store (redisstore, memcachestore): results[i] belongs to
// changes[i]. A result's error is transient (the message is retried) unless
// it wraps cdc.ErrInvalid (the message is parked).
type Store interface {
	ApplyBatch(ctx context.Context, changes []cdc.Change) []cdc.Result
}

// Rejected is a message that can never be applied, with why and everything
// needed to replay it.
type Rejected struct {
	// Reason says what was wrong, e.g. "decode: no key for table x.y".
	Reason string
	// Payload is the message data as delivered (for a broken push envelope,
	// the whole request body).
	Payload []byte
	// Attributes are the message attributes; may be nil.
	Attributes map[string]string
	// MessageID, Key (the Debezium key: ordering key or record key) and
	// Source (subscription or topic) are the message's; empty when unknown.
	MessageID string
	Key       string
	Source    string
	// PublishTime is the message's; zero when unknown.
	PublishTime time.Time
	// RejectedAt is when the core gave up on the message.
	RejectedAt time.Time
}

// Parker keeps rejected messages where an operator can inspect and replay
// them (a Redis stream, a reject topic, a Kafka dead-letter topic). An error
// means the message is not safely kept: its verdict is then Retry, so the
// queue keeps it (and its dead-letter policy is the last backstop). Park
// must not keep rej.Payload after it returns.
type Parker interface {
	Park(ctx context.Context, rej Rejected) error
}

// Config holds a Core's dependencies. Decoder, Store and Parker are
// required; the rest have defaults.
type Config struct {
	Decoder Decoder
	Store   Store
	Parker  Parker
	// Metrics receives the counts and lags; New makes one when nil.
	Metrics *Metrics
	// Logger gets one line per parked message and per failed batch;
	// default slog.Default().
	Logger *slog.Logger
	// Now is the clock for lags; default time.Now.
	Now func() time.Time
}

// Core is the batch core. It is safe for concurrent use: transports may
// call Process from several goroutines.
type Core struct {
	dec     Decoder
	store   Store
	parker  Parker
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
}

// New returns a core with the given dependencies. It panics when Decoder,
// Store or Parker is missing: that is a wiring bug, not a runtime condition.
func New(cfg Config) *Core {
	if cfg.Decoder == nil || cfg.Store == nil || cfg.Parker == nil {
		panic("pipeline: Config needs Decoder, Store and Parker")
	}
	c := &Core{dec: cfg.Decoder, store: cfg.Store, parker: cfg.Parker,
		metrics: cfg.Metrics, log: cfg.Logger, now: cfg.Now}
	if c.metrics == nil {
		c.metrics = NewMetrics()
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Metrics returns the core's metrics.
func (c *Core) Metrics() *Metrics { return c.metrics }

// Logger returns the core's logger, for transports to log through.
func (c *Core) Logger() *slog.Logger { return c.log }

// Process decodes msgs, applies their changes with one Store.ApplyBatch
// call, parks what can never apply, and returns one verdict per message
// (verdicts[i] belongs to msgs[i]). Changes reach the store in message
// order. A failed store call makes every message it carried Retry.
func (c *Core) Process(ctx context.Context, msgs []Message) []Verdict {
	verdicts := make([]Verdict, len(msgs))
	changes := make([]cdc.Change, 0, len(msgs))
	// idx[j] is the message of changes[j]; nil (saving a push an
	// allocation) until a message fails to decode, while j is that index.
	var idx []int
	for i := range msgs {
		ch, err := c.dec.Decode(msgs[i].Data, msgs[i].Key)
		if err != nil {
			verdicts[i] = c.park(ctx, &msgs[i], "decode: "+err.Error(), ch.Table)
			if idx == nil {
				idx = make([]int, len(changes), len(msgs))
				for j := range idx {
					idx[j] = j
				}
			}
			continue
		}
		changes = append(changes, ch)
		if idx != nil {
			idx = append(idx, i)
		}
	}
	if len(changes) == 0 {
		return verdicts
	}
	start := c.now()
	results := c.store.ApplyBatch(ctx, changes)
	end := c.now()
	var (
		failed   int
		firstErr error
		firstCh  *cdc.Change
		firstMsg *Message
	)
	for j := range changes {
		i := j
		if idx != nil {
			i = idx[j]
		}
		ch, res, msg := &changes[j], results[j], &msgs[i]
		tm := c.metrics.Table(ch.Table)
		switch {
		case res.Err != nil && errors.Is(res.Err, cdc.ErrInvalid):
			verdicts[i] = c.park(ctx, msg, "store: "+res.Err.Error(), ch.Table)
		case res.Err != nil:
			tm.Outcomes[cdc.OutcomeFailed].Inc()
			verdicts[i] = Retry
			if failed++; firstErr == nil {
				firstErr, firstCh, firstMsg = res.Err, ch, msg
			}
		case res.Outcome == cdc.OutcomeRejected:
			verdicts[i] = c.park(ctx, msg, "store rejected the change", ch.Table)
		default:
			verdicts[i] = Ack
			c.observe(tm, ch, res.Outcome, msg.PublishTime, start, end)
		}
	}
	if failed > 0 {
		// One line per failed batch, not per change: an outage fails every
		// change of every batch.
		c.log.ErrorContext(ctx, "cdc apply failed", "err", firstErr.Error(), "table", firstCh.Table,
			"key", firstCh.Key, "message_id", firstMsg.ID, "failed", failed, "batch", len(msgs))
	}
	return verdicts
}

// observe counts an acknowledged change and records its lags.
func (c *Core) observe(tm *TableMetrics, ch *cdc.Change, outcome cdc.Outcome, published, start, end time.Time) {
	tm.Outcomes[outcome].Inc()
	tm.Apply.Observe(end.Sub(start))
	nowMs := end.UnixMilli()
	if ch.CommitMs > 0 {
		tm.CommitLag.Observe(time.Duration(nowMs-ch.CommitMs) * time.Millisecond)
	}
	if ch.EventMs > 0 {
		tm.PipelineLag.Observe(time.Duration(nowMs-ch.EventMs) * time.Millisecond)
	}
	if !published.IsZero() {
		tm.Queue.Observe(end.Sub(published))
	}
}

// Reject parks a message the transport itself found unusable (a broken push
// envelope, say) with the reason given, and returns Parked, or Retry when
// parking failed. It is counted as rejected under the "unknown" table.
func (c *Core) Reject(ctx context.Context, msg Message, reason string) Verdict {
	return c.park(ctx, &msg, reason, "")
}

// park hands a permanently bad message to the Parker: Parked, or Retry when
// parking fails (so the queue keeps the message).
func (c *Core) park(ctx context.Context, msg *Message, reason, table string) Verdict {
	rej := Rejected{
		Reason:      reason,
		Payload:     msg.Data,
		Attributes:  msg.Attributes,
		MessageID:   msg.ID,
		Key:         string(msg.Key),
		Source:      msg.Source,
		PublishTime: msg.PublishTime,
		RejectedAt:  c.now(),
	}
	tm := c.metrics.Table(table)
	if err := c.parker.Park(ctx, rej); err != nil {
		tm.Outcomes[cdc.OutcomeFailed].Inc()
		c.log.ErrorContext(ctx, "cdc park failed", "err", err.Error(), "reason", reason,
			"table", table, "message_id", rej.MessageID, "payload_bytes", len(msg.Data))
		return Retry
	}
	tm.Outcomes[cdc.OutcomeRejected].Inc()
	c.log.WarnContext(ctx, "cdc message rejected", "reason", reason, "table", table,
		"message_id", rej.MessageID, "ordering_key", rej.Key, "payload_bytes", len(msg.Data))
	return Parked
}
