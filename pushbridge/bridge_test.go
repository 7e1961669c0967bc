package pushbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/cloudsql-cache/cloudsql-cache/internal/pushtest"
)

// received is one push request as the endpoint saw it.
type received = pushtest.Envelope

// endpoint records every push and answers with status(r).
type endpoint struct {
	mu     sync.Mutex
	got    []received
	status func(r received, nth int) int // nth: deliveries of this message so far, from 1
	seen   map[string]int
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rec received
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		json.NewDecoder(r.Body).Decode(&rec) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	e.got = append(e.got, rec)
	if e.seen == nil {
		e.seen = map[string]int{}
	}
	e.seen[rec.Message.MessageID]++
	n := e.seen[rec.Message.MessageID]
	e.mu.Unlock()
	code := http.StatusNoContent
	if e.status != nil {
		code = e.status(rec, n)
	}
	w.WriteHeader(code)
}

func (e *endpoint) deliveries() []received {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]received(nil), e.got...)
}

type fixture struct {
	ps     *PubSub
	bridge *Bridge
	ep     *endpoint
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, cfg Config, ep *endpoint, topics ...string) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ps, err := NewPubSub(ctx, "local")
	require.NoError(t, err)
	srv := httptest.NewServer(ep)
	cfg.PubSub, cfg.Topics, cfg.Endpoint = ps, topics, srv.URL
	b, err := New(ctx, cfg)
	require.NoError(t, err)
	f := &fixture{ps: ps, bridge: b, ep: ep, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		assert.NoError(t, b.Run(ctx))
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
		srv.Close()
		assert.NoError(t, ps.Close())
	})
	return f
}

// waitIdle polls until the bridge is idle or the deadline passes.
func waitIdle(t *testing.T, b *Bridge) {
	t.Helper()
	require.Eventually(t, b.Idle, 20*time.Second, 5*time.Millisecond, "bridge not idle: %+v", b.Stats())
}

func TestPushEnvelopeAndAck(t *testing.T) {
	ep := &endpoint{}
	f := start(t, Config{Concurrency: 8}, ep, "db1.inv.a", "db1.inv.b")
	var msgs []Message
	for i := range 1500 {
		topic := []string{"db1.inv.a", "db1.inv.b"}[i%2]
		msgs = append(msgs, Message{Topic: topic, Data: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	msgs[0].Attributes = map[string]string{"k": "v"}
	ids, err := f.ps.Publish(context.Background(), msgs)
	require.NoError(t, err)
	waitIdle(t, f.bridge)

	got := ep.deliveries()
	require.Len(t, got, len(msgs), "each message delivered once")
	byID := map[string]received{}
	for _, r := range got {
		byID[r.Message.MessageID] = r
	}
	for i, id := range ids {
		r, ok := byID[id]
		require.True(t, ok, "message %d delivered", i)
		assert.Equal(t, msgs[i].Data, r.Message.Data)
		assert.Equal(t, id, r.Message.MessageID2)
		assert.Equal(t, "projects/local/subscriptions/"+msgs[i].Topic+"-push", r.Subscription)
		assert.Equal(t, 1, r.DeliveryAttempt)
		pt, err := time.Parse(time.RFC3339Nano, r.Message.PublishTime)
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now(), pt, time.Minute)
		assert.Equal(t, r.Message.PublishTime, r.Message.PublishTime2)
		assert.NotNil(t, r.Message.Attributes)
	}
	assert.Equal(t, map[string]string{"k": "v"}, byID[ids[0]].Message.Attributes)
	st := f.bridge.Stats()
	assert.Equal(t, Stats{Published: 1500, Delivered: 1500, Acked: 1500}, st)
	assert.Zero(t, f.bridge.Errors())

	rec := httptest.NewRecorder()
	f.bridge.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/bridge", nil))
	assert.JSONEq(t, `{"published":1500,"delivered":1500,"acked":1500,"retried":0,"dead_lettered":0,"duplicates":0,"pending":0}`, rec.Body.String())
}

func TestRetryBackoffAndDeadLetter(t *testing.T) {
	ep := &endpoint{status: func(r received, nth int) int {
		switch string(r.Message.Data) {
		case "always-fails":
			return http.StatusServiceUnavailable
		case "fails-twice":
			if nth <= 2 {
				return http.StatusInternalServerError
			}
		}
		return http.StatusOK
	}}
	f := start(t, Config{Concurrency: 4, MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}, ep, "t")
	ids, err := f.ps.Publish(context.Background(), []Message{
		{Topic: "t", Data: []byte("always-fails")}, {Topic: "t", Data: []byte("fails-twice")}, {Topic: "t", Data: []byte("fine")},
	})
	require.NoError(t, err)
	waitIdle(t, f.bridge)

	attempts := map[string][]int{}
	for _, r := range ep.deliveries() {
		attempts[r.Message.MessageID] = append(attempts[r.Message.MessageID], r.DeliveryAttempt)
	}
	assert.Equal(t, []int{1, 2, 3, 4, 5}, attempts[ids[0]], "redelivered until the dead-letter policy's limit")
	assert.Equal(t, []int{1, 2, 3}, attempts[ids[1]])
	assert.Equal(t, []int{1}, attempts[ids[2]])
	assert.Equal(t, Stats{Published: 3, Delivered: 9, Acked: 2, Retried: 6, DeadLettered: 1}, f.bridge.Stats())
}

func TestBackoffGrows(t *testing.T) {
	b := &Bridge{cfg: Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	b.rng = newRand(1)
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 9: time.Second} {
		got := b.backoff(attempt)
		assert.InDelta(t, float64(want), float64(got), float64(want)/5, "attempt %d", attempt)
	}
}

// TestOrderingSerialisesPerKey checks that with ordering on, a key's
// messages arrive one at a time and in publish order, while other keys go
// concurrently: the first delivery is held until a second one (of another
// key, as publish order puts them) arrives beside it.
func TestOrderingSerialisesPerKey(t *testing.T) {
	var mu sync.Mutex
	inFlight := map[string]bool{}
	var overlap, arrived atomic.Int64
	var alone atomic.Bool
	met := make(chan struct{})
	ep := &endpoint{}
	ep.status = func(r received, _ int) int {
		key := r.Message.OrderingKey
		mu.Lock()
		if inFlight[key] {
			overlap.Add(1)
		}
		inFlight[key] = true
		mu.Unlock()
		switch arrived.Add(1) {
		case 1:
			select {
			case <-met:
			case <-time.After(10 * time.Second): // a failure bound, not a wait for work
				alone.Store(true)
			}
		case 2:
			close(met)
		}
		mu.Lock()
		inFlight[key] = false
		mu.Unlock()
		return http.StatusNoContent
	}
	f := start(t, Config{Concurrency: 8, Ordering: true}, ep, "t")
	var msgs []Message
	for i := range 1000 {
		key := fmt.Sprintf(`{"id":%d}`, i%10)
		msgs = append(msgs, Message{Topic: "t", OrderingKey: key, Data: fmt.Appendf(nil, "%d", i)})
	}
	// Publish in several calls, as a stream arrives.
	for i := 0; i < len(msgs); i += 100 {
		_, err := f.ps.Publish(context.Background(), msgs[i:i+100])
		require.NoError(t, err)
	}
	waitIdle(t, f.bridge)
	assert.Zero(t, overlap.Load(), "two deliveries of one key overlapped")
	assert.False(t, alone.Load(), "different keys are delivered concurrently")
	last := map[string]int{}
	for _, r := range ep.deliveries() {
		var n int
		_, err := fmt.Sscan(string(r.Message.Data), &n)
		require.NoError(t, err)
		prev, seen := last[r.Message.OrderingKey]
		assert.True(t, !seen || n > prev, "key %s: %d after %d", r.Message.OrderingKey, n, prev)
		last[r.Message.OrderingKey] = n
	}
}

func TestDuplicatesAndReordering(t *testing.T) {
	ep := &endpoint{}
	f := start(t, Config{Concurrency: 8, Faults: Faults{Duplicate: 0.5, DuplicateDelay: 20 * time.Millisecond,
		MaxDelay: 2 * time.Millisecond, Shuffle: true}}, ep, "t")
	var msgs []Message
	for i := range 1000 {
		msgs = append(msgs, Message{Topic: "t", Data: fmt.Appendf(nil, "%05d", i)})
	}
	_, err := f.ps.Publish(context.Background(), msgs)
	require.NoError(t, err)
	waitIdle(t, f.bridge)
	st := f.bridge.Stats()
	got := ep.deliveries()
	assert.Equal(t, int64(len(got)), st.Delivered)
	assert.Equal(t, st.Published+st.Duplicates, st.Delivered, "delivered = published + duplicates")
	assert.InDelta(t, 500, st.Duplicates, 100, "about half the messages are duplicated")
	assert.Equal(t, int64(1000), st.Acked)
	var outOfOrder int
	for i := 1; i < len(got); i++ {
		if strings.Compare(string(got[i].Message.Data), string(got[i-1].Message.Data)) < 0 {
			outOfOrder++
		}
	}
	assert.Positive(t, outOfOrder, "deliveries are reordered")
}

func TestPauseWaitsForInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	ep := &endpoint{status: func(received, int) int {
		arrived <- struct{}{}
		<-release
		return http.StatusNoContent
	}}
	f := start(t, Config{Concurrency: 2}, ep, "t")
	_, err := f.ps.Publish(context.Background(), []Message{{Topic: "t", Data: []byte("x")}})
	require.NoError(t, err)
	<-arrived
	paused := make(chan struct{})
	go func() {
		f.bridge.Pause()
		close(paused)
	}()
	// Pause cannot return while the request is in the handler.
	select {
	case <-paused:
		t.Fatal("Pause returned with a request in flight")
	default:
	}
	close(release)
	<-paused
	assert.Equal(t, int64(1), f.bridge.Stats().Delivered, "the in-flight delivery completed before Pause returned")
	f.bridge.Resume()
	waitIdle(t, f.bridge)
}

func TestNewValidates(t *testing.T) {
	_, err := New(context.Background(), Config{})
	assert.ErrorContains(t, err, "needs PubSub")
}

func TestAppendEnvelope(t *testing.T) {
	pt := time.Date(2024, 5, 1, 13, 4, 5, 123456789, time.UTC)
	m := PushMessage{Data: []byte("{\"a\":\"é\"}\x00"), Attributes: map[string]string{"b": "2", "a": "quote\"<&>"},
		ID: "m1", PublishTime: pt, OrderingKey: `{"id":1004}`}
	body := AppendEnvelope(nil, "projects/p/subscriptions/s", m, 3)
	var r received
	require.NoError(t, json.Unmarshal(body, &r), "%s", body)
	assert.Equal(t, m.Data, r.Message.Data)
	assert.Equal(t, m.Attributes, r.Message.Attributes)
	assert.Equal(t, "m1", r.Message.MessageID)
	assert.Equal(t, "m1", r.Message.MessageID2)
	assert.Equal(t, "2024-05-01T13:04:05.123456789Z", r.Message.PublishTime)
	assert.Equal(t, r.Message.PublishTime, r.Message.PublishTime2)
	assert.Equal(t, `{"id":1004}`, r.Message.OrderingKey)
	assert.Equal(t, "projects/p/subscriptions/s", r.Subscription)
	assert.Equal(t, 3, r.DeliveryAttempt)

	body = AppendEnvelope(nil, "s", PushMessage{ID: "m2", PublishTime: pt}, 0)
	assert.JSONEq(t, `{"message":{"data":"","attributes":{},"messageId":"m2","message_id":"m2",`+
		`"publishTime":"2024-05-01T13:04:05.123456789Z","publish_time":"2024-05-01T13:04:05.123456789Z"},"subscription":"s"}`, string(body))
}

// TestPendingNeverNegative samples the backlog while the server's publish
// confirmations arrive late: the bridge pulls and acknowledges a message as
// soon as the server holds it, before its publisher hears back, so counting
// a message as published only on its confirmation made pending negative.
func TestPendingNeverNegative(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slowConfirm := grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if strings.HasSuffix(method, "/Publish") {
			time.Sleep(200 * time.Millisecond) // the message is on the server, the publisher waits
		}
		return err
	})
	ps, err := newPubSub(ctx, "local", slowConfirm)
	require.NoError(t, err)
	defer ps.Close()
	srv := httptest.NewServer(&endpoint{})
	defer srv.Close()
	b, err := New(ctx, Config{PubSub: ps, Topics: []string{"t"}, Endpoint: srv.URL, Concurrency: 4})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Run(ctx)
	}()
	defer func() { cancel(); <-done }()

	var published atomic.Bool
	lowest := make(chan int64, 1)
	go func() {
		low := int64(0)
		for !published.Load() {
			low = min(low, b.Stats().Pending)
		}
		lowest <- low
	}()
	for range 3 {
		_, err := ps.Publish(ctx, []Message{{Topic: "t", Data: []byte("x")}})
		require.NoError(t, err)
	}
	waitIdle(t, b)
	published.Store(true)
	assert.Equal(t, int64(0), <-lowest, "the lowest backlog sampled")
	assert.Equal(t, int64(3), b.Stats().Published)
}
