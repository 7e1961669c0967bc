// Package handler is the Pub/Sub push transport of cloudsql-cache: it takes
// a push request (wrapped JSON envelope or unwrapped raw body), hands the one
// message in it to the batch core (package pipeline), and answers with the
// status code that tells Pub/Sub whether to acknowledge:
//
//   - 204 for applied, deleted, stale, ignored, and rejected-and-parked
//     messages. Permanent errors (undecodable data, no key, unknown shape,
//     broken envelope) are parked by the core, never dropped, and
//     acknowledged so Pub/Sub does not redeliver them forever.
//   - 503 when the store fails (Redis down, timeouts) or parking fails, or
//     when the pushes in flight already hold the memory budget, so Pub/Sub
//     retries with backoff.
//   - 413 when the message is over 10 MiB (Pub/Sub's limit).
//   - 405 for anything but POST.
//
// Counting, lags and logging are the core's; the handler logs only what it
// alone sees (a broken connection, a message over the limit).
package handler

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/cloudsql-cache/cloudsql-cache/metrics"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

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

// Handler is the push endpoint; it implements http.Handler and is safe for
// concurrent use.
type Handler struct {
	core   *pipeline.Core
	bufs   sync.Pool // *pushBuffers
	budget budget
	shed   metrics.Counter // pushes refused for the budget
}

// Option adjusts New.
type Option func(*Handler)

// WithMemoryBudget bounds the bytes held by the pushes being served at once
// (each is taken to hold about three times its body): a push beyond it is
// answered 503 and redelivered by Pub/Sub. Default DefaultMemoryBudget. A
// push arriving when nothing else is in flight is always served, so no
// message is too large to get through.
func WithMemoryBudget(n int64) Option {
	return func(h *Handler) {
		if n > 0 {
			h.budget.max = n
		}
	}
}

// New returns a push handler over core.
func New(core *pipeline.Core, opts ...Option) *Handler {
	h := &Handler{core: core}
	h.bufs.New = func() any { return new(pushBuffers) }
	h.budget.max = DefaultMemoryBudget
	for _, o := range opts {
		o(h)
	}
	return h
}

// Shed returns how many pushes were answered 503 because the pushes in
// flight held the memory budget.
func (h *Handler) Shed() uint64 { return h.shed.Load() }

// Metrics returns the core's metrics.
func (h *Handler) Metrics() *pipeline.Metrics { return h.core.Metrics() }

// ServeHTTP handles one push delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "push endpoint: POST only", http.StatusMethodNotAllowed)
		return
	}
	unwrapped := r.Header.Get(headerMessageID) != "" || r.Header.Get(headerSubscription) != ""
	limit := int64(maxEnvelopeBytes)
	if unwrapped {
		limit = MaxMessageBytes
	}
	if r.ContentLength > limit {
		h.tooLarge(w, r, limit, []byte(r.Header.Get(headerMessageID)))
		return
	}
	pb := h.bufs.Get().(*pushBuffers)
	defer h.putBuffers(pb)
	// The budget is taken before the body is read: a push that would not
	// fit holds nothing but its headers.
	pb.held = pushCost(max(r.ContentLength, 0))
	if !h.budget.take(0, pb.held) {
		h.refuse(w)
		return
	}
	defer h.budget.give(pb)
	var src io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength < 0 {
		pb.metered = meteredBody{r: src, b: &h.budget, held: &pb.held}
		src = &pb.metered
	}
	buf := &pb.body
	buf.Reset()
	if r.ContentLength > 0 {
		// Sized once: growing by doubling would allocate twice the body.
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(src); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			h.tooLarge(w, r, limit, []byte(r.Header.Get(headerMessageID)))
		case errors.Is(err, errBudget):
			h.refuse(w)
		default:
			// The connection broke mid-body: answer "retry" (if anyone listens).
			h.core.Logger().WarnContext(r.Context(), "cdc push: reading body failed", "err", err.Error())
			http.Error(w, "reading body failed", http.StatusServiceUnavailable)
		}
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
			h.answer(w, h.core.Reject(r.Context(), pipeline.Message{Data: body}, "push envelope: "+err.Error()))
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

	m := pipeline.Message{Data: msg.data, ID: string(msg.id), Source: string(msg.subscription)}
	if len(msg.orderingKey) > 0 {
		m.Key = msg.orderingKey
	}
	if len(msg.publishTime) > 0 {
		// UnmarshalText parses RFC 3339 from bytes, without a string copy.
		_ = m.PublishTime.UnmarshalText(msg.publishTime)
	}
	// The core reads attributes only to park a message; Debezium sets none,
	// so building them here costs nothing on the usual path.
	m.Attributes = msg.attrs()
	h.answer(w, h.core.Process(r.Context(), []pipeline.Message{m})[0])
}

// answer writes the status code of a verdict.
func (h *Handler) answer(w http.ResponseWriter, v pipeline.Verdict) {
	switch v {
	case pipeline.Ack, pipeline.Parked:
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "store or parker unavailable: retry", http.StatusServiceUnavailable)
	}
}

// refuse answers a push the memory budget cannot take now: 503, so Pub/Sub
// redelivers it with backoff (and slows its push rate). Counted, not logged:
// under a burst it happens per request.
func (h *Handler) refuse(w http.ResponseWriter) {
	h.shed.Inc()
	http.Error(w, "busy: push memory budget spent, retry later", http.StatusServiceUnavailable)
}

func (h *Handler) tooLarge(w http.ResponseWriter, r *http.Request, limit int64, messageID []byte) {
	h.core.Logger().ErrorContext(r.Context(), "cdc push: message too large", "limit_bytes", limit, "message_id", string(messageID))
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
