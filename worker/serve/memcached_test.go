package serve

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/internal/pubsubfake"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testmemcache"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testprom"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

const noParkerWarning = "without REJECT_TOPIC or KAFKA_DLQ_TOPIC"

// memcachedRow reads the record of inventory.customers:id from memcached
// and returns it, failing the test when there is none.
func memcachedRow(t *testing.T, c *memcachestore.Client, prefix string, id int) memcachestore.Record {
	t.Helper()
	op := &memcachestore.Op{Key: memcachestore.Key(prefix, fmt.Sprintf("%sinventory.customers:%d", prefix, id))}
	c.Do(context.Background(), []*memcachestore.Op{op})
	require.NoError(t, op.Err)
	require.Equal(t, memcachestore.StatusHit, op.Status, "record of id %d", id)
	rec, err := memcachestore.ParseRecord(op.Value)
	require.NoError(t, err)
	return rec
}

// TestPullMemcached runs the pull worker with CACHE_BACKEND=memcached and no
// REJECT_TOPIC against a private memcached: the changes are applied as
// memcached records and acked; the junk message, with nowhere to park it,
// is never acknowledged but nacked until the subscription's dead-letter
// policy moves it to the dead-letter topic; start-up warns once; /metrics
// has the memcached store's counters; a stop flushes the checkpoint item.
func TestPullMemcached(t *testing.T) {
	mc := testmemcache.Start(t)
	const prefix = "w:"
	fake, err := pubsubfake.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { fake.Close() })
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, "p", option.WithEndpoint(fake.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	for _, n := range []string{"a", "dead"} {
		_, err = client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/p/topics/" + n})
		require.NoError(t, err)
	}
	_, err = client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/p/subscriptions/dead", Topic: "projects/p/topics/dead"})
	require.NoError(t, err)
	_, err = client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/p/subscriptions/a", Topic: "projects/p/topics/a", AckDeadlineSeconds: 60,
		DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{DeadLetterTopic: "projects/p/topics/dead", MaxDeliveryAttempts: 5}})
	require.NoError(t, err)

	base, stdout, stop := startRun(t, map[string]string{"DELIVERY": "pull", "PORT": "0", "CACHE_BACKEND": "memcached",
		"MEMCACHE_ADDRS": mc.Addr(), "CACHE_PREFIX": prefix, "SUMMARY_INTERVAL": "1h",
		"PUBSUB_EMULATOR_HOST": fake.Addr, "PUBSUB_SUBSCRIPTIONS": "projects/p/subscriptions/a"})
	assert.Equal(t, 1, stdout.Count(noParkerWarning), "one start-up warning:\n%s", stdout.String())

	pub := client.Publisher("projects/p/topics/a")
	pub.EnableMessageOrdering = true // Debezium's ordering keys: the rows' keys
	t.Cleanup(pub.Stop)
	var results []*pubsub.PublishResult
	for i := range 30 {
		results = append(results, pub.Publish(ctx, &pubsub.Message{Data: event(i, int64(i+1)),
			OrderingKey: fmt.Sprintf(`{"id":%d}`, i)}))
	}
	junk := pub.Publish(ctx, &pubsub.Message{Data: []byte("junk")})
	for _, r := range results {
		_, err := r.Get(ctx)
		require.NoError(t, err)
	}
	junkID, err := junk.Get(ctx)
	require.NoError(t, err)

	// The dead-letter topic receives the junk after its 5 deliveries.
	var dead []*pubsubpb.ReceivedMessage
	eventually(t, "the junk dead-lettered", func() bool {
		resp, err := client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{Subscription: "projects/p/subscriptions/dead", MaxMessages: 10})
		require.NoError(t, err)
		dead = append(dead, resp.ReceivedMessages...)
		return len(dead) > 0
	})
	require.Len(t, dead, 1)
	assert.Equal(t, "junk", string(dead[0].Message.Data))
	eventually(t, "all changes acked", func() bool {
		_, m := get(t, base+"/metrics")
		return regexp.MustCompile(`(?m)^cdc_pull_acked_total 30$`).MatchString(m)
	})
	assert.Zero(t, fake.Acks().Current[junkID], "the junk is never acknowledged")

	_, m := get(t, base+"/metrics")
	for _, want := range []string{`cdc_messages_total{table="inventory.customers",outcome="applied"} 30` + "\n",
		"cdc_apply_call_changes_total 30\n", "cdc_cas_races_total 0\n", "cdc_cas_exhausted_total 0\n"} {
		assert.True(t, strings.Contains(m, want), "/metrics has %q:\n%s", want, m)
	}
	testprom.Parse(t, m)
	mcc, err := memcachestore.NewClient([]string{mc.Addr()}, memcachestore.ClientOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { mcc.Close() })
	for i := range 30 {
		rec := memcachedRow(t, mcc, prefix, i)
		assert.Equal(t, byte(memcachestore.KindRow), rec.Kind)
		assert.JSONEq(t, fmt.Sprintf(`{"id":%d,"email":"w@example.com"}`, i), string(rec.Row))
	}

	require.NoError(t, stop())
	cps, err := memcachestore.ReadCheckpoints(ctx, mcc, prefix)
	require.NoError(t, err)
	assert.Equal(t, memcachedRow(t, mcc, prefix, 29).Version, cps.Servers["dbserver1"].Version,
		"the checkpoint is flushed on stop: the newest change's version")
	assert.Contains(t, stdout.String(), pipeline.SummaryMessage, "the last summary is written on stop")
	assert.Equal(t, 1, stdout.Count(noParkerWarning), "warned once, not per message")
}

// TestKafkaMemcached runs the Kafka worker with CACHE_BACKEND=memcached and
// KAFKA_DLQ_TOPIC: changes become memcached records and their offsets are
// committed, the junk record is parked in the DLQ topic (no warning), and a
// stop flushes the checkpoint item.
func TestKafkaMemcached(t *testing.T) {
	mc := testmemcache.Start(t)
	const topic = "dbserver1.inventory.customers"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic, "rejected"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(c.Close)

	base, stdout, stop := startRun(t, map[string]string{"DELIVERY": "kafka", "PORT": "0", "CACHE_BACKEND": "memcached",
		"MEMCACHE_ADDRS": mc.Addr(), "SUMMARY_INTERVAL": "1h", "KAFKA_BROKERS": strings.Join(c.ListenAddrs(), ","),
		"KAFKA_TOPICS": topic, "KAFKA_GROUP": "workers", "KAFKA_DLQ_TOPIC": "rejected"})
	assert.Zero(t, stdout.Count(noParkerWarning), "a DLQ topic parks: no warning")

	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	var recs []*kgo.Record
	for i := range 30 {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, `{"id":%d}`, i), Value: event(i, int64(i+1))})
	}
	recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(`{"id":99}`), Value: []byte("junk")})
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
	adm := kadm.NewClient(cl)
	eventually(t, "all committed", func() bool {
		lags, err := adm.Lag(ctx, "workers")
		if err != nil {
			return false
		}
		var committed int64
		for _, l := range lags["workers"].Lag.Sorted() {
			committed += l.Commit.At
		}
		return committed == 31
	})
	_, m := get(t, base+"/metrics")
	for _, want := range []string{`cdc_messages_total{table="inventory.customers",outcome="applied"} 30` + "\n",
		`cdc_messages_total{table="unknown",outcome="rejected"} 1` + "\n", "cdc_cas_races_total 0\n"} {
		assert.True(t, strings.Contains(m, want), "/metrics has %q:\n%s", want, m)
	}
	mcc, err := memcachestore.NewClient([]string{mc.Addr()}, memcachestore.ClientOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { mcc.Close() })
	for i := range 30 {
		assert.Equal(t, byte(memcachestore.KindRow), memcachedRow(t, mcc, "", i).Kind)
	}

	require.NoError(t, stop())
	cps, err := memcachestore.ReadCheckpoints(ctx, mcc, "")
	require.NoError(t, err)
	assert.NotEmpty(t, cps.Servers["dbserver1"].Version, "the checkpoint is flushed on stop")

	assertOnlyJunkParked(t, c)
}
