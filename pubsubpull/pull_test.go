package pubsubpull_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/pubsubfake"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/pubsubpull"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

const (
	topicName = "projects/p/topics/cdc"
	subName   = "projects/p/subscriptions/cdc-pull"
)

// fixture is a fake Pub/Sub with one topic and pull subscription.
type fixture struct {
	srv    *pubsubfake.Server
	client *pubsub.Client
	pub    *pubsub.Publisher
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, err := pubsubfake.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	client, err := pubsub.NewClient(context.Background(), "p", option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	ctx := context.Background()
	_, err = client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName})
	require.NoError(t, err)
	_, err = client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: subName, Topic: topicName,
		AckDeadlineSeconds: 60})
	require.NoError(t, err)
	pub := client.Publisher(topicName)
	pub.EnableMessageOrdering = true // Debezium's ordering keys
	t.Cleanup(pub.Stop)
	return &fixture{srv: srv, client: client, pub: pub}
}

func (f *fixture) publish(t *testing.T, msgs ...*pubsub.Message) {
	t.Helper()
	var results []*pubsub.PublishResult
	for _, m := range msgs {
		results = append(results, f.pub.Publish(context.Background(), m))
	}
	for _, r := range results {
		_, err := r.Get(context.Background())
		require.NoError(t, err)
	}
}

// acks returns the fake's ack count of every published message.
func (f *fixture) acks() []int {
	var out []int
	for _, m := range f.srv.Messages() {
		out = append(out, m.Acks)
	}
	return out
}

// event is a Debezium change event (no schema) for inventory.customers.
func event(op string, id int, pos int64) []byte {
	row := fmt.Sprintf(`{"id":%d,"email":"e%d@example.com"}`, id, pos)
	before, after := "null", row
	if op == "d" {
		before, after = row, "null"
	}
	return fmt.Appendf(nil, `{"before":%s,"after":%s,"source":{"version":"2.7.0.Final","connector":"mysql",`+
		`"name":"dbserver1","ts_ms":1714568645000,"snapshot":"false","db":"inventory","table":"customers",`+
		`"server_id":223344,"gtid":null,"file":"mysql-bin.000003","pos":%d,"row":0,"thread":7,"query":null},`+
		`"op":%q,"ts_ms":1714568645150,"transaction":null}`, before, after, pos, op)
}

func change(id int, pos int64) *pubsub.Message {
	return &pubsub.Message{Data: event("c", id, pos), OrderingKey: fmt.Sprintf(`{"id":%d}`, id)}
}

// recorder wraps the core and records batch sizes; gate, when set, holds
// each batch until a value arrives.
type recorder struct {
	core    pubsubpull.Processor
	gate    chan struct{}
	mu      sync.Mutex
	sizes   []int
	entered chan int
}

func (r *recorder) Process(ctx context.Context, msgs []pipeline.Message) []pipeline.Verdict {
	r.mu.Lock()
	r.sizes = append(r.sizes, len(msgs))
	r.mu.Unlock()
	if r.entered != nil {
		r.entered <- len(msgs)
	}
	if r.gate != nil {
		<-r.gate
	}
	return r.core.Process(ctx, msgs)
}

func (r *recorder) batchSizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.sizes...)
}

// newCore is the real core on the given Redis.
func newCore(t *testing.T, c *redis.Client, prefix string) *pipeline.Core {
	t.Helper()
	cfg := cdc.DefaultConfig()
	cfg.Prefix = prefix
	st := redisstore.New(c, cfg, redisstore.Options{})
	t.Cleanup(func() { st.Close(context.Background()) })
	return pipeline.New(pipeline.Config{Decoder: debezium.NewDecoder(cfg), Store: st,
		Parker: redisstore.NewRedisParker(c, prefix), Logger: slog.New(slog.DiscardHandler)})
}

// start runs a receiver until the test ends (or stop is called) and
// returns stop, which waits for Run's drain.
func start(t *testing.T, r *pubsubpull.Receiver) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

func TestPullAppliesParksAndAcksEachOnce(t *testing.T) {
	f := newFixture(t)
	c, prefix := testredis.Shared(t)
	rec := &recorder{core: newCore(t, c, prefix)}
	r := pubsubpull.New(pubsubpull.Config{Client: f.client.SubscriptionAdminClient, Subscriptions: []string{subName},
		Processor: rec, Logger: slog.New(slog.DiscardHandler)})
	var msgs []*pubsub.Message
	for i := range 300 {
		msgs = append(msgs, change(i, int64(100+i)))
	}
	msgs = append(msgs, &pubsub.Message{Data: []byte("not json"), Attributes: map[string]string{"a": "1"}})
	msgs = append(msgs, change(7, 107)) // a duplicate: stale
	f.publish(t, msgs...)
	stop := start(t, r)
	eventually(t, "every message acked", func() bool { return r.Stats().Acked == int64(len(msgs)) })
	require.NoError(t, stop())

	for i, n := range f.acks() {
		assert.Equal(t, 1, n, "message %d acked exactly once", i)
	}
	st := r.Stats()
	assert.Equal(t, int64(len(msgs)), st.Received)
	assert.Zero(t, st.Nacked)
	assert.Zero(t, st.AckErrors)
	assert.Less(t, st.Batches, int64(len(msgs)/2), "messages gathered into batches: %v", rec.batchSizes())
	got, err := c.HGet(context.Background(), prefix+"inventory.customers:299", "d").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"id":299,"email":"e399@example.com"}`, got)
	parked, err := c.XRange(context.Background(), redisstore.RejectedStreamKey(prefix), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, parked, 1)
	assert.Equal(t, "not json", parked[0].Values["payload"])
	assert.JSONEq(t, `{"a":"1"}`, parked[0].Values["attributes"].(string))
}

// A lone message on an idle stream is processed by itself: no waiting for
// a batch to fill.
func TestLoneMessageGoesAlone(t *testing.T) {
	f := newFixture(t)
	c, prefix := testredis.Shared(t)
	rec := &recorder{core: newCore(t, c, prefix)}
	r := pubsubpull.New(pubsubpull.Config{Client: f.client.SubscriptionAdminClient, Subscriptions: []string{subName},
		Processor: rec, Logger: slog.New(slog.DiscardHandler)})
	start(t, r)
	eventually(t, "stream up", r.Connected)
	f.publish(t, change(1, 1))
	eventually(t, "acked", func() bool { return r.Stats().Acked == 1 })
	f.publish(t, change(2, 2))
	eventually(t, "acked", func() bool { return r.Stats().Acked == 2 })
	assert.Equal(t, []int{1, 1}, rec.batchSizes())
}

// A store failure nacks the batch; the messages come back and are applied
// once the cache is back, each acked once.
func TestStoreDownNacksThenRecovers(t *testing.T) {
	f := newFixture(t)
	pr := testredis.StartPrivate(t)
	c := redis.NewClient(&redis.Options{Addr: pr.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	r := pubsubpull.New(pubsubpull.Config{Client: f.client.SubscriptionAdminClient, Subscriptions: []string{subName},
		Processor: newCore(t, c, "p:"), Logger: slog.New(slog.DiscardHandler)})
	pr.Kill()
	start(t, r)
	f.publish(t, change(1, 10), change(2, 20))
	eventually(t, "nacked while Redis is down", func() bool { return r.Stats().Nacked >= 2 })
	assert.Zero(t, r.Stats().Acked, "nothing acked while the cache is down")
	pr.Restart()
	eventually(t, "both acked", func() bool { return r.Stats().Acked == 2 })
	for _, n := range f.acks() {
		assert.Equal(t, 1, n)
	}
	got, err := c.HGet(context.Background(), "p:inventory.customers:2", "d").Result()
	require.NoError(t, err)
	assert.Contains(t, got, `"id":2`)
}

// The receiver never holds more than MaxOutstanding unacknowledged
// messages, and a drain finishes the batch in flight and acks it.
func TestFlowControlAndDrain(t *testing.T) {
	f := newFixture(t)
	c, prefix := testredis.Shared(t)
	rec := &recorder{core: newCore(t, c, prefix), gate: make(chan struct{}), entered: make(chan int, 100)}
	r := pubsubpull.New(pubsubpull.Config{Client: f.client.SubscriptionAdminClient, Subscriptions: []string{subName},
		Processor: rec, MaxOutstanding: 10, Workers: 1, Logger: slog.New(slog.DiscardHandler)})
	var msgs []*pubsub.Message
	for i := range 50 {
		msgs = append(msgs, change(i, int64(i+1)))
	}
	f.publish(t, msgs...)
	stop := start(t, r)
	first := <-rec.entered // one batch is in Process and held there
	assert.LessOrEqual(t, first, 10)
	eventually(t, "the stream has filled its room", func() bool { return r.Stats().Received == 10 })

	// Stop while the batch is held, then release every batch: the one in
	// flight and the rest already received are processed and acked.
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	var err error
release:
	for {
		select {
		case rec.gate <- struct{}{}:
		case err = <-stopped:
			break release
		}
	}
	require.NoError(t, err)
	assert.Equal(t, int64(10), r.Stats().Acked, "the drain acked what was received")
	assert.Equal(t, int64(10), r.Stats().Received, "nothing received beyond the flow-control bound")
}

func TestMissingSubscriptionIsAnError(t *testing.T) {
	f := newFixture(t)
	c, prefix := testredis.Shared(t)
	r := pubsubpull.New(pubsubpull.Config{Client: f.client.SubscriptionAdminClient,
		Subscriptions: []string{"projects/p/subscriptions/nope"}, Processor: newCore(t, c, prefix),
		Logger: slog.New(slog.DiscardHandler)})
	err := r.Run(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope")
}
