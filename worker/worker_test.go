package worker_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/internal/pubsubfake"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testmemcache"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/worker"
)

// /healthz is 503 while the queue is not connected or the cache does not
// answer, and says which.
func TestHealthzNeedsCacheAndQueue(t *testing.T) {
	fake, err := pubsubfake.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { fake.Close() })
	pr := testredis.StartPrivate(t)
	env := map[string]string{"DELIVERY": "pull", "PORT": "0", "REDIS_URL": "redis://" + pr.Addr() + "/0",
		"PUBSUB_EMULATOR_HOST": fake.Addr, "PUBSUB_SUBSCRIPTIONS": "projects/p/subscriptions/s"}
	cfg, err := worker.FromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	w, err := worker.New(context.Background(), cfg, io.Discard)
	require.NoError(t, err)
	// Run is never called: the stream is not up.
	health := func() (int, string) {
		rec := httptest.NewRecorder()
		w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code, rec.Body.String()
	}
	code, body := health()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "queue not connected")
	pr.Kill()
	code, body = health()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "cache not answering")
}

// A worker that cannot be built returns the error (New closed what it had
// opened), not a panic: the port here is taken.
func TestNewFailsCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	pr := testredis.StartPrivate(t)
	env := map[string]string{"DELIVERY": "kafka", "PORT": port, "REDIS_URL": "redis://" + pr.Addr() + "/0",
		"KAFKA_BROKERS": "127.0.0.1:1", "KAFKA_TOPICS": "t"}
	cfg, err := worker.FromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	_, err = worker.New(context.Background(), cfg, io.Discard)
	assert.Error(t, err)
}

// With CACHE_BACKEND=memcached, /healthz pings the memcached nodes: a node
// that does not answer is a 503 naming MEMCACHE_ADDRS, and one that answers
// again clears it.
func TestHealthzPingsMemcached(t *testing.T) {
	fake, err := pubsubfake.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { fake.Close() })
	mc := testmemcache.Start(t)
	env := map[string]string{"DELIVERY": "pull", "PORT": "0", "CACHE_BACKEND": "memcached", "MEMCACHE_ADDRS": mc.Addr(),
		"PUBSUB_EMULATOR_HOST": fake.Addr, "PUBSUB_SUBSCRIPTIONS": "projects/p/subscriptions/s"}
	cfg, err := worker.FromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	w, err := worker.New(context.Background(), cfg, io.Discard)
	require.NoError(t, err)
	health := func() (int, string) {
		rec := httptest.NewRecorder()
		w.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code, rec.Body.String()
	}
	code, body := health()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "queue not connected", "memcached answers: only the queue is missing")
	mc.Kill()
	code, body = health()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "cache not answering: MEMCACHE_ADDRS: ")
	assert.Contains(t, body, mc.Addr())
	mc.Restart()
	_, body = health()
	assert.NotContains(t, body, "cache not answering")
}
