package serve

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testlog"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testprom"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/kafkasource"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// TestKafkaEndToEnd runs the worker as main does with DELIVERY=kafka against
// kfake and the shared Redis: changes are applied and their offsets
// committed, the junk record is parked in the DLQ topic, the null-value
// record is skipped, /healthz and /metrics answer, the lag entries are
// logged, and a stop commits, flushes the checkpoint and writes the last
// summary.
func TestKafkaEndToEnd(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	const topic = "dbserver1.inventory.customers"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic, "rejected"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := strings.Join(c.ListenAddrs(), ",")

	env := map[string]string{"DELIVERY": "kafka", "PORT": "0", "REDIS_URL": "redis://" + testredis.SharedAddr + "/0",
		"CACHE_PREFIX": prefix, "SUMMARY_INTERVAL": "100ms", "KAFKA_BROKERS": brokers, "KAFKA_TOPICS": topic,
		"KAFKA_GROUP": "workers", "KAFKA_DLQ_TOPIC": "rejected"}
	base, stdout, stop := startRun(t, env)
	ctx := context.Background()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	var recs []*kgo.Record
	for i := range 40 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, `{"id":%d}`, i), Value: event(i, int64(i+1)),
			Headers: []kgo.RecordHeader{{Key: "k", Value: []byte("v")}}})
	}
	recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(`{"id":99}`), Value: []byte("junk")},
		&kgo.Record{Topic: topic, Key: []byte(`{"id":1}`)}) // a compaction tombstone
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())

	adm := kadm.NewClient(cl)
	eventually(t, "all committed", func() bool {
		lags, err := adm.Lag(ctx, "workers")
		if err != nil {
			return false
		}
		gl := lags["workers"]
		var committed int64
		for _, l := range gl.Lag.Sorted() {
			committed += l.Commit.At
		}
		return committed == 42
	})
	_, m := get(t, base+"/metrics")
	for _, want := range []string{`cdc_messages_total{table="inventory.customers",outcome="applied"} 40` + "\n",
		`cdc_messages_total{table="unknown",outcome="rejected"} 1` + "\n",
		"cdc_kafka_records_total 42\n", "cdc_kafka_tombstones_total 1\n", "cdc_apply_call_changes_total 40\n"} {
		assert.True(t, strings.Contains(m, want), "/metrics has %q:\n%s", want, m)
	}
	testprom.Parse(t, m)
	assert.Regexp(t, regexp.MustCompile(`cdc_kafka_partition_lag\{topic="dbserver1.inventory.customers",partition="\d"\} 0`), m)
	n, err := rdb.XLen(ctx, redisstore.RejectedStreamKey(prefix)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "with KAFKA_DLQ_TOPIC nothing is parked in Redis")
	eventually(t, "a lag entry", func() bool {
		return strings.Contains(stdout.String(), `"message":"`+kafkasource.LagMessage+`"`)
	})

	require.NoError(t, stop())
	cp, err := rdb.HGet(ctx, redisstore.CheckpointKey(prefix), "dbserver1").Result()
	require.NoError(t, err, "the checkpoint is flushed on stop")
	assert.Len(t, cp, 40)
	assert.Contains(t, stdout.String(), pipeline.SummaryMessage, "the last summary is written on stop")

	assertOnlyJunkParked(t, c)
}

// assertOnlyJunkParked checks that the DLQ topic "rejected" of c holds one
// record, the junk message.
func assertOnlyJunkParked(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	rd, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("rejected"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	t.Cleanup(rd.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs := rd.PollFetches(ctx)
	require.NoError(t, fs.Err())
	require.Len(t, fs.Records(), 1)
	assert.Equal(t, "junk", string(fs.Records()[0].Value))
}

// TestKafkaCommitsOnlyDurableWork checks, at every offset commit the broker
// receives, that the checkpoint stored in Redis already covers every record
// the commit passes: a crash right after the commit then leaves nothing of
// the committed records' effects (the checkpoint included) unwritten, since
// they are never delivered again. Two waves, so the second is applied
// within a second of the first checkpoint write (the store writes it at
// most once a second on its own).
func TestKafkaCommitsOnlyDurableWork(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	const topic = "dbserver1.inventory.customers"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	ctx := context.Background()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, topic)
	require.NoError(t, err)
	topicID := td[topic].ID

	dec := debezium.NewDecoder(cdc.DefaultConfig())
	var (
		mu         sync.Mutex
		versions   []cdc.Version // versions[off]: the change of the record at offset off
		commits    int
		violations []string
	)
	c.KeepControl()
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		stored, _ := rdb.HGet(ctx, redisstore.CheckpointKey(prefix), "dbserver1").Result()
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range req.(*kmsg.OffsetCommitRequest).Topics {
			if tp.Topic != topic && tp.TopicID != topicID {
				continue
			}
			for _, p := range tp.Partitions {
				if p.Offset <= 0 {
					continue
				}
				commits++
				if need := versions[p.Offset-1]; cdc.Version(stored) < need {
					violations = append(violations, fmt.Sprintf("offset %d committed with the checkpoint at %q, below %q",
						p.Offset, stored, need))
				}
			}
		}
		return nil, nil, false
	})

	env := map[string]string{"DELIVERY": "kafka", "PORT": "0", "REDIS_URL": "redis://" + testredis.SharedAddr + "/0",
		"CACHE_PREFIX": prefix, "SUMMARY_INTERVAL": "1h", "KAFKA_BROKERS": strings.Join(c.ListenAddrs(), ","),
		"KAFKA_TOPICS": topic, "KAFKA_GROUP": "durable", "KAFKA_COMMIT_INTERVAL": "100ms"}
	stdout, stderr := &testlog.Buffer{}, &testlog.Buffer{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, nil, func(k string) string { return env[k] }, stdout, stderr) }()
	t.Cleanup(cancel)

	committedAt := func(n int64) func() bool {
		return func() bool {
			offs, err := adm.FetchOffsets(ctx, "durable")
			if err != nil {
				return false
			}
			o, ok := offs.Lookup(topic, 0)
			return ok && o.At == n
		}
	}
	const wave = 20
	for w := range 2 {
		var recs []*kgo.Record
		mu.Lock()
		for i := range wave {
			n := w*wave + i
			v, k := event(n, int64(1000+n)), fmt.Appendf(nil, `{"id":%d}`, n)
			ch, err := dec.Decode(v, k)
			require.NoError(t, err)
			versions = append(versions, ch.Version)
			recs = append(recs, &kgo.Record{Topic: topic, Key: k, Value: v})
		}
		mu.Unlock()
		require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
		eventually(t, fmt.Sprintf("wave %d committed", w+1), committedAt(int64((w+1)*wave)))
	}
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	assert.Positive(t, commits)
	assert.Empty(t, violations, "offsets committed before the checkpoint covering them was written")
}
