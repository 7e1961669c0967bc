package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/pubsubfake"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testlog"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testprom"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

var listening = regexp.MustCompile(`worker listening on (\S+)`)

// event is a Debezium change event (no schema) for inventory.customers.
func event(id int, pos int64) []byte {
	return fmt.Appendf(nil, `{"before":null,"after":{"id":%d,"email":"w@example.com"},"source":{"version":"2.7.0.Final",`+
		`"connector":"mysql","name":"dbserver1","ts_ms":1714568645000,"snapshot":"false","db":"inventory",`+
		`"table":"customers","server_id":223344,"gtid":null,"file":"mysql-bin.000003","pos":%d,"row":0,"thread":7,`+
		`"query":null},"op":"c","ts_ms":1714568645150,"transaction":null}`, id, pos)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

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

// startRun runs the worker as main does with env and returns its base URL
// once /healthz is 200, its stdout, and a stop that cancels the run and
// returns its error.
func startRun(t *testing.T, env map[string]string) (base string, stdout *testlog.Buffer, stop func() error) {
	t.Helper()
	stdout, stderr := &testlog.Buffer{}, &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, nil, func(k string) string { return env[k] }, stdout, stderr) }()
	stopped := false
	stop = func() error {
		t.Helper()
		cancel()
		if stopped {
			return nil
		}
		stopped = true
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("run did not stop")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	var addr string
	eventually(t, "the listening line", func() bool {
		m := listening.FindStringSubmatch(stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	base = "http://" + addr
	eventually(t, "healthy", func() bool { code, _ := get(t, base+"/healthz"); return code == http.StatusOK })
	return base, stdout, stop
}

// fakePubSub starts the Pub/Sub fake and a client of it, both closed when
// the test ends.
func fakePubSub(t *testing.T) (*pubsubfake.Server, *pubsub.Client) {
	t.Helper()
	fake, err := pubsubfake.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { fake.Close() })
	client, err := pubsub.NewClient(context.Background(), "p", option.WithEndpoint(fake.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	return fake, client
}

// TestPullEndToEnd runs the worker as main does against the fake Pub/Sub
// (reached through PUBSUB_EMULATOR_HOST) and the shared Redis: changes are
// applied and acked, a compact (flattened) row is keyed by the column
// registry the worker loaded at start, /healthz and /metrics answer, and a
// stop drains, flushes the checkpoint and writes the last summary.
func TestPullEndToEnd(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	ts, err := cdc.NewTableSchema([]string{"id"}, []cdc.SchemaColumn{{Name: "id", Type: "int"}, {Name: "name", Type: "varchar(20)"}}, 42)
	require.NoError(t, err)
	require.NoError(t, schema.Write(context.Background(), rdb, prefix, map[string]*cdc.TableSchema{"shop.t": ts}))
	fake, client := fakePubSub(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		_, err = client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/p/topics/" + n})
		require.NoError(t, err)
		_, err = client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: "projects/p/subscriptions/" + n, Topic: "projects/p/topics/" + n, AckDeadlineSeconds: 60})
		require.NoError(t, err)
	}

	env := map[string]string{"DELIVERY": "pull", "PORT": "0", "REDIS_URL": "redis://" + testredis.SharedAddr + "/0",
		"CACHE_PREFIX": prefix, "PUBSUB_EMULATOR_HOST": fake.Addr, "SUMMARY_INTERVAL": "1h",
		"PUBSUB_SUBSCRIPTIONS": "projects/p/subscriptions/a, projects/p/subscriptions/b"}
	base, stdout, stop := startRun(t, env)

	pubs := map[string]*pubsub.Publisher{}
	for _, n := range []string{"a", "b"} {
		pubs[n] = client.Publisher("projects/p/topics/" + n)
		pubs[n].EnableMessageOrdering = true // Debezium's ordering keys
		t.Cleanup(pubs[n].Stop)
	}
	var results []*pubsub.PublishResult
	for i := range 40 {
		results = append(results, pubs[[]string{"a", "b"}[i%2]].Publish(ctx, &pubsub.Message{Data: event(i, int64(i+1)),
			OrderingKey: fmt.Sprintf(`{"id":%d}`, i), Attributes: map[string]string{"k": "v"}}))
	}
	results = append(results, pubs["a"].Publish(ctx, &pubsub.Message{Data: []byte("junk")}))
	// Flattened, no message key and no key: in the config: only the
	// registry names its key column.
	results = append(results, pubs["b"].Publish(ctx, &pubsub.Message{Data: []byte(`{"id":7,"name":"seven","__op":"c",` +
		`"__source_file":"mysql-bin.000003","__source_pos":99,"__source_row":0,"__source_ts_ms":1714568645000,` +
		`"__db":"shop","__table":"t","__deleted":"false"}`)}))
	for _, r := range results {
		_, err := r.Get(ctx)
		require.NoError(t, err)
	}
	eventually(t, "all acked", func() bool {
		_, m := get(t, base+"/metrics")
		return regexp.MustCompile(`(?m)^cdc_pull_acked_total 42$`).MatchString(m)
	})
	_, m := get(t, base+"/metrics")
	for _, want := range []string{`cdc_messages_total{table="inventory.customers",outcome="applied"} 40` + "\n",
		`cdc_messages_total{table="shop.t",outcome="applied"} 1` + "\n",
		"cdc_pull_connected 1\n", "cdc_pull_received_total 42\n", "cdc_apply_call_changes_total 41\n"} {
		assert.True(t, strings.Contains(m, want), "/metrics has %q", want)
	}
	fams := testprom.Parse(t, m)
	assert.Len(t, fams["cdc_commit_lag_seconds"].GetMetric()[0].GetHistogram().GetBucket(), 39, "38 finite buckets and +Inf")
	n, err := rdb.XLen(ctx, redisstore.RejectedStreamKey(prefix)).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the junk message is parked")

	require.NoError(t, stop())
	cp, err := rdb.HGet(ctx, redisstore.CheckpointKey(prefix), "dbserver1").Result()
	require.NoError(t, err, "the checkpoint is flushed on stop")
	assert.Len(t, cp, 40)
	assert.Contains(t, stdout.String(), pipeline.SummaryMessage, "the last summary is written on stop")
	for _, msg := range fake.Messages() {
		assert.Equal(t, 1, msg.Acks, "message %s acked once", msg.ID)
	}
}

func TestBadConfigurationNamesTheSetting(t *testing.T) {
	for env, want := range map[string]string{
		"":              "DELIVERY",
		"DELIVERY=push": "DELIVERY",
		"DELIVERY=pull": "PUBSUB_SUBSCRIPTIONS",
		"DELIVERY=pull PUBSUB_SUBSCRIPTIONS=topics/x":                                          "PUBSUB_SUBSCRIPTIONS",
		"DELIVERY=pull PUBSUB_SUBSCRIPTIONS=projects/p/subscriptions/s PULL_MAX_OUTSTANDING=0": "PULL_MAX_OUTSTANDING",
		"DELIVERY=pull PUBSUB_SUBSCRIPTIONS=projects/p/subscriptions/s CACHE_BACKEND=dynamo":   "CACHE_BACKEND",
		"DELIVERY=pull PUBSUB_SUBSCRIPTIONS=projects/p/subscriptions/s REDIS_URL=http://x":     "REDIS_URL",
		"DELIVERY=pull PUBSUB_SUBSCRIPTIONS=projects/p/subscriptions/s REJECT_TOPIC=t":         "REJECT_TOPIC",
		"DELIVERY=pull PUBSUB_SUBSCRIPTIONS=projects/p/subscriptions/s PORT=http":              "PORT",
		"DELIVERY=kafka":                                               "KAFKA_BROKERS",
		"DELIVERY=kafka KAFKA_BROKERS=a:1":                             "KAFKA_TOPICS",
		"DELIVERY=kafka KAFKA_BROKERS=a:1 KAFKA_TOPIC_REGEX=(":         "KAFKA_TOPIC_REGEX",
		"DELIVERY=kafka KAFKA_BROKERS=a:1 KAFKA_TOPICS=t KAFKA_SASL=x": "KAFKA_SASL",
	} {
		vars := map[string]string{}
		for _, kv := range regexp.MustCompile(`\S+`).FindAllString(env, -1) {
			k, v, _ := cut(kv)
			vars[k] = v
		}
		err := Run(context.Background(), nil, func(k string) string { return vars[k] }, io.Discard, io.Discard)
		require.Error(t, err, env)
		assert.Contains(t, err.Error(), want+":", env)
	}
	assert.ErrorContains(t, Run(context.Background(), []string{"x"}, func(string) string { return "" }, io.Discard, io.Discard),
		"no arguments")
}

func cut(kv string) (string, string, bool) {
	for i := range kv {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// A worker whose Redis does not answer at start logs one error naming
// REDIS_URL and keeps running (no crash loop); /healthz is 503 saying so,
// asks again on every request, and is 200 once Redis answers.
func TestCacheNotAnsweringAtStartThenReady(t *testing.T) {
	fake, client := fakePubSub(t)
	ctx := context.Background()
	var err error
	_, err = client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/p/topics/a"})
	require.NoError(t, err)
	_, err = client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/p/subscriptions/a", Topic: "projects/p/topics/a", AckDeadlineSeconds: 60})
	require.NoError(t, err)
	rs := testredis.StartPrivate(t)
	rs.Kill()

	env := map[string]string{"DELIVERY": "pull", "PORT": "0", "REDIS_URL": rs.URL(), "SUMMARY_INTERVAL": "1h",
		"PUBSUB_EMULATOR_HOST": fake.Addr, "PUBSUB_SUBSCRIPTIONS": "projects/p/subscriptions/a"}
	stdout, stderr := &testlog.Buffer{}, &testlog.Buffer{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, nil, func(k string) string { return env[k] }, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// Refused, or (on a loaded machine, or when another test has taken
	// the freed port) timed out: either names the setting and the address;
	// svcenv's test covers which sentence goes with which error.
	want := `REDIS_URL: (nothing answers at|no answer from) ` + regexp.QuoteMeta(rs.Addr())
	eventually(t, "the start-up error", func() bool { return stdout.Count(`"severity":"ERROR"`) > 0 })
	assert.Regexp(t, `"message":"cache not answering at start: `+want, stdout.String())
	assert.Contains(t, stdout.String(), `"setting":"REDIS_URL"`)
	addr := listening.FindStringSubmatch(stderr.String())[1]
	code, body := get(t, "http://"+addr+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Regexp(t, "cache not answering: "+want, body)

	rs.Restart()
	eventually(t, "ready once Redis answers", func() bool { code, _ := get(t, "http://"+addr+"/healthz"); return code == http.StatusOK })
	assert.Equal(t, 1, stdout.Count(`"severity":"ERROR"`), "one error, not one per retry")
}
