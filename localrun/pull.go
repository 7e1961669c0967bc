package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/cloudsql-cache/cloudsql-cache/internal/pubsubfake"
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
)

// PullMaxDeliveryAttempts is the pull subscriptions' dead-letter policy, as
// Terraform sets it and the push bridge applies it.
const PullMaxDeliveryAttempts = 5

// PullQueue is the Pub/Sub of a pull run: the fake (internal/pubsubfake,
// pstest with a batching StreamingPull) served on a port of 127.0.0.1, a
// pull subscription per topic with a dead-letter policy, and a client that
// publishes. The worker pulls the subscriptions through
// PUBSUB_EMULATOR_HOST (Env) as it would Google's. Its Stats count acks in
// the fake, so the backlog is what the worker has not acknowledged.
type PullQueue struct {
	*pushbridge.PubSub
	// Fake is the server; its ack tallies (Acks) are the run's acks.
	Fake *pubsubfake.Server
	// Subscriptions are the pull subscriptions' full names.
	Subscriptions []string

	deadLetterSub string
	deadLettered  atomic.Int64 // messages read from the dead-letter subscription
}

// PullOptions configure StartPull.
type PullOptions struct {
	// Ordering enables message ordering on the subscriptions.
	Ordering bool
	// MaxDeliveryAttempts is the dead-letter policy; default
	// PullMaxDeliveryAttempts.
	MaxDeliveryAttempts int
}

// StartPull starts the fake and creates the topics, a dead-letter topic
// and the pull subscriptions.
func StartPull(ctx context.Context, topics []string, opts PullOptions) (q *PullQueue, err error) {
	if opts.MaxDeliveryAttempts <= 0 {
		opts.MaxDeliveryAttempts = PullMaxDeliveryAttempts
	}
	fake, err := pubsubfake.Start("127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pubsub fake: %w", err)
	}
	ps, err := pushbridge.DialPubSub(ctx, "local", fake.Addr)
	if err != nil {
		fake.Close()
		return nil, err
	}
	q = &PullQueue{PubSub: ps, Fake: fake}
	defer func() {
		if err != nil {
			q.Close()
		}
	}()
	admin := ps.Client().SubscriptionAdminClient
	const deadLetter = "dead-letter"
	if err := ps.CreateTopic(ctx, deadLetter); err != nil {
		return nil, err
	}
	q.deadLetterSub = ps.SubscriptionName(deadLetter)
	if _, err := admin.CreateSubscription(ctx, &pubsubpb.Subscription{Name: q.deadLetterSub, Topic: ps.TopicName(deadLetter)}); err != nil {
		return nil, fmt.Errorf("dead-letter subscription: %w", err)
	}
	for _, topic := range topics {
		if err := ps.CreateTopic(ctx, topic); err != nil {
			return nil, err
		}
		name := ps.SubscriptionName(topic + "-pull")
		if _, err := admin.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: name, Topic: ps.TopicName(topic), AckDeadlineSeconds: 60, EnableMessageOrdering: opts.Ordering,
			DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: ps.TopicName(deadLetter),
				MaxDeliveryAttempts: int32(opts.MaxDeliveryAttempts)},
		}); err != nil {
			return nil, fmt.Errorf("pull subscription for %s: %w", topic, err)
		}
		q.Subscriptions = append(q.Subscriptions, name)
	}
	return q, nil
}

// Env is the worker's environment for this queue.
func (q *PullQueue) Env() []string {
	return []string{"DELIVERY=pull", "PUBSUB_EMULATOR_HOST=" + q.Fake.Addr, "PUBSUB_SUBSCRIPTIONS=" + strings.Join(q.Subscriptions, ",")}
}

// Run counts what reaches the dead-letter subscription (acknowledging it
// there) until ctx ends.
func (q *PullQueue) Run(ctx context.Context) error {
	admin := q.Client().SubscriptionAdminClient
	for ctx.Err() == nil {
		// pstest's Pull waits up to 500 ms for a message: no busy loop.
		resp, err := admin.Pull(ctx, &pubsubpb.PullRequest{Subscription: q.deadLetterSub, MaxMessages: 1000})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dead-letter subscription: %w", err)
		}
		if len(resp.ReceivedMessages) == 0 {
			continue
		}
		ids := make([]string, len(resp.ReceivedMessages))
		for i, m := range resp.ReceivedMessages {
			ids[i] = m.AckId
		}
		if err := admin.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: q.deadLetterSub, AckIds: ids}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dead-letter subscription: %w", err)
		}
		q.deadLettered.Add(int64(len(ids)))
	}
	return nil
}

// Stats returns the queue's counters: published, acknowledged by the worker
// (acks that took effect, in the fake), dead-lettered, and the backlog
// between them. Delivery counts are the worker's (its /metrics).
func (q *PullQueue) Stats() pushbridge.Stats {
	s := pushbridge.Stats{Published: q.Published(), Acked: q.Fake.Acked(), DeadLettered: q.deadLettered.Load()}
	s.Pending = s.Published - s.Acked - s.DeadLettered
	return s
}

// Idle reports whether every published message is acknowledged or
// dead-lettered.
func (q *PullQueue) Idle() bool { return q.Stats().Pending == 0 }

// Pause and Resume are no-ops: the worker counts an outcome before it acks,
// so once Idle its counters and the queue's agree without holding it.
func (q *PullQueue) Pause() {}

// Resume: see Pause.
func (q *PullQueue) Resume() {}

// ServeHTTP serves Stats as JSON, as the bridge does (for cachectl status).
func (q *PullQueue) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(q.Stats())
}

// Close closes the client and stops the fake.
func (q *PullQueue) Close() error {
	return errors.Join(q.PubSub.Close(), q.Fake.Close())
}
