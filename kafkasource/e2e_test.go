package kafkasource_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/kafkasource"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// event is a Debezium change event (no schema) for inventory.customers.
func event(op string, id int, email string, pos int64) []byte {
	row := fmt.Sprintf(`{"id":%d,"email":%q}`, id, email)
	before, after := "null", row
	if op == "d" {
		before, after = row, "null"
	}
	return fmt.Appendf(nil, `{"before":%s,"after":%s,"source":{"connector":"mysql","name":"dbserver1",`+
		`"ts_ms":1714568645000,"snapshot":"false","db":"inventory","table":"customers","server_id":223344,`+
		`"file":"mysql-bin.000003","pos":%d,"row":0},"op":%q,"ts_ms":1714568645150}`, before, after, pos, op)
}

// The whole Kafka path on real parts but Kafka: records from kfake through
// the real core and decoder to a private Redis. While Redis is down the
// batch is retried and nothing is committed past it; once Redis is back the
// cache converges, the malformed record is in the DLQ topic, the tombstone
// is skipped, and every offset is committed.
func TestKafkaToRedis(t *testing.T) {
	const topic = "dbserver1.inventory.customers"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic, "cdc-rejected"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	defer c.Close()
	rs := testredis.StartPrivate(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1})
	defer rdb.Close()

	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	defer prod.Close()
	ctx := context.Background()
	key := func(id int) []byte { return fmt.Appendf(nil, `{"id":%d}`, id) }
	send := func(recs ...*kgo.Record) {
		require.NoError(t, prod.ProduceSync(ctx, recs...).FirstErr())
	}
	send(&kgo.Record{Topic: topic, Key: key(1), Value: event("c", 1, "a@x", 100)},
		&kgo.Record{Topic: topic, Key: key(2), Value: event("c", 2, "b@x", 150)},
		&kgo.Record{Topic: topic, Key: key(1), Value: event("u", 1, "a2@x", 200)},
		&kgo.Record{Topic: topic, Key: key(1), Value: event("u", 1, "a2@x", 200)}, // the producer resent it
		&kgo.Record{Topic: topic, Key: key(2), Value: event("d", 2, "b@x", 300)},
		&kgo.Record{Topic: topic, Key: key(2)}, // Debezium's tombstone after the delete
		&kgo.Record{Topic: topic, Key: key(3), Value: []byte(`{"not":"debezium"`)})

	cfg := cdc.DefaultConfig()
	cfg.Prefix = "k:"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := redisstore.New(rdb, cfg, redisstore.Options{Logger: log})
	defer store.Close(ctx)
	src, err := kafkasource.New(kafkasource.Config{
		Brokers: c.ListenAddrs(), Topics: []string{topic}, Group: "workers",
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, CommitInterval: 100 * time.Millisecond,
		Logger: log, Opts: []kgo.Opt{kgo.FetchMaxWait(50 * time.Millisecond)},
	})
	require.NoError(t, err)
	core := pipeline.New(pipeline.Config{Decoder: debezium.NewDecoder(cfg), Store: store,
		Parker: kafkasource.NewDLQParker(src.Client(), "cdc-rejected"), Logger: log})

	rs.Kill() // Redis is down when the first batch arrives
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(runCtx, core) }()
	defer func() { stop(); <-done }()

	adm := kadm.NewClient(prod)
	committedTotal := func() int64 {
		offs, err := adm.FetchOffsets(ctx, "workers")
		if err != nil {
			return -1
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic {
				n += o.At
			}
		})
		return n
	}
	require.Eventually(t, func() bool { return src.Stats().Retries >= 10 }, 20*time.Second, time.Millisecond)
	// Only the tombstone and the malformed record (parked in Kafka, no Redis
	// needed) may be behind a commit; every change waits for Redis.
	ends, err := adm.ListEndOffsets(ctx, topic)
	require.NoError(t, err)
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	assert.Less(t, committedTotal(), total, "committed past changes Redis never applied")

	rs.Restart()
	require.Eventually(t, func() bool { return committedTotal() == total }, 20*time.Second, 5*time.Millisecond)

	row, err := rdb.HGetAll(ctx, "k:inventory.customers:1").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"id":1,"email":"a2@x"}`, row["d"])
	assert.Equal(t, string(cdc.NewVersion(3, 200, 0)), row["v"])
	gone, err := rdb.HGetAll(ctx, "k:inventory.customers:2").Result()
	require.NoError(t, err)
	assert.Equal(t, "1", gone["t"], "the delete is a tombstone; the null-value record did not undo it")

	rd, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("cdc-rejected"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer rd.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := rd.PollFetches(pctx)
	require.NoError(t, fs.Err())
	parked := fs.Records()
	require.Len(t, parked, 1)
	assert.Equal(t, `{"not":"debezium"`, string(parked[0].Value))
	assert.Equal(t, `{"id":3}`, string(parked[0].Key))
	assert.EqualValues(t, 1, src.Stats().Tombstones)
}
