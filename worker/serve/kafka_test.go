package serve

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

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
	stdout, stderr := &testlog.Buffer{}, &testlog.Buffer{}
	ctx := context.Background()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, nil, func(k string) string { return env[k] }, stdout, stderr) }()
	t.Cleanup(cancel)
	var addr string
	eventually(t, "the listening line", func() bool {
		m := listening.FindStringSubmatch(stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	base := "http://" + addr
	eventually(t, "healthy", func() bool { code, _ := get(t, base+"/healthz"); return code == http.StatusOK })

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

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
	cp, err := rdb.HGet(ctx, redisstore.CheckpointKey(prefix), "dbserver1").Result()
	require.NoError(t, err, "the checkpoint is flushed on stop")
	assert.Len(t, cp, 40)
	assert.Contains(t, stdout.String(), pipeline.SummaryMessage, "the last summary is written on stop")

	rd, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("rejected"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	t.Cleanup(rd.Close)
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	fs := rd.PollFetches(pctx)
	require.NoError(t, fs.Err())
	require.Len(t, fs.Records(), 1)
	assert.Equal(t, "junk", string(fs.Records()[0].Value))
}
