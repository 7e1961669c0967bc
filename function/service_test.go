package function_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/function"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testlog"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testmemcache"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testprom"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/pubsubpark"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	notPEM := writeFile(t, "ca.pem", "not a certificate")
	badYAML := writeFile(t, "cache.yaml", "tables:\n  inventory.customers:\n    mode: mirror\n")
	unknownField := writeFile(t, "cache2.yaml", "tombstone_tll: 1h\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"port not a number", map[string]string{"PORT": "http"}, []string{"PORT:", `"http"`}},
		{"port out of range", map[string]string{"PORT": "70000"}, []string{"PORT:"}},
		{"redis url scheme", map[string]string{"REDIS_URL": "http://127.0.0.1:6379"}, []string{"REDIS_URL:", "scheme"}},
		{"redis url db", map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/notadb"}, []string{"REDIS_URL:"}},
		{"ca cert without tls", map[string]string{"REDIS_CA_CERT": notPEM}, []string{"REDIS_CA_CERT:", "rediss://"}},
		{"ca cert missing", map[string]string{"REDIS_URL": "rediss://127.0.0.1:6379", "REDIS_CA_CERT": "/nonexistent/ca.pem"},
			[]string{"REDIS_CA_CERT:", "/nonexistent/ca.pem"}},
		{"ca cert not pem", map[string]string{"REDIS_URL": "rediss://127.0.0.1:6379", "REDIS_CA_CERT": notPEM},
			[]string{"REDIS_CA_CERT:", "no PEM certificate"}},
		{"config missing", map[string]string{"CACHE_CONFIG": "/nonexistent/cache.yaml"}, []string{"CACHE_CONFIG:", "/nonexistent/cache.yaml"}},
		{"config bad mode", map[string]string{"CACHE_CONFIG": badYAML}, []string{"CACHE_CONFIG:", "tables.inventory.customers.mode", "mirror"}},
		{"config unknown field", map[string]string{"CACHE_CONFIG": unknownField}, []string{"CACHE_CONFIG:", "tombstone_tll"}},
		{"prefix with glob", map[string]string{"CACHE_PREFIX": "a*b"}, []string{"CACHE_PREFIX:", "prefix"}},
		{"reject topic", map[string]string{"REJECT_TOPIC": "cdc-rejected"}, []string{"REJECT_TOPIC:", "projects/PROJECT/topics/TOPIC"}},
		{"summary interval", map[string]string{"SUMMARY_INTERVAL": "often"}, []string{"SUMMARY_INTERVAL:"}},
		{"summary interval negative", map[string]string{"SUMMARY_INTERVAL": "-1s"}, []string{"SUMMARY_INTERVAL:"}},
		{"cache backend", map[string]string{"CACHE_BACKEND": "mongodb"}, []string{"CACHE_BACKEND:", "mongodb"}},
		{"memcache addrs", map[string]string{"CACHE_BACKEND": "memcached", "MEMCACHE_ADDRS": "10.0.0.1:11211,10.0.0.2"}, []string{"MEMCACHE_ADDRS:", "10.0.0.2"}},
		{"memcache addrs empty", map[string]string{"CACHE_BACKEND": "memcached", "MEMCACHE_ADDRS": " , "}, []string{"MEMCACHE_ADDRS:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := function.NewFromEnv(context.Background(), env(tc.env), function.WithLogOutput(io.Discard))
			require.Error(t, err)
			assert.Nil(t, svc)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

const eventJSON = `{"before":null,"after":{"id":%d,"email":"f@example.com"},"source":{"name":"dbserver1",` +
	`"ts_ms":%d,"snapshot":"false","db":"inventory","table":"customers","server_id":1,` +
	`"file":"mysql-bin.000004","pos":%d,"row":0},"op":"c","ts_ms":%d}`

// envelope returns a wrapped push of a create of row id.
func envelope(id int, data []byte) []byte {
	if data == nil {
		now := time.Now().UnixMilli()
		data = fmt.Appendf(nil, eventJSON, id, now, 100+id, now)
	}
	b, _ := json.Marshal(map[string]any{
		"message": map[string]any{
			"data": base64.StdEncoding.EncodeToString(data), "messageId": strconv.Itoa(id),
			"publishTime": time.Now().UTC().Format(time.RFC3339Nano), "orderingKey": fmt.Sprintf(`{"id":%d}`, id),
		},
		"subscription": "projects/p/subscriptions/s",
	})
	return b
}

// summaries returns the summary payloads among the JSON log lines.
func summaries(t *testing.T, out string) []map[string]any {
	t.Helper()
	var sums []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var entry map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &entry), line)
		if msg, ok := entry["message"].(map[string]any); ok && msg["message"] == pipeline.SummaryMessage {
			assert.Equal(t, "INFO", entry["severity"])
			sums = append(sums, msg)
		}
	}
	return sums
}

func TestServiceServesPushMetricsHealth(t *testing.T) {
	c, prefix := testredis.Shared(t)
	logs := &testlog.Buffer{}
	svc, err := function.NewFromEnv(context.Background(),
		env(map[string]string{"CACHE_PREFIX": prefix, "SUMMARY_INTERVAL": "1h"}), function.WithLogOutput(logs))
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Mux())
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/", "application/json", bytes.NewReader(envelope(1, nil)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	resp, err = http.Post(srv.URL+"/", "application/json", bytes.NewReader(envelope(2, []byte("garbage"))))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode, "parked and acknowledged")

	resp, err = http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain; version=0.0.4")
	assert.Contains(t, string(body), `cdc_messages_total{table="inventory.customers",outcome="applied"} 1`)
	assert.Contains(t, string(body), `cdc_messages_total{table="unknown",outcome="rejected"} 1`)
	assert.Contains(t, string(body), "\ncdc_apply_calls_total 1\n", "one apply script call")
	assert.Contains(t, string(body), "\ncdc_apply_call_changes_total 1\n")
	assert.Contains(t, string(body), "\ncdc_restore_warnings_total 0\n")
	fams := testprom.Parse(t, string(body)) // the store's and the handler's families too
	for _, f := range []string{"cdc_messages_total", "cdc_commit_lag_seconds", "cdc_pipeline_lag_seconds",
		"cdc_queue_seconds", "cdc_apply_seconds", "cdc_apply_calls_total", "cdc_push_shed_total"} {
		assert.Contains(t, fams, f)
	}
	h := fams["cdc_apply_seconds"].GetMetric()[0].GetHistogram()
	assert.Len(t, h.GetBucket(), 39, "38 finite buckets and +Inf, not 111 series")
	assert.Equal(t, uint64(1), h.GetSampleCount())

	resp, err = http.Get(srv.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	d, err := c.HGet(context.Background(), prefix+"inventory.customers:1", "d").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"id":1,"email":"f@example.com"}`, d)
	n, err := c.XLen(context.Background(), redisstore.RejectedStreamKey(prefix)).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)

	// Close writes the last interval's summary, one per table, through the
	// logging library's stdout JSON mode.
	require.NoError(t, svc.Close(context.Background()))
	sums := summaries(t, logs.String())
	require.Len(t, sums, 2)
	assert.Equal(t, "inventory.customers", sums[0]["table"])
	assert.Equal(t, 1.0, sums[0]["applied"])
	assert.Contains(t, sums[0], "commit_lag_ms_p99")
	assert.Equal(t, "unknown", sums[1]["table"])
	assert.Equal(t, 1.0, sums[1]["rejected"])
	assert.Contains(t, logs.String(), `"severity":"WARNING"`, "the reject's own log line, Cloud Logging style")
	assert.Contains(t, logs.String(), `"message":"cdc message rejected"`)
}

func TestUnreachableRedisAtStartRecovers(t *testing.T) {
	rs := testredis.StartPrivate(t)
	rs.Kill() // its port is known, and nothing answers on it

	svc, err := function.NewFromEnv(context.Background(),
		env(map[string]string{"REDIS_URL": rs.URL()}), function.WithLogOutput(io.Discard))
	require.NoError(t, err, "no Redis at start is not a start-up error")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		svc.Close(ctx)
	})
	post := func() int {
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(envelope(5, nil))))
		return rec.Code
	}
	assert.Equal(t, http.StatusServiceUnavailable, post())
	code, body := get(t, svc.Mux(), "/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "not ready while Redis does not answer")
	// Refused, or timed out on a loaded machine (svcenv's test covers which sentence is which).
	assert.Regexp(t, `REDIS_URL: (nothing answers at|no answer from) `+regexp.QuoteMeta(rs.Addr()), body)
	code, _ = get(t, svc.Mux(), "/livez")
	assert.Equal(t, http.StatusOK, code, "alive all the same: a restart would not help")

	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for post() != http.StatusNoContent {
		require.True(t, time.Now().Before(deadline), "the service did not recover once Redis was up")
		time.Sleep(50 * time.Millisecond) // polling interval, like Pub/Sub's retry backoff
	}
	code, body = get(t, svc.Mux(), "/healthz")
	assert.Equal(t, http.StatusOK, code, "ready again: /healthz asks Redis on every request")
	assert.Equal(t, "ok\n", body)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer c.Close()
	d, err := c.HGet(context.Background(), "inventory.customers:5", "d").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"id":5,"email":"f@example.com"}`, d)
}

func TestRejectTopicFromEnv(t *testing.T) {
	srv := pstest.NewServer()
	defer srv.Close()
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr) // the client library reads it from the process
	admin, err := pubsub.NewClient(context.Background(), "proj", option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	require.NoError(t, err)
	defer admin.Close()
	topic := "projects/proj/topics/rejects"
	_, err = admin.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: topic})
	require.NoError(t, err)

	_, prefix := testredis.Shared(t)
	svc, err := function.NewFromEnv(context.Background(),
		env(map[string]string{"CACHE_PREFIX": prefix, "REJECT_TOPIC": topic}), function.WithLogOutput(io.Discard))
	require.NoError(t, err)
	defer svc.Close(context.Background())
	rec := httptest.NewRecorder()
	svc.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(envelope(9, []byte("not an event")))))
	assert.Equal(t, http.StatusNoContent, rec.Code)
	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, "not an event", string(msgs[0].Data))
	assert.Contains(t, msgs[0].Attributes[pubsubpark.AttrRejectReason], "decode")
}

// TestFrameworkInitRejectsBadConfig runs this test binary again as the
// Functions Framework would (FUNCTION_TARGET=Apply) with a bad setting:
// start-up must stop with a message naming it.
func TestFrameworkInitRejectsBadConfig(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FUNCTION_TARGET=Apply", "REDIS_URL=memcached://x")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "start-up must fail: %s", out)
	assert.Contains(t, string(out), "REDIS_URL:")
}

// compactPush wraps a compact (schemaless, flattened) row as Pub/Sub pushes
// it with ordering off: no ordering key.
func compactPush(id int, row string) []byte {
	b, _ := json.Marshal(map[string]any{
		"message": map[string]any{"data": base64.StdEncoding.EncodeToString([]byte(row)), "messageId": strconv.Itoa(id),
			"publishTime": time.Now().UTC().Format(time.RFC3339Nano)},
		"subscription": "projects/p/subscriptions/s",
	})
	return b
}

// The function loads the column registry at start: compact rows get their
// key and types from it, and a row with a column it does not type leaves a
// marker counted as untyped on /metrics and in the summary.
func TestCompactMessagesUseTheRegistry(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	ts, err := cdc.NewTableSchema([]string{"id"}, []cdc.SchemaColumn{{Name: "id", Type: "int(11)"}, {Name: "at", Type: "datetime(3)"}}, 1)
	require.NoError(t, err)
	require.NoError(t, schema.Write(ctx, c, prefix, map[string]*cdc.TableSchema{"shop.orders": ts}))
	logs := &testlog.Buffer{}
	svc, err := function.NewFromEnv(ctx, env(map[string]string{"CACHE_PREFIX": prefix, "SUMMARY_INTERVAL": "1h"}), function.WithLogOutput(logs))
	require.NoError(t, err)
	meta := `"__op":"c","__source_file":"mysql-bin.000004","__source_pos":%d,"__source_row":0,"__source_ts_ms":1714568645000,` +
		`"__db":"shop","__table":"orders","__deleted":"false"`
	post := func(id int, row string) int {
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(compactPush(id, row))))
		return rec.Code
	}
	require.Equal(t, http.StatusNoContent, post(1, fmt.Sprintf(`{"id":1,"at":1714568645120,`+meta+`}`, 10)))
	require.Equal(t, http.StatusNoContent, post(2, fmt.Sprintf(`{"id":2,"at":1714568645120,"added":5,`+meta+`}`, 20)))

	rec, err := c.HGetAll(ctx, prefix+"shop.orders:1").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"id":1,"at":"2024-05-01T13:04:05.12"}`, rec["d"])
	rec, err = c.HGetAll(ctx, prefix+"shop.orders:2").Result()
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"v": string(cdc.NewVersion(4, 20, 0))}, rec, "a marker: readers miss and read MySQL")

	mrec := httptest.NewRecorder()
	svc.Mux().ServeHTTP(mrec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Contains(t, mrec.Body.String(), `cdc_messages_total{table="shop.orders",outcome="untyped"} 1`)
	assert.Contains(t, mrec.Body.String(), `cdc_messages_total{table="shop.orders",outcome="applied"} 1`)
	require.NoError(t, svc.Close(ctx))
	sums := summaries(t, logs.String())
	require.Len(t, sums, 1)
	assert.Equal(t, 1.0, sums[0]["untyped"])
	assert.Equal(t, 1.0, sums[0]["applied"])
}

// With CACHE_BACKEND=memcached the function applies to memcached; with no
// reject topic a bad message is answered 503, never acknowledged, and
// start-up warns once; memcached down is a 503 too, and back, it applies.
func TestMemcachedBackend(t *testing.T) {
	mc := testmemcache.Start(t)
	logs := &testlog.Buffer{}
	svc, err := function.NewFromEnv(context.Background(), env(map[string]string{"CACHE_BACKEND": "memcached",
		"MEMCACHE_ADDRS": mc.Addr(), "SUMMARY_INTERVAL": "1h"}), function.WithLogOutput(logs))
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Mux())
	defer srv.Close()
	post := func(body []byte) int {
		resp, err := http.Post(srv.URL+"/", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusNoContent, post(envelope(1, nil)))
	assert.Equal(t, http.StatusServiceUnavailable, post(envelope(2, []byte("garbage"))), "nowhere to park: retried")
	assert.Equal(t, http.StatusServiceUnavailable, post(envelope(3, []byte("garbage"))))
	assert.Equal(t, 1, strings.Count(logs.String(), "without REJECT_TOPIC"), "one start-up warning")

	client, err := memcachestore.NewClient([]string{mc.Addr()}, memcachestore.ClientOptions{})
	require.NoError(t, err)
	defer client.Close()
	get := &memcachestore.Op{Key: memcachestore.Key("", "inventory.customers:1")}
	client.Do(context.Background(), []*memcachestore.Op{get})
	require.NoError(t, get.Err)
	rec, err := memcachestore.ParseRecord(get.Value)
	require.NoError(t, err)
	assert.Equal(t, byte(memcachestore.KindRow), rec.Kind)
	assert.Equal(t, `{"id":1,"email":"f@example.com"}`, string(rec.Row))

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), "\ncdc_apply_calls_total 1\n")
	assert.Contains(t, string(body), "\ncdc_cas_races_total 0\n")

	mc.Kill()
	assert.Equal(t, http.StatusServiceUnavailable, post(envelope(4, nil)), "memcached down: retried")
	mc.Restart()
	assert.Equal(t, http.StatusNoContent, post(envelope(4, nil)))
	require.NoError(t, svc.Close(context.Background()))
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// A wrong setting of the cache (here: a database number the server does
// not have, as a wrong password or host would be) is one clear error at
// start naming the setting, not a failed start: the service answers
// pushes 503 and /healthz 503 saying what to fix.
func TestWrongCacheSettingLoggedAtStartAndNotReady(t *testing.T) {
	free := testredis.StartPrivate(t)
	free.Kill() // a port nothing answers on
	for _, tc := range []struct {
		name, setting, want string
		env                 map[string]string
	}{
		{"redis database", "REDIS_URL", "REDIS_URL: the server at " + testredis.SharedAddr + " has no database 99",
			map[string]string{"REDIS_URL": "redis://" + testredis.SharedAddr + "/99"}},
		{"redis password", "REDIS_URL", "REDIS_URL: the server at " + testredis.SharedAddr + " refuses the user or password",
			map[string]string{"REDIS_URL": "redis://nobody:wrong@" + testredis.SharedAddr + "/0"}},
		{"memcached node", "MEMCACHE_ADDRS", "MEMCACHE_ADDRS: ",
			map[string]string{"CACHE_BACKEND": "memcached", "MEMCACHE_ADDRS": free.Addr(), "REJECT_TOPIC": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testlog.Buffer{}
			tc.env["SUMMARY_INTERVAL"] = "1h"
			svc, err := function.NewFromEnv(context.Background(), env(tc.env), function.WithLogOutput(logs))
			require.NoError(t, err, "a cache that does not answer is not a start-up error")
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				svc.Close(ctx)
			})
			lines, err := logs.JSONLines()
			require.NoError(t, err)
			var errorsLogged []map[string]any
			for _, l := range lines {
				if l["severity"] == "ERROR" {
					errorsLogged = append(errorsLogged, l)
				}
			}
			require.Len(t, errorsLogged, 1, "one error at start: %s", logs.String())
			assert.Contains(t, errorsLogged[0]["message"], "cache not answering at start: "+tc.want)
			assert.Equal(t, tc.setting, errorsLogged[0]["setting"])
			assert.NotContains(t, logs.String(), "wrong", "the password is never logged")

			code, body := get(t, svc.Mux(), "/healthz")
			assert.Equal(t, http.StatusServiceUnavailable, code)
			assert.Contains(t, body, tc.want)
			rec := httptest.NewRecorder()
			svc.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(envelope(9, nil))))
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "retried by Pub/Sub, never acknowledged")
		})
	}
}
