package localrun

import (
	"context"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/cost"
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
)

// ProduceOptions pace the producer.
type ProduceOptions struct {
	// Events is the number of change messages to publish; 0 publishes until
	// ctx is done.
	Events int
	// Rate is messages per second; 0 publishes as fast as the backlog allows.
	Rate float64
	// Malformed is the share of extra malformed messages (not counted in
	// Events), which the function must park.
	Malformed float64
	// MaxBacklog holds publishing back while the bridge's backlog is larger:
	// 2000. It keeps lags meaningful when publishing as fast as possible.
	MaxBacklog int64
	// Published, when set, is called after each publish with the change
	// messages published so far (malformed ones not included).
	Published func(n int)
	// Sent, when set, is called for each message published, malformed
	// ones included, with its message ID: a test keeps what it knows of
	// the change (key, version) by the ID the queue gave it.
	Sent func(m changegen.Message, id string)
	// Cuts, when set, receives requests for a consistent cut (cut.go),
	// served between publishes; Settled reports the backlog drained.
	Cuts    <-chan *cut
	Settled func() bool
}

// Produced is what a producer published.
type Produced struct {
	// Changes counts change messages, Malformed the malformed ones.
	Changes, Malformed int
	// ChangeBytes sums what Pub/Sub bills for the change messages
	// (cost.MessageBytes each).
	ChangeBytes int64
	// MalformedIDs holds the message IDs of the malformed messages.
	MalformedIDs map[string]bool
	// Started and Finished bracket the publishing.
	Started, Finished time.Time
}

const publishBatch = 200

// Publisher publishes messages and returns their message IDs in order:
// *pushbridge.PubSub (the in-process Pub/Sub) or *KafkaPublisher.
type Publisher interface {
	Publish(ctx context.Context, msgs []pushbridge.Message) ([]string, error)
}

// Produce publishes the generator's messages until opts.Events are out or
// ctx is done, and serves cuts (opts.Cuts) between publishes. backlog
// reports the queue's pending count (the bridge's, or the Kafka group's
// lag). The generator and its random choices stay on this goroutine.
func Produce(ctx context.Context, gen *changegen.Generator, ps Publisher, backlog func() int64,
	opts ProduceOptions) (Produced, error) {
	if opts.MaxBacklog <= 0 {
		opts.MaxBacklog = 2000
	}
	p := Produced{MalformedIDs: map[string]bool{}, Started: time.Now()}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var malformedDue float64
	batch := make([]pushbridge.Message, 0, publishBatch)
	sent := make([]changegen.Message, 0, publishBatch)
	malformed := make([]bool, 0, publishBatch)
	message := func(m changegen.Message) pushbridge.Message {
		return pushbridge.Message{Topic: m.Topic, Data: m.Data, OrderingKey: m.OrderingKey, Attributes: m.Attributes}
	}
	for opts.Events == 0 || p.Changes < opts.Events {
		if ctx.Err() != nil {
			break
		}
		select {
		case c := <-opts.Cuts:
			c.hold(ctx, opts.Settled, func(path string) error { return writeExpected(gen, path) })
			continue
		default:
		}
		// How many may go now: the rate's allowance and the backlog's room.
		n := publishBatch
		if opts.Rate > 0 {
			n = min(n, int(opts.Rate*time.Since(p.Started).Seconds())-p.Changes)
		}
		n = min(n, int(opts.MaxBacklog-backlog()))
		if opts.Events > 0 {
			n = min(n, opts.Events-p.Changes)
		}
		if n <= 0 {
			select {
			case <-ctx.Done():
				p.Finished = time.Now()
				return p, nil
			case c := <-opts.Cuts:
				c.hold(ctx, opts.Settled, func(path string) error { return writeExpected(gen, path) })
			case <-tick.C:
			}
			continue
		}
		batch, sent, malformed = batch[:0], sent[:0], malformed[:0]
		for changes := 0; changes < n; {
			for _, m := range gen.Next(n - changes) {
				batch, sent = append(batch, message(m)), append(sent, m)
				malformed = append(malformed, false)
				changes++
				malformedDue += opts.Malformed
			}
			for ; malformedDue >= 1; malformedDue-- {
				m := gen.Malformed()
				batch, sent = append(batch, message(m)), append(sent, m)
				malformed = append(malformed, true)
			}
		}
		// A batch once started is published whole: stopping (ctx) takes
		// effect between batches, so no message is left half-published, on
		// the server but not counted, when the run stops and drains.
		ids, err := ps.Publish(context.WithoutCancel(ctx), batch)
		if err != nil {
			return p, err
		}
		for i, id := range ids {
			if opts.Sent != nil {
				opts.Sent(sent[i], id)
			}
			if malformed[i] {
				p.Malformed++
				p.MalformedIDs[id] = true
			} else {
				p.Changes++
				m := batch[i]
				p.ChangeBytes += int64(cost.MessageBytes(len(m.Data), m.Attributes, m.OrderingKey))
			}
		}
		if opts.Published != nil {
			opts.Published(p.Changes)
		}
	}
	p.Finished = time.Now()
	return p, nil
}
