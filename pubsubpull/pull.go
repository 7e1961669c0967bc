// Package pubsubpull is the Pub/Sub streaming-pull transport of
// cloudsql-cache: it holds one StreamingPull stream per subscription,
// gathers the messages as they arrive into batches for the batch core
// (package pipeline), and acknowledges each message only after the core's
// verdict is Ack or Parked; a Retry verdict is a nack (the message comes back
// after the subscription's retry backoff).
//
// It speaks the raw StreamingPull API rather than the client library's
// Subscriber.Receive: the service already sends messages in batches, and
// Receive would split them into one callback goroutine and one flow-control
// acquisition each, only for us to batch them again. Batching is "take what
// is there": a processor that becomes free takes every pending message (up
// to MaxBatch) at once, so a lone message on an idle stream goes at once and
// a busy stream fills batches while the previous one is applied; there is
// no fixed wait.
//
// Flow control is PULL_MAX_OUTSTANDING: the stream asks the service for at
// most that many unacknowledged messages, and the receiver stops reading the
// stream while it holds that many. Acks and nacks go by the unary
// Acknowledge and ModifyAckDeadline calls, batched, so their errors are seen
// and counted.
package pubsubpull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	vkit "cloud.google.com/go/pubsub/v2/apiv1"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cloudsql-cache/cloudsql-cache/metrics"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// Defaults of Config.
const (
	DefaultMaxOutstanding = 5000
	DefaultMaxBatch       = 1000
	// DefaultAckDeadline is the stream's ack deadline: a received message
	// must be acknowledged within it or the service redelivers it.
	DefaultAckDeadline = 60 * time.Second
	// DefaultBatchTimeout bounds one batch's Process call, well inside the
	// ack deadline.
	DefaultBatchTimeout = 20 * time.Second
	// maxAckIDs is how many ack ids go in one Acknowledge or
	// ModifyAckDeadline request (the service's request limit is 512 KB).
	maxAckIDs = 2000
	// maxOutstandingBytes is asked of the service beside the message
	// count, so 10 MB messages cannot pile up a gigabyte.
	maxOutstandingBytes = 256 << 20
)

// Processor is the batch core (*pipeline.Core).
type Processor interface {
	Process(ctx context.Context, msgs []pipeline.Message) []pipeline.Verdict
}

// Config holds a Receiver's dependencies. Client, Subscriptions and
// Processor are required.
type Config struct {
	// Client is the Pub/Sub subscriber API (pubsub.Client's
	// SubscriptionAdminClient); it honours PUBSUB_EMULATOR_HOST.
	Client *vkit.SubscriptionAdminClient
	// Subscriptions are full names, projects/P/subscriptions/S.
	Subscriptions []string
	Processor     Processor
	// MaxOutstanding bounds the messages received and not yet acknowledged
	// or nacked, per subscription; default 5000.
	MaxOutstanding int
	// MaxBatch bounds one Process call; default 1000.
	MaxBatch int
	// Workers is how many batches may be in Process at once, across
	// subscriptions; default 2 (one decoding while another waits for the
	// cache).
	Workers int
	// AckDeadline is the stream's ack deadline; default 60 s.
	AckDeadline time.Duration
	// BatchTimeout bounds one Process call; default 20 s.
	BatchTimeout time.Duration
	// Logger gets stream errors and failed acks; default slog.Default().
	Logger *slog.Logger
}

// Stats are a Receiver's counters since New.
type Stats struct {
	// Received counts messages read from the streams, Acked those
	// acknowledged (Ack and Parked verdicts), Nacked those handed back
	// (Retry verdicts, and what was pending at shutdown).
	Received, Acked, Nacked int64
	// AckErrors counts ack ids whose Acknowledge or ModifyAckDeadline call
	// failed (the service redelivers them after the deadline).
	AckErrors int64
	// Batches counts Process calls.
	Batches int64
	// Reconnects counts streams reopened after an error.
	Reconnects int64
}

// Receiver pulls the subscriptions and feeds the core. Run it once.
type Receiver struct {
	cfg Config
	log *slog.Logger

	// mu guards pending, held and closed; ready is signalled when pending
	// grows or the receiver closes, room when held shrinks.
	mu      sync.Mutex
	ready   *sync.Cond
	room    *sync.Cond
	pending []item
	held    map[string]int // per subscription: received, not yet acked or nacked
	closed  bool

	up []atomic.Bool // per subscription: its stream is open

	received, acked, nacked, ackErrors, batches, reconnects atomic.Int64
}

// item is one received message with what is needed to ack it.
type item struct {
	msg   pipeline.Message
	ackID string
	sub   string
}

// New returns a receiver; it panics when a required field is missing.
func New(cfg Config) *Receiver {
	if cfg.Client == nil || len(cfg.Subscriptions) == 0 || cfg.Processor == nil {
		panic("pubsubpull: Config needs Client, Subscriptions and Processor")
	}
	if cfg.MaxOutstanding <= 0 {
		cfg.MaxOutstanding = DefaultMaxOutstanding
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.AckDeadline <= 0 {
		cfg.AckDeadline = DefaultAckDeadline
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = DefaultBatchTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Receiver{cfg: cfg, log: cfg.Logger, held: map[string]int{}, up: make([]atomic.Bool, len(cfg.Subscriptions))}
	r.ready = sync.NewCond(&r.mu)
	r.room = sync.NewCond(&r.mu)
	return r
}

// Connected reports whether every subscription's stream is open.
func (r *Receiver) Connected() bool {
	for i := range r.up {
		if !r.up[i].Load() {
			return false
		}
	}
	return true
}

// Stats returns the counters.
func (r *Receiver) Stats() Stats {
	return Stats{Received: r.received.Load(), Acked: r.acked.Load(), Nacked: r.nacked.Load(),
		AckErrors: r.ackErrors.Load(), Batches: r.batches.Load(), Reconnects: r.reconnects.Load()}
}

// Run pulls until ctx ends, then drains: it stops reading the streams,
// lets the batches in Process finish and be acknowledged, processes what
// was already received, and returns. It returns nil after a drain, or an
// error when a subscription can never be pulled (it does not exist, or
// permission is denied).
func (r *Receiver) Run(ctx context.Context) error {
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	var (
		streams sync.WaitGroup
		workers sync.WaitGroup
		fatal   = make(chan error, len(r.cfg.Subscriptions))
	)
	for i, sub := range r.cfg.Subscriptions {
		streams.Go(func() {
			if err := r.stream(streamCtx, i, sub); err != nil {
				fatal <- err
				stopStreams()
			}
		})
	}
	for range r.cfg.Workers {
		workers.Go(r.work)
	}
	select {
	case <-streamCtx.Done():
	case <-ctx.Done():
	}
	stopStreams()
	// Wake streams waiting for flow-control room: they see ctx and return.
	r.mu.Lock()
	r.room.Broadcast()
	r.mu.Unlock()
	streams.Wait()
	r.mu.Lock()
	r.closed = true
	r.ready.Broadcast()
	r.room.Broadcast()
	r.mu.Unlock()
	workers.Wait()
	select {
	case err := <-fatal:
		return err
	default:
		return nil
	}
}

// stream keeps one subscription's StreamingPull open until ctx ends,
// reopening it with backoff after errors. It returns an error only for a
// subscription that cannot be pulled at all.
func (r *Receiver) stream(ctx context.Context, idx int, sub string) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		opened, err := r.pull(ctx, idx, sub)
		r.up[idx].Store(false)
		if ctx.Err() != nil {
			return nil
		}
		switch status.Code(err) {
		case codes.NotFound, codes.PermissionDenied, codes.InvalidArgument, codes.Unauthenticated:
			return fmt.Errorf("pubsubpull: %s: %w", sub, err)
		}
		r.reconnects.Add(1)
		if opened {
			backoff = 100 * time.Millisecond
		}
		r.log.WarnContext(ctx, "pubsub stream broke; reopening", "subscription", sub, "err", errString(err), "backoff", backoff.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff + rand.N(backoff/2)):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	return nil
}

// pull runs one stream until it fails or ctx ends; opened reports whether
// it delivered anything (so the backoff starts again).
func (r *Receiver) pull(ctx context.Context, idx int, sub string) (opened bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := r.cfg.Client.StreamingPull(sctx)
	if err != nil {
		return false, err
	}
	err = st.Send(&pubsubpb.StreamingPullRequest{
		Subscription:             sub,
		StreamAckDeadlineSeconds: int32(r.cfg.AckDeadline / time.Second),
		MaxOutstandingMessages:   int64(r.cfg.MaxOutstanding),
		MaxOutstandingBytes:      maxOutstandingBytes,
	})
	if err != nil {
		return false, err
	}
	r.up[idx].Store(true)
	for {
		if !r.waitRoom(ctx, sub) {
			return opened, nil
		}
		resp, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "stream closed by the server")
			}
			return opened, err
		}
		if len(resp.ReceivedMessages) == 0 {
			continue
		}
		opened = true
		r.add(sub, resp.ReceivedMessages)
	}
}

// waitRoom blocks while sub holds MaxOutstanding messages; false when the
// receiver is stopping.
func (r *Receiver) waitRoom(ctx context.Context, sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.held[sub] >= r.cfg.MaxOutstanding && !r.closed && ctx.Err() == nil {
		r.room.Wait()
	}
	return !r.closed && ctx.Err() == nil
}

// add queues received messages for the workers.
func (r *Receiver) add(sub string, rms []*pubsubpb.ReceivedMessage) {
	r.received.Add(int64(len(rms)))
	r.mu.Lock()
	for _, rm := range rms {
		m := rm.GetMessage()
		msg := pipeline.Message{Data: m.GetData(), Attributes: m.GetAttributes(), ID: m.GetMessageId(),
			Source: sub, Attempt: int(rm.GetDeliveryAttempt())}
		if k := m.GetOrderingKey(); k != "" {
			msg.Key = []byte(k)
		}
		if pt := m.GetPublishTime(); pt != nil {
			msg.PublishTime = pt.AsTime()
		}
		r.pending = append(r.pending, item{msg: msg, ackID: rm.GetAckId(), sub: sub})
	}
	r.held[sub] += len(rms)
	r.mu.Unlock()
	r.ready.Signal()
}

// work takes every pending message (up to MaxBatch) whenever it is free,
// processes them as one batch, and acks or nacks each by its verdict. After
// a batch with retries it waits (exponential backoff) so a cache outage is
// not a hot loop of redeliveries.
func (r *Receiver) work() {
	var backoff time.Duration
	for {
		r.mu.Lock()
		for len(r.pending) == 0 && !r.closed {
			r.ready.Wait()
		}
		if len(r.pending) == 0 {
			r.mu.Unlock()
			return
		}
		n := min(len(r.pending), r.cfg.MaxBatch)
		batch := make([]item, n)
		copy(batch, r.pending)
		r.pending = r.pending[n:]
		if len(r.pending) == 0 {
			r.pending = nil // let the backing array go
		} else {
			r.ready.Signal() // another worker can take the rest
		}
		r.mu.Unlock()

		retried := r.process(batch)
		if retried == 0 {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
		time.Sleep(backoff) // pacing redeliveries during an outage, not synchronisation
	}
}

// process runs one batch through the core and settles every message;
// it returns how many were nacked.
func (r *Receiver) process(batch []item) int {
	msgs := make([]pipeline.Message, len(batch))
	for i := range batch {
		msgs[i] = batch[i].msg
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.BatchTimeout)
	verdicts := r.cfg.Processor.Process(ctx, msgs)
	cancel()
	r.batches.Add(1)
	acks := map[string][]string{}
	nacks := map[string][]string{}
	for i, v := range verdicts {
		it := &batch[i]
		if v == pipeline.Retry {
			nacks[it.sub] = append(nacks[it.sub], it.ackID)
		} else {
			acks[it.sub] = append(acks[it.sub], it.ackID)
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nacked := 0
	for sub, ids := range acks {
		r.settle(ctx, sub, ids, true)
	}
	for sub, ids := range nacks {
		r.settle(ctx, sub, ids, false)
		nacked += len(ids)
	}
	return nacked
}

// settle acknowledges (ack) or nacks ids of sub, in requests of maxAckIDs,
// and gives their flow-control room back.
func (r *Receiver) settle(ctx context.Context, sub string, ids []string, ack bool) {
	for chunk := range chunks(ids, maxAckIDs) {
		var err error
		if ack {
			err = r.cfg.Client.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: chunk})
		} else {
			err = r.cfg.Client.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: chunk})
		}
		if err != nil {
			r.ackErrors.Add(int64(len(chunk)))
			r.log.ErrorContext(ctx, "pubsub ack failed; the messages will be redelivered", "subscription", sub,
				"ack", ack, "messages", len(chunk), "err", err.Error())
		} else if ack {
			r.acked.Add(int64(len(chunk)))
		} else {
			r.nacked.Add(int64(len(chunk)))
		}
	}
	r.mu.Lock()
	r.held[sub] -= len(ids)
	r.mu.Unlock()
	r.room.Broadcast()
}

// chunks yields s in pieces of at most n.
func chunks(s []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// WritePrometheus writes the receiver's counters in the Prometheus text
// format (cdc_pull_*_total).
func (r *Receiver) WritePrometheus(w io.Writer) error {
	st := r.Stats()
	p := metrics.NewPromWriter(w)
	for _, c := range []struct {
		name, help string
		v          int64
	}{
		{"cdc_pull_received_total", "Messages read from the streaming-pull streams.", st.Received},
		{"cdc_pull_acked_total", "Messages acknowledged (applied, stale, ignored or parked).", st.Acked},
		{"cdc_pull_nacked_total", "Messages handed back for redelivery (transient failures, shutdown).", st.Nacked},
		{"cdc_pull_ack_errors_total", "Ack ids whose acknowledge or nack call failed (redelivered after the deadline).", st.AckErrors},
		{"cdc_pull_batches_total", "Batches processed; cdc_pull_received_total divided by it is the batch size.", st.Batches},
		{"cdc_pull_reconnects_total", "Streams reopened after an error.", st.Reconnects},
	} {
		p.Family(c.name, "counter", c.help)
		p.Counter(c.name, uint64(c.v))
	}
	connected := 0.0
	if r.Connected() {
		connected = 1
	}
	p.Family("cdc_pull_connected", "gauge", "1 while every subscription's stream is open.")
	p.Gauge("cdc_pull_connected", connected)
	return p.Flush()
}
