package pushbridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// Config configures a Bridge. Zero values take the defaults in the comments.
type Config struct {
	// PubSub is the server the bridge pulls from. Required.
	PubSub *PubSub
	// Topics are the topic IDs to push; New creates missing ones and one
	// push subscription per topic. Required.
	Topics []string
	// Endpoint is the push URL, e.g. http://127.0.0.1:8080/. Required.
	Endpoint string
	// Concurrency is the number of POSTs in flight at most: 16.
	Concurrency int
	// Ordering enables message ordering on the subscriptions, and the bridge
	// serialises deliveries per ordering key.
	Ordering bool
	// MaxDeliveryAttempts is the dead-letter policy's limit: 5 (Pub/Sub's
	// minimum; its maximum is 100).
	MaxDeliveryAttempts int
	// MinBackoff and MaxBackoff bound the exponential backoff before a failed
	// message is redelivered: 50ms and 5s (Pub/Sub's retry policy allows
	// 10s..600s; locally shorter waits keep runs short).
	MinBackoff, MaxBackoff time.Duration
	// Faults are injected for chaos tests; none by default.
	Faults Faults
	// HTTPClient posts the envelopes; default a client with a 30 s timeout.
	HTTPClient *http.Client
	// Observe, when set, is called after every delivery from the delivering
	// goroutine; it must be safe for concurrent use and quick.
	Observe func(Delivery)
	// Seed seeds the fault injection.
	Seed uint64
}

// Faults are the misbehaviours a bridge can inject.
type Faults struct {
	// Duplicate is the share (0..1) of acknowledged messages delivered once
	// more, as Pub/Sub's at-least-once delivery may.
	Duplicate float64
	// DuplicateDelay is the longest wait before a duplicate is delivered
	// (uniformly random): 100ms. Late duplicates overtake newer changes.
	DuplicateDelay time.Duration
	// MaxDelay delays every delivery by a uniformly random time up to it, so
	// concurrent deliveries overtake each other.
	MaxDelay time.Duration
	// Shuffle delivers each pulled batch in random order.
	Shuffle bool
}

// Delivery describes one POST, for Config.Observe.
type Delivery struct {
	// Subscription is the subscription ID.
	Subscription string
	// MessageID is the Pub/Sub message ID.
	MessageID string
	// Attempt is Pub/Sub's delivery attempt (1 for the first).
	Attempt int
	// Duplicate is true for an injected extra delivery of an acked message.
	Duplicate bool
	// Status is the HTTP status, 0 when the request failed.
	Status int
	// Err is the transport error, if any.
	Err error
}

// Stats are the bridge's counters.
type Stats struct {
	// Published counts messages published (PubSub.Published).
	Published int64 `json:"published"`
	// Delivered counts POSTs answered or failed, duplicates included.
	Delivered int64 `json:"delivered"`
	// Acked counts messages acknowledged after a 2xx.
	Acked int64 `json:"acked"`
	// Retried counts deliveries that failed and were handed back for
	// redelivery.
	Retried int64 `json:"retried"`
	// DeadLettered counts messages moved to the dead-letter topic after
	// MaxDeliveryAttempts failed deliveries.
	DeadLettered int64 `json:"dead_lettered"`
	// Duplicates counts injected duplicate deliveries made.
	Duplicates int64 `json:"duplicates"`
	// Pending is Published - Acked - DeadLettered: the backlog.
	Pending int64 `json:"pending"`
}

const (
	pollInterval     = 10 * time.Millisecond // wait after an empty pull
	ackFlushInterval = 5 * time.Millisecond
	ackDeadline      = 600 // seconds, Pub/Sub's maximum: no redelivery while the bridge holds a message
	deadLetterTopic  = "dead-letter"
)

// Bridge pulls from Pub/Sub and pushes to an HTTP endpoint.
type Bridge struct {
	cfg    Config
	ps     *PubSub
	subs   []*subscription
	client *http.Client
	work   chan *delivery

	// gate is held shared by every POST; Pause takes it exclusively.
	gate sync.RWMutex

	rngMu sync.Mutex // guards rng
	rng   *rand.Rand

	keysMu sync.Mutex             // guards keys
	keys   map[string][]*delivery // ordering keys with a delivery in progress, and those waiting

	attemptsMu sync.Mutex     // guards attempts
	attempts   map[string]int // delivery attempts by message ID, until acked or dead-lettered

	delivered, acked, retried, deadLettered, duplicates atomic.Int64
	dupPending                                          atomic.Int64 // duplicates scheduled, not yet delivered
	pullErrors                                          atomic.Int64
}

type subscription struct {
	id, name    string
	outstanding atomic.Int64  // pulled, not yet acked or nacked
	wake        chan struct{} // capacity 1: outstanding went down

	ackMu sync.Mutex // guards acks
	acks  []string   // ack IDs to acknowledge at the next flush
}

type delivery struct {
	sub     *subscription
	msg     *pubsubpb.ReceivedMessage
	attempt int // Pub/Sub's delivery attempt, from 1
	dup     bool
}

// New creates the topics that do not exist, a dead-letter topic, and a push
// subscription per topic. Run starts pushing.
func New(ctx context.Context, cfg Config) (*Bridge, error) {
	if cfg.PubSub == nil || len(cfg.Topics) == 0 || cfg.Endpoint == "" {
		return nil, errors.New("pushbridge: Config needs PubSub, Topics and Endpoint")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.MaxDeliveryAttempts <= 0 {
		cfg.MaxDeliveryAttempts = 5
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 50 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.Faults.Duplicate > 0 && cfg.Faults.DuplicateDelay <= 0 {
		cfg.Faults.DuplicateDelay = 100 * time.Millisecond
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency * 2, IdleConnTimeout: 90 * time.Second},
		}
	}
	b := &Bridge{
		cfg:      cfg,
		ps:       cfg.PubSub,
		client:   client,
		work:     make(chan *delivery, cfg.Concurrency),
		rng:      newRand(cfg.Seed),
		keys:     map[string][]*delivery{},
		attempts: map[string]int{},
	}
	admin := b.ps.client.SubscriptionAdminClient
	if err := b.ensureTopic(ctx, deadLetterTopic); err != nil {
		return nil, err
	}
	// A subscription keeps what reaches the dead-letter topic.
	if _, err := admin.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: b.ps.SubscriptionName(deadLetterTopic), Topic: b.ps.TopicName(deadLetterTopic),
	}); err != nil {
		return nil, fmt.Errorf("pushbridge: dead-letter subscription: %w", err)
	}
	for _, topic := range cfg.Topics {
		if err := b.ensureTopic(ctx, topic); err != nil {
			return nil, err
		}
		id := topic + "-push"
		s := &subscription{id: id, name: b.ps.SubscriptionName(id), wake: make(chan struct{}, 1)}
		_, err := admin.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name:                  s.name,
			Topic:                 b.ps.TopicName(topic),
			AckDeadlineSeconds:    ackDeadline,
			EnableMessageOrdering: cfg.Ordering,
		})
		if err != nil {
			return nil, fmt.Errorf("pushbridge: subscription for %s: %w", topic, err)
		}
		b.subs = append(b.subs, s)
	}
	return b, nil
}

func (b *Bridge) ensureTopic(ctx context.Context, id string) error {
	err := b.ps.CreateTopic(ctx, id)
	if status.Code(err) == codes.AlreadyExists {
		return nil
	}
	return err
}

// Run pushes until ctx is done, then waits for its goroutines.
func (b *Bridge) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	maxOut := int64(4 * b.cfg.Concurrency)
	for _, s := range b.subs {
		wg.Go(func() { b.pull(ctx, s, maxOut) })
	}
	for range b.cfg.Concurrency {
		wg.Go(func() { b.worker(ctx) })
	}
	wg.Go(func() { b.ackLoop(ctx) })
	wg.Wait()
	return nil
}

// pull keeps up to maxOut messages of one subscription outstanding.
func (b *Bridge) pull(ctx context.Context, s *subscription, maxOut int64) {
	admin := b.ps.client.SubscriptionAdminClient
	for ctx.Err() == nil {
		room := maxOut - s.outstanding.Load()
		if room <= 0 {
			select {
			case <-s.wake:
			case <-ctx.Done():
			}
			continue
		}
		resp, err := admin.Pull(ctx, &pubsubpb.PullRequest{
			Subscription: s.name, MaxMessages: int32(min(room, 1000)),
			// Deprecated in the API, but pstest otherwise waits 500 ms on an empty pull.
			//lint:ignore SA1019 pstest honours it and the bridge polls on its own
			ReturnImmediately: true,
		})
		if err != nil || len(resp.ReceivedMessages) == 0 {
			if err != nil && ctx.Err() == nil {
				b.pullErrors.Add(1)
			}
			select {
			case <-s.wake:
			case <-time.After(pollInterval):
			case <-ctx.Done():
			}
			continue
		}
		msgs := resp.ReceivedMessages
		s.outstanding.Add(int64(len(msgs)))
		if b.cfg.Faults.Shuffle {
			b.rngMu.Lock()
			b.rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
			b.rngMu.Unlock()
		}
		for _, m := range msgs {
			b.dispatch(ctx, &delivery{sub: s, msg: m, attempt: b.countAttempt(m.GetMessage().GetMessageId())})
		}
	}
}

// dispatch hands a delivery to the workers, after the ordering key's
// previous delivery when ordering is on, and after a random delay when
// delays are injected.
func (b *Bridge) dispatch(ctx context.Context, d *delivery) {
	if key := d.msg.GetMessage().GetOrderingKey(); b.cfg.Ordering && key != "" && !d.dup {
		b.keysMu.Lock()
		waiting, busy := b.keys[key]
		if busy {
			b.keys[key] = append(waiting, d)
			b.keysMu.Unlock()
			return
		}
		b.keys[key] = nil
		b.keysMu.Unlock()
	}
	b.send(ctx, d)
}

func (b *Bridge) send(ctx context.Context, d *delivery) {
	if b.cfg.Faults.MaxDelay > 0 {
		delay := time.Duration(b.random(int64(b.cfg.Faults.MaxDelay)))
		time.AfterFunc(delay, func() { b.enqueue(ctx, d) })
		return
	}
	b.enqueue(ctx, d)
}

func (b *Bridge) enqueue(ctx context.Context, d *delivery) {
	select {
	case b.work <- d:
	case <-ctx.Done():
	}
}

// release ends a key's delivery and starts the next one waiting for it.
func (b *Bridge) release(ctx context.Context, d *delivery) {
	key := d.msg.GetMessage().GetOrderingKey()
	if !b.cfg.Ordering || key == "" || d.dup {
		return
	}
	b.keysMu.Lock()
	waiting := b.keys[key]
	if len(waiting) == 0 {
		delete(b.keys, key)
		b.keysMu.Unlock()
		return
	}
	next := waiting[0]
	b.keys[key] = waiting[1:]
	b.keysMu.Unlock()
	b.send(ctx, next)
}

func (b *Bridge) countAttempt(id string) int {
	b.attemptsMu.Lock()
	defer b.attemptsMu.Unlock()
	b.attempts[id]++
	return b.attempts[id]
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

func (b *Bridge) random(n int64) int64 {
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	return b.rng.Int64N(n)
}

func (b *Bridge) chance(p float64) bool {
	b.rngMu.Lock()
	defer b.rngMu.Unlock()
	return b.rng.Float64() < p
}

func (b *Bridge) worker(ctx context.Context) {
	for {
		var d *delivery
		select {
		case d = <-b.work:
		case <-ctx.Done():
			return
		}
		// The gate is held from the POST until its outcome is counted, so
		// once Pause returns the counters agree with what the endpoint
		// answered. What may block on other workers (release, retries)
		// runs after it.
		b.gate.RLock()
		code, err := b.post(ctx, d)
		if ctx.Err() != nil && err != nil {
			b.gate.RUnlock()
			return // shutting down: Pub/Sub keeps the message
		}
		ok := err == nil && code >= 200 && code < 300
		b.delivered.Add(1)
		if obs := b.cfg.Observe; obs != nil {
			obs(Delivery{Subscription: d.sub.id, MessageID: d.msg.GetMessage().GetMessageId(),
				Attempt: d.attempt, Duplicate: d.dup, Status: code, Err: err})
		}
		deadLetter := !d.dup && !ok && d.attempt >= b.cfg.MaxDeliveryAttempts
		switch {
		case d.dup:
			b.duplicates.Add(1)
			b.dupPending.Add(-1)
		case ok:
			b.acked.Add(1)
			b.ack(d)
		case deadLetter:
			b.deadLetter(ctx, d)
		default:
			b.retried.Add(1)
		}
		b.gate.RUnlock()
		switch {
		case d.dup:
		case ok:
			b.release(ctx, d)
			if b.cfg.Faults.Duplicate > 0 && b.chance(b.cfg.Faults.Duplicate) {
				b.dupPending.Add(1)
				dup := &delivery{sub: d.sub, msg: d.msg, dup: true}
				time.AfterFunc(time.Duration(b.random(int64(b.cfg.Faults.DuplicateDelay))), func() {
					select {
					case b.work <- dup:
					case <-ctx.Done():
					}
				})
			}
		case deadLetter:
			b.release(ctx, d)
		default:
			time.AfterFunc(b.backoff(d.attempt), func() {
				b.nack(ctx, d)
				b.release(ctx, d)
			})
		}
	}
}

// backoff is the wait before redelivering a message whose attempt failed:
// exponential from MinBackoff, capped at MaxBackoff, with ±20% jitter.
func (b *Bridge) backoff(attempt int) time.Duration {
	d := b.cfg.MinBackoff
	for i := 1; i < attempt && d < b.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, b.cfg.MaxBackoff)
	return d*4/5 + time.Duration(b.random(int64(d*2/5)+1))
}

// ack queues a message's acknowledgement for the next batch.
func (b *Bridge) ack(d *delivery) {
	b.attemptsMu.Lock()
	delete(b.attempts, d.msg.GetMessage().GetMessageId())
	b.attemptsMu.Unlock()
	d.sub.ackMu.Lock()
	d.sub.acks = append(d.sub.acks, d.msg.GetAckId())
	d.sub.ackMu.Unlock()
}

// nack hands a message back to Pub/Sub for redelivery.
func (b *Bridge) nack(ctx context.Context, d *delivery) {
	err := b.ps.client.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
		Subscription: d.sub.name, AckIds: []string{d.msg.GetAckId()}, AckDeadlineSeconds: 0,
	})
	if err != nil && ctx.Err() == nil {
		b.pullErrors.Add(1)
	}
	b.doneWith(d.sub, 1)
}

func (b *Bridge) doneWith(s *subscription, n int) {
	s.outstanding.Add(-int64(n))
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ackLoop acknowledges in batches.
func (b *Bridge) ackLoop(ctx context.Context) {
	admin := b.ps.client.SubscriptionAdminClient
	t := time.NewTicker(ackFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range b.subs {
			s.ackMu.Lock()
			ids := s.acks
			s.acks = nil
			s.ackMu.Unlock()
			if len(ids) == 0 {
				continue
			}
			err := admin.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: s.name, AckIds: ids})
			if err != nil && ctx.Err() == nil {
				b.pullErrors.Add(1)
			}
			b.doneWith(s, len(ids))
		}
	}
}

// deadLetter moves a message that failed its last allowed attempt to the
// dead-letter topic, with the attributes Pub/Sub adds there, and acknowledges
// it. pstest's own dead-letter policy is not used: it republishes the message
// on every delivery tick because its acknowledgement there never matches.
func (b *Bridge) deadLetter(ctx context.Context, d *delivery) {
	m := d.msg.GetMessage()
	attrs := map[string]string{
		"CloudPubSubDeadLetterSourceDeliveryCount":       fmt.Sprint(d.attempt),
		"CloudPubSubDeadLetterSourceSubscription":        d.sub.id,
		"CloudPubSubDeadLetterSourceSubscriptionProject": b.ps.Project(),
		"CloudPubSubDeadLetterSourceTopicPublishTime":    m.GetPublishTime().AsTime().UTC().Format(time.RFC3339Nano),
	}
	for k, v := range m.GetAttributes() {
		attrs[k] = v
	}
	_, err := b.ps.publisher(deadLetterTopic).Publish(ctx, &pubsub.Message{
		Data: m.GetData(), Attributes: attrs, OrderingKey: m.GetOrderingKey(),
	}).Get(ctx)
	if err != nil {
		b.nack(ctx, d) // keep it; redelivered and dead-lettered again later
		return
	}
	b.deadLettered.Add(1)
	b.ack(d)
}

// PushMessage is a message as a push subscription delivers it.
type PushMessage struct {
	// Data is the message body.
	Data []byte
	// Attributes are the message attributes.
	Attributes map[string]string
	// ID is the message ID.
	ID string
	// PublishTime is when Pub/Sub accepted the message.
	PublishTime time.Time
	// OrderingKey is the message's ordering key, if any.
	OrderingKey string
}

// AppendEnvelope appends the wrapped push body Pub/Sub POSTs for m:
// {"message":{"data","attributes","messageId","message_id","publishTime",
// "publish_time","orderingKey"},"subscription","deliveryAttempt"}, the ID and
// publish time written in both spellings as Pub/Sub does. attempt 0 leaves
// deliveryAttempt out (Pub/Sub sends it only with a dead-letter policy).
// Written by hand: it runs once per delivery.
func AppendEnvelope(dst []byte, subscription string, m PushMessage, attempt int) []byte {
	dst = append(dst, `{"message":{"data":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, m.Data)
	dst = append(dst, `","attributes":{`...)
	for i, k := range slices.Sorted(maps.Keys(m.Attributes)) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = cdc.AppendString(dst, k)
		dst = append(dst, ':')
		dst = cdc.AppendString(dst, m.Attributes[k])
	}
	dst = append(dst, `},"messageId":`...)
	dst = cdc.AppendString(dst, m.ID)
	dst = append(dst, `,"message_id":`...)
	dst = cdc.AppendString(dst, m.ID)
	pt := m.PublishTime.UTC().Format(time.RFC3339Nano)
	dst = append(dst, `,"publishTime":"`...)
	dst = append(dst, pt...)
	dst = append(dst, `","publish_time":"`...)
	dst = append(dst, pt...)
	dst = append(dst, '"')
	if m.OrderingKey != "" {
		dst = append(dst, `,"orderingKey":`...)
		dst = cdc.AppendString(dst, m.OrderingKey)
	}
	dst = append(dst, `},"subscription":`...)
	dst = cdc.AppendString(dst, subscription)
	if attempt > 0 {
		dst = append(dst, `,"deliveryAttempt":`...)
		dst = strconv.AppendInt(dst, int64(attempt), 10)
	}
	return append(dst, '}')
}

func (b *Bridge) post(ctx context.Context, d *delivery) (int, error) {
	m := d.msg.GetMessage()
	body := AppendEnvelope(nil, d.sub.name, PushMessage{
		Data: m.GetData(), Attributes: m.GetAttributes(), ID: m.GetMessageId(),
		PublishTime: m.GetPublishTime().AsTime(), OrderingKey: m.GetOrderingKey(),
	}, d.attempt)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)")
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // drain so the connection is reused
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Pause waits until no POST is in flight and holds back new ones until
// Resume; the chaos test uses it to read the function's metrics at a moment
// they are complete.
func (b *Bridge) Pause() { b.gate.Lock() }

// Resume lets POSTs go again after Pause.
func (b *Bridge) Resume() { b.gate.Unlock() }

// Stats returns the counters.
func (b *Bridge) Stats() Stats {
	s := Stats{
		Acked:        b.acked.Load(),
		DeadLettered: b.deadLettered.Load(),
		Delivered:    b.delivered.Load(),
		Retried:      b.retried.Load(),
		Duplicates:   b.duplicates.Load(),
		Published:    b.ps.Published(),
	}
	s.Pending = s.Published - s.Acked - s.DeadLettered
	return s
}

// Idle reports whether every published message is acknowledged or
// dead-lettered and no injected duplicate is still to come.
func (b *Bridge) Idle() bool { return b.Stats().Pending == 0 && b.dupPending.Load() == 0 }

// Errors counts failed Pull, Acknowledge and ModifyAckDeadline calls.
func (b *Bridge) Errors() int64 { return b.pullErrors.Load() }

// ServeHTTP serves Stats as JSON (localrun mounts it at /bridge).
func (b *Bridge) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(b.Stats())
}
