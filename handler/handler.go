// Package handler is the Pub/Sub push endpoint of cloudsql-cache: it takes a
// push request (wrapped JSON envelope or unwrapped raw body), decodes the
// Debezium event in it, applies the change to the cache store, and answers
// with the status code that tells Pub/Sub whether to acknowledge:
//
//   - 204 for applied, deleted, stale, ignored, and rejected-and-parked
//     messages. Permanent errors (undecodable data, no key, unknown shape,
//     broken envelope) are parked through a Parker, never dropped, and
//     acknowledged so Pub/Sub does not redeliver them forever.
//   - 503 when the store fails (Redis down, timeouts) or parking fails, so
//     Pub/Sub retries with backoff.
//   - 413 when the message is over 10 MiB (Pub/Sub's limit).
//   - 405 for anything but POST.
//
// It counts every outcome and the change's lags by table (Metrics), logs one
// structured line per reject or error, and none per applied change.
package handler

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// Decoder turns one message's data (and its Debezium key, the ordering key,
// possibly nil) into a change. Every error is permanent: the message is
// parked. The change must not alias value or key: the handler reuses the
// request buffer once the push is answered.
type Decoder interface {
	Decode(value, key []byte) (cdc.Change, error)
}

// Store applies a change to the cache. An error is transient (the delivery
// is answered 503 and Pub/Sub retries it) unless Config.Permanent says
// otherwise.
type Store interface {
	Apply(ctx context.Context, ch cdc.Change) (cdc.Outcome, error)
}

// MaxMessageBytes is Pub/Sub's message size limit, which the handler enforces
// on the message data: 10 MiB.
const MaxMessageBytes = 10 << 20

// maxEnvelopeBytes bounds the request body of a wrapped push: the base64 of
// a full-size message (4/3 of it) plus 1 MiB for attributes and metadata.
// The data limit itself is checked after base64 decoding.
const maxEnvelopeBytes = (MaxMessageBytes+2)/3*4 + 1<<20

// Unwrapped push metadata headers (subscription with no_wrapper and
// write_metadata); the message attributes arrive as headers of their own.
const (
	headerMessageID    = "X-Goog-Pubsub-Message-Id"
	headerPublishTime  = "X-Goog-Pubsub-Publish-Time"
	headerSubscription = "X-Goog-Pubsub-Subscription-Name"
	headerOrderingKey  = "X-Goog-Pubsub-Ordering-Key"
)

// Config holds a Handler's dependencies. Decoder, Store and Parker are
// required; the rest have defaults.
type Config struct {
	Decoder Decoder
	Store   Store
	Parker  Parker
	// Permanent reports whether a store error can never succeed on retry
	// (an invalid change): such messages are parked, not retried. Default:
	// every store error is transient.
	Permanent func(error) bool
	// Metrics receives the counts and lags; New makes one when nil.
	Metrics *Metrics
	// Logger gets one line per reject or error; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for lags; default time.Now.
	Now func() time.Time
}

// Handler is the push endpoint; it implements http.Handler and is safe for
// concurrent use.
type Handler struct {
	dec     Decoder
	store   Store
	parker  Parker
	perm    func(error) bool
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
	bufs    sync.Pool // *pushBuffers
}

// New returns a handler with the given dependencies. It panics when Decoder,
// Store or Parker is missing: that is a wiring bug, not a runtime condition.
func New(cfg Config) *Handler {
	if cfg.Decoder == nil || cfg.Store == nil || cfg.Parker == nil {
		panic("handler: Config needs Decoder, Store and Parker")
	}
	h := &Handler{
		dec:     cfg.Decoder,
		store:   cfg.Store,
		parker:  cfg.Parker,
		perm:    cfg.Permanent,
		metrics: cfg.Metrics,
		log:     cfg.Logger,
		now:     cfg.Now,
	}
	if h.metrics == nil {
		h.metrics = NewMetrics()
	}
	if h.perm == nil {
		h.perm = func(error) bool { return false }
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.bufs.New = func() any { return new(pushBuffers) }
	return h
}

// Metrics returns the handler's metrics.
func (h *Handler) Metrics() *Metrics { return h.metrics }

// ServeHTTP handles one push delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "push endpoint: POST only", http.StatusMethodNotAllowed)
		return
	}
	pb := h.bufs.Get().(*pushBuffers)
	defer h.putBuffers(pb)
	buf := &pb.body
	buf.Reset()
	unwrapped := r.Header.Get(headerMessageID) != "" || r.Header.Get(headerSubscription) != ""
	limit := int64(maxEnvelopeBytes)
	if unwrapped {
		limit = MaxMessageBytes
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.tooLarge(w, r, limit, []byte(r.Header.Get(headerMessageID)))
			return
		}
		// The connection broke mid-body: answer "retry" (if anyone listens).
		h.log.WarnContext(r.Context(), "cdc push: reading body failed", "err", err.Error())
		http.Error(w, "reading body failed", http.StatusServiceUnavailable)
		return
	}
	body := buf.Bytes()

	var msg message
	if unwrapped {
		msg = unwrappedMessage(body, r.Header)
	} else {
		ok, err := parseEnvelope(body, pb, &msg)
		switch {
		case err != nil:
			// JSON that claims to be an envelope but is broken (bad base64,
			// wrong types): park the whole body.
			h.park(w, r, &message{data: body}, "push envelope: "+err.Error(), "")
			return
		case !ok:
			// Not an envelope: an unwrapped push without metadata headers,
			// whose body is the message data (the decoder judges it).
			msg = message{data: body}
		}
		if len(msg.data) > MaxMessageBytes {
			h.tooLarge(w, r, MaxMessageBytes, msg.id)
			return
		}
	}

	var key []byte
	if len(msg.orderingKey) > 0 {
		key = msg.orderingKey
	}
	ch, err := h.dec.Decode(msg.data, key)
	if err != nil {
		h.park(w, r, &msg, "decode: "+err.Error(), ch.Table)
		return
	}
	start := h.now()
	outcome, err := h.store.Apply(r.Context(), ch)
	end := h.now()
	tm := h.metrics.Table(ch.Table)
	if err != nil && h.perm(err) {
		h.park(w, r, &msg, "store: "+err.Error(), ch.Table)
		return
	}
	if err != nil {
		tm.Outcomes[cdc.OutcomeFailed].Inc()
		h.log.ErrorContext(r.Context(), "cdc apply failed", "err", err.Error(), "table", ch.Table,
			"key", ch.Key, "message_id", string(msg.id))
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	if outcome == cdc.OutcomeRejected {
		h.park(w, r, &msg, "store rejected the change", ch.Table)
		return
	}
	tm.Outcomes[outcome].Inc()
	tm.Apply.Observe(end.Sub(start))
	nowMs := end.UnixMilli()
	if ch.CommitMs > 0 {
		tm.CommitLag.Observe(time.Duration(nowMs-ch.CommitMs) * time.Millisecond)
	}
	if ch.EventMs > 0 {
		tm.PipelineLag.Observe(time.Duration(nowMs-ch.EventMs) * time.Millisecond)
	}
	if len(msg.publishTime) > 0 {
		// UnmarshalText parses RFC 3339 from bytes, without a string copy.
		var pt time.Time
		if pt.UnmarshalText(msg.publishTime) == nil {
			tm.Queue.Observe(end.Sub(pt))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// park hands a permanently bad message to the Parker and answers 204, or 503
// when parking fails (so Pub/Sub keeps the message).
func (h *Handler) park(w http.ResponseWriter, r *http.Request, msg *message, reason, table string) {
	rej := Rejected{
		Reason:       reason,
		Payload:      msg.data,
		Attributes:   msg.attrs(),
		MessageID:    string(msg.id),
		PublishTime:  string(msg.publishTime),
		OrderingKey:  string(msg.orderingKey),
		Subscription: string(msg.subscription),
		RejectedAt:   h.now(),
	}
	tm := h.metrics.Table(table)
	if err := h.parker.Park(r.Context(), rej); err != nil {
		tm.Outcomes[cdc.OutcomeFailed].Inc()
		h.log.ErrorContext(r.Context(), "cdc park failed", "err", err.Error(), "reason", reason,
			"table", table, "message_id", rej.MessageID, "payload_bytes", len(msg.data))
		http.Error(w, "parking the rejected message failed", http.StatusServiceUnavailable)
		return
	}
	tm.Outcomes[cdc.OutcomeRejected].Inc()
	h.log.WarnContext(r.Context(), "cdc message rejected", "reason", reason, "table", table,
		"message_id", rej.MessageID, "ordering_key", rej.OrderingKey, "payload_bytes", len(msg.data))
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) tooLarge(w http.ResponseWriter, r *http.Request, limit int64, messageID []byte) {
	h.log.ErrorContext(r.Context(), "cdc push: message too large", "limit_bytes", limit, "message_id", string(messageID))
	http.Error(w, "message over the 10 MiB limit", http.StatusRequestEntityTooLarge)
}

// putBuffers returns a push's buffers to the pool unless one grew large: a
// rare 10 MB message should not stay pinned in memory.
func (h *Handler) putBuffers(pb *pushBuffers) {
	if pb.body.Cap() <= 1<<20 && cap(pb.data) <= 1<<20 && cap(pb.key) <= 1<<20 {
		h.bufs.Put(pb)
	}
}

// unwrappedMessage reads the metadata of an unwrapped push from its headers.
func unwrappedMessage(body []byte, hdr http.Header) message {
	return message{
		data:         body,
		header:       hdr,
		id:           []byte(hdr.Get(headerMessageID)),
		publishTime:  []byte(hdr.Get(headerPublishTime)),
		orderingKey:  []byte(hdr.Get(headerOrderingKey)),
		subscription: []byte(hdr.Get(headerSubscription)),
	}
}

// headerAttributes returns an unwrapped push's message attributes: every
// header but the transport's own (Pub/Sub writes attributes as headers named
// like them), nil when there are none.
func headerAttributes(hdr http.Header) map[string]string {
	var attrs map[string]string
	for name, vals := range hdr {
		if len(vals) == 0 || transportHeaders[name] || strings.HasPrefix(name, "X-Goog-Pubsub-") ||
			strings.HasPrefix(name, "X-Forwarded-") || strings.HasPrefix(name, "X-Cloud-") {
			continue
		}
		if attrs == nil {
			attrs = make(map[string]string)
		}
		attrs[strings.ToLower(name)] = vals[0]
	}
	return attrs
}

// transportHeaders are request headers that belong to HTTP or to Google's
// front end, not to the message; Authorization must never be parked.
var transportHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Authorization": true, "Connection": true,
	"Content-Length": true, "Content-Type": true, "From": true, "Forwarded": true, "Host": true,
	"Traceparent": true, "Tracestate": true, "User-Agent": true, "Via": true,
	"Ce-Id": true, "Ce-Source": true, "Ce-Specversion": true, "Ce-Type": true, "Ce-Time": true,
}
