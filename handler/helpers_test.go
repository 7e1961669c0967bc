package handler_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/testlog"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/handler"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// rig is a handler on the real decoder and store.
type rig struct {
	h      *handler.Handler
	redis  *redis.Client
	prefix string
	store  *redisstore.Store
	logs   *testlog.Buffer
}

// rigConfig is what rigOpts adjust: the core's config and the handler's options.
type rigConfig struct {
	pipeline.Config
	handler []handler.Option
}

type rigOpt func(*rigConfig)

func withParker(p pipeline.Parker) rigOpt { return func(c *rigConfig) { c.Parker = p } }
func withClock(now func() time.Time) rigOpt {
	return func(c *rigConfig) { c.Now = now }
}
func withBudget(n int64) rigOpt {
	return func(c *rigConfig) { c.handler = append(c.handler, handler.WithMemoryBudget(n)) }
}

// newRig builds a handler over Redis client c with config yaml (may be "");
// keys live under prefix.
func newRig(t testing.TB, c *redis.Client, prefix, yaml string, opts ...rigOpt) *rig {
	t.Helper()
	cfg := cdc.DefaultConfig()
	if yaml != "" {
		var err error
		cfg, err = cdc.ParseConfig([]byte(yaml))
		require.NoError(t, err)
	}
	cfg.Prefix = prefix + cfg.Prefix // keep a config's own prefix under the test's
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	store := redisstore.New(c, cfg, redisstore.Options{Logger: log})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		store.Close(ctx)
	})
	rc := rigConfig{Config: pipeline.Config{
		Decoder: debezium.NewDecoder(cfg),
		Store:   store,
		Parker:  redisstore.NewRedisParker(c, prefix),
		Logger:  log,
	}}
	for _, o := range opts {
		o(&rc)
	}
	return &rig{h: handler.New(pipeline.New(rc.Config), rc.handler...), redis: c, prefix: prefix, store: store, logs: logs}
}

// push is one Pub/Sub message to deliver.
type push struct {
	data        []byte
	attrs       map[string]string
	id          string
	publishTime string
	orderingKey string
}

// wrapped returns the wrapped push envelope of p, as Pub/Sub writes it
// (messageId and publishTime twice).
func (p push) wrapped() []byte {
	msg := map[string]any{
		"data":         base64.StdEncoding.EncodeToString(p.data),
		"messageId":    p.id,
		"message_id":   p.id,
		"publishTime":  p.publishTime,
		"publish_time": p.publishTime,
	}
	if p.attrs != nil {
		msg["attributes"] = p.attrs
	}
	if p.orderingKey != "" {
		msg["orderingKey"] = p.orderingKey
	}
	b, _ := json.Marshal(map[string]any{
		"message":         msg,
		"subscription":    "projects/p/subscriptions/s",
		"deliveryAttempt": 1,
	})
	return b
}

// do serves one request and returns the response.
func (r *rig) do(method string, body []byte, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec
}

func (r *rig) pushWrapped(p push) int { return r.do(http.MethodPost, p.wrapped(), nil).Code }

func (r *rig) pushUnwrapped(p push) int {
	hdr := map[string]string{
		"X-Goog-Pubsub-Message-Id":        p.id,
		"X-Goog-Pubsub-Publish-Time":      p.publishTime,
		"X-Goog-Pubsub-Subscription-Name": "projects/p/subscriptions/s",
		"Content-Type":                    "application/octet-stream",
		"Authorization":                   "Bearer secret-token",
	}
	if p.orderingKey != "" {
		hdr["X-Goog-Pubsub-Ordering-Key"] = p.orderingKey
	}
	for k, v := range p.attrs {
		hdr[k] = v
	}
	return r.do(http.MethodPost, p.data, hdr).Code
}

// record returns the cache hash of a row.
func (r *rig) record(t testing.TB, table, pk string) map[string]string {
	t.Helper()
	m, err := r.redis.HGetAll(context.Background(), r.prefix+table+":"+pk).Result()
	require.NoError(t, err)
	return m
}

// rejected returns the entries of the rejected stream.
func (r *rig) rejected(t testing.TB) []redis.XMessage {
	t.Helper()
	msgs, err := r.redis.XRange(context.Background(), redisstore.RejectedStreamKey(r.prefix), "-", "+").Result()
	require.NoError(t, err)
	return msgs
}

// event returns a Debezium change event (no schema) for inventory.customers.
func event(op string, id int, email string, pos int64, commitMs int64) []byte {
	row := fmt.Sprintf(`{"id":%d,"email":%q}`, id, email)
	before, after := "null", row
	if op == "d" {
		before, after = row, "null"
	}
	return fmt.Appendf(nil, `{"before":%s,"after":%s,"source":{"version":"2.7.0.Final","connector":"mysql",`+
		`"name":"dbserver1","ts_ms":%d,"snapshot":"false","db":"inventory","table":"customers",`+
		`"server_id":223344,"gtid":null,"file":"mysql-bin.000003","pos":%d,"row":0,"thread":7,"query":null},`+
		`"op":%q,"ts_ms":%d,"transaction":null}`, before, after, commitMs, pos, op, commitMs+150)
}

func keyOf(id int) string { return fmt.Sprintf(`{"id":%d}`, id) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// decoderFunc adapts a function to pipeline.Decoder, for the one test that
// needs a change the real decoder never produces.
type decoderFunc func(value, key []byte) (cdc.Change, error)

func (f decoderFunc) Decode(value, key []byte) (cdc.Change, error) { return f(value, key) }

// httptestDo posts a body to h.
func httptestDo(h http.Handler, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	return rec
}

// logLines returns the JSON log lines written so far.
func logLines(t testing.TB, logs *testlog.Buffer) []map[string]any {
	t.Helper()
	lines, err := logs.JSONLines()
	require.NoError(t, err)
	return lines
}
