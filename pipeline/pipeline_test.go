package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testlog"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// countingStore counts the ApplyBatch calls reaching the real store.
type countingStore struct {
	pipeline.Store
	calls, changes atomic.Int64
}

func (s *countingStore) ApplyBatch(ctx context.Context, changes []cdc.Change) []cdc.Result {
	s.calls.Add(1)
	s.changes.Add(int64(len(changes)))
	return s.Store.ApplyBatch(ctx, changes)
}

// rig is a core on the real decoder and Redis store.
type rig struct {
	core   *pipeline.Core
	store  *countingStore
	redis  *redis.Client
	prefix string
	logs   *testlog.Buffer
}

func newRig(t *testing.T, c *redis.Client, prefix string, parker pipeline.Parker) *rig {
	t.Helper()
	cfg := cdc.DefaultConfig()
	cfg.Prefix = prefix
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	st := redisstore.New(c, cfg, redisstore.Options{Logger: log})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st.Close(ctx)
	})
	if parker == nil {
		parker = redisstore.NewRedisParker(c, prefix)
	}
	store := &countingStore{Store: st}
	core := pipeline.New(pipeline.Config{Decoder: debezium.NewDecoder(cfg), Store: store, Parker: parker, Logger: log})
	return &rig{core: core, store: store, redis: c, prefix: prefix, logs: logs}
}

// event is a Debezium change event (no schema) for inventory.customers.
func event(op string, id int, email string, pos int64) []byte {
	row := fmt.Sprintf(`{"id":%d,"email":%q}`, id, email)
	before, after := "null", row
	if op == "d" {
		before, after = row, "null"
	}
	commit := time.Now().UnixMilli()
	return fmt.Appendf(nil, `{"before":%s,"after":%s,"source":{"version":"2.7.0.Final","connector":"mysql",`+
		`"name":"dbserver1","ts_ms":%d,"snapshot":"false","db":"inventory","table":"customers",`+
		`"server_id":223344,"gtid":null,"file":"mysql-bin.000003","pos":%d,"row":0,"thread":7,"query":null},`+
		`"op":%q,"ts_ms":%d,"transaction":null}`, before, after, commit, pos, op, commit+150)
}

func msg(data []byte, id int) pipeline.Message {
	return pipeline.Message{Data: data, Key: fmt.Appendf(nil, `{"id":%d}`, id), ID: fmt.Sprint("m-", id),
		PublishTime: time.Now().Add(-time.Second)}
}

func (r *rig) record(t *testing.T, pk int) map[string]string {
	t.Helper()
	m, err := r.redis.HGetAll(context.Background(), fmt.Sprintf("%sinventory.customers:%d", r.prefix, pk)).Result()
	require.NoError(t, err)
	return m
}

func (r *rig) parked(t *testing.T) []redis.XMessage {
	t.Helper()
	e, err := r.redis.XRange(context.Background(), redisstore.RejectedStreamKey(r.prefix), "-", "+").Result()
	require.NoError(t, err)
	return e
}

func TestProcessBatchInOneApplyBatch(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, nil)
	msgs := []pipeline.Message{
		msg(event("c", 1, "old@example.com", 100), 1),
		msg([]byte(`{"op":"c","after":`), 2), // malformed: parked
		msg(event("u", 1, "new@example.com", 200), 1),
		msg(event("c", 1, "old@example.com", 100), 1), // a late duplicate: stale
		msg(event("c", 3, "three@example.com", 300), 3),
		msg(event("d", 3, "three@example.com", 400), 3),
		{Data: []byte(`{"ts_ms":1714568645000}`), Key: []byte(`{"serverName":"dbserver1"}`), ID: "hb"}, // heartbeat
		{Data: nil, Key: []byte(`{"id":4}`), ID: "tombstone"},                                          // Kafka tombstone
	}
	got := r.core.Process(context.Background(), msgs)
	want := []pipeline.Verdict{pipeline.Ack, pipeline.Parked, pipeline.Ack, pipeline.Ack, pipeline.Ack, pipeline.Ack,
		pipeline.Ack, pipeline.Ack}
	assert.Equal(t, want, got)
	assert.Equal(t, int64(1), r.store.calls.Load(), "one ApplyBatch per batch")
	assert.Equal(t, int64(7), r.store.changes.Load(), "every decoded message, in one call")

	assert.Equal(t, `{"id":1,"email":"new@example.com"}`, r.record(t, 1)["d"], "in message order")
	assert.Equal(t, "1", r.record(t, 3)["t"])
	parked := r.parked(t)
	require.Len(t, parked, 1)
	assert.Equal(t, "m-2", parked[0].Values["message_id"])
	assert.Contains(t, parked[0].Values["reason"], "decode: ")

	tables := r.core.Metrics().Tables()
	cust := tables["inventory.customers"]
	assert.Equal(t, uint64(3), cust.Outcomes[cdc.OutcomeApplied])
	assert.Equal(t, uint64(1), cust.Outcomes[cdc.OutcomeStale])
	assert.Equal(t, uint64(1), cust.Outcomes[cdc.OutcomeDeleted])
	assert.Equal(t, uint64(5), cust.Queue.Count, "publish times observed")
	assert.Equal(t, uint64(2), tables["unknown"].Outcomes[cdc.OutcomeIgnored], "heartbeat and tombstone")
	assert.Equal(t, uint64(1), r.core.Metrics().Total().Outcomes[cdc.OutcomeRejected])
	lines, err := r.logs.JSONLines()
	require.NoError(t, err)
	require.Len(t, lines, 1, "one line for the reject, none per applied change")
	assert.Equal(t, "cdc message rejected", lines[0]["msg"])
}

func TestProcessStoreDownRetriesAndParksStillPark(t *testing.T) {
	shared, prefix := testredis.Shared(t)
	pr := testredis.StartPrivate(t)
	dead := redis.NewClient(&redis.Options{Addr: pr.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { dead.Close() })
	pr.Kill()
	// The store's Redis is down; the parker's is up.
	r := newRig(t, dead, prefix, redisstore.NewRedisParker(shared, prefix))
	r.redis = shared
	msgs := []pipeline.Message{msg(event("c", 1, "a@example.com", 1), 1), msg([]byte("junk"), 2),
		msg(event("c", 2, "b@example.com", 2), 2)}
	got := r.core.Process(context.Background(), msgs)
	assert.Equal(t, []pipeline.Verdict{pipeline.Retry, pipeline.Parked, pipeline.Retry}, got)
	assert.Equal(t, uint64(2), r.core.Metrics().Total().Outcomes[cdc.OutcomeFailed])
	lines, err := r.logs.JSONLines()
	require.NoError(t, err)
	var failed []map[string]any
	for _, l := range lines {
		if l["msg"] == "cdc apply failed" {
			failed = append(failed, l)
		}
	}
	require.Len(t, failed, 1, "one line per failed batch, not per change")
	assert.Equal(t, float64(2), failed[0]["failed"])
	assert.Len(t, r.parked(t), 1)
}

// decoderFunc adapts a function to pipeline.Decoder, for changes the real
// decoder never produces.
type decoderFunc func(value, key []byte) (cdc.Change, error)

func (f decoderFunc) Decode(value, key []byte) (cdc.Change, error) { return f(value, key) }

func TestProcessInvalidChangeIsParked(t *testing.T) {
	c, prefix := testredis.Shared(t)
	cfg := cdc.DefaultConfig()
	cfg.Prefix = prefix
	st := redisstore.New(c, cfg, redisstore.Options{})
	t.Cleanup(func() { st.Close(context.Background()) })
	core := pipeline.New(pipeline.Config{
		// An upsert without a row can never apply: the store says cdc.ErrInvalid.
		Decoder: decoderFunc(func(v, _ []byte) (cdc.Change, error) {
			return cdc.Change{Op: cdc.OpCreate, Table: "inventory.customers", Key: prefix + "inventory.customers:" + string(v),
				Version: cdc.NewVersion(1, 1, 0)}, nil
		}),
		Store: st, Parker: redisstore.NewRedisParker(c, prefix), Logger: slog.New(slog.DiscardHandler),
	})
	got := core.Process(context.Background(), []pipeline.Message{{Data: []byte("9"), ID: "a"}, {Data: []byte("10"), ID: "b"}})
	assert.Equal(t, []pipeline.Verdict{pipeline.Parked, pipeline.Parked}, got)
	e, err := c.XRange(context.Background(), redisstore.RejectedStreamKey(prefix), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, e, 2)
	assert.Contains(t, e[0].Values["reason"], "store: ")
}

// failingParker never keeps a message.
type failingParker struct{}

func (failingParker) Park(context.Context, pipeline.Rejected) error { return fmt.Errorf("parker down") }

func TestRejectAndParkFailure(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, nil)
	body := []byte(`{"message":{"data":"!!"}}`)
	assert.Equal(t, pipeline.Parked, r.core.Reject(context.Background(), pipeline.Message{Data: body, ID: "x"}, "push envelope: bad"))
	parked := r.parked(t)
	require.Len(t, parked, 1)
	assert.Equal(t, string(body), parked[0].Values["payload"])
	assert.Equal(t, "push envelope: bad", parked[0].Values["reason"])

	broken := newRig(t, c, prefix, failingParker{})
	assert.Equal(t, []pipeline.Verdict{pipeline.Retry, pipeline.Ack},
		broken.core.Process(context.Background(), []pipeline.Message{msg([]byte("junk"), 1), msg(event("c", 5, "e@example.com", 5), 5)}),
		"a message that cannot be parked is retried; the rest of the batch goes on")
	assert.Equal(t, uint64(1), broken.core.Metrics().Total().Outcomes[cdc.OutcomeFailed])
	assert.Equal(t, int64(1), broken.store.calls.Load(), "the good change was still applied")
	assert.Equal(t, `{"id":5,"email":"e@example.com"}`, broken.record(t, 5)["d"])
}

func TestProcessConcurrentBatches(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, nil)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			batch := make([]pipeline.Message, 50)
			for i := range batch {
				id := g*1000 + i
				batch[i] = msg(event("c", id, "c@example.com", int64(id+1)), id)
			}
			for _, v := range r.core.Process(context.Background(), batch) {
				assert.Equal(t, pipeline.Ack, v)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, uint64(200), r.core.Metrics().Total().Outcomes[cdc.OutcomeApplied])
	assert.Equal(t, int64(4), r.store.calls.Load())
}

func TestVerdictString(t *testing.T) {
	assert.Equal(t, "ack", pipeline.Ack.String())
	assert.Equal(t, "parked", pipeline.Parked.String())
	assert.Equal(t, "retry", pipeline.Retry.String())
	assert.Equal(t, "unknown", pipeline.Verdict(9).String())
}
