package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/handler"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// pushFunction is the real push handler on the shared Redis under prefix.
func pushFunction(t *testing.T, rdb *redis.Client, prefix string) *httptest.Server {
	t.Helper()
	cfg := cdc.DefaultConfig()
	cfg.Prefix = prefix
	store := redisstore.New(rdb, cfg, redisstore.Options{})
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	srv := httptest.NewServer(handler.New(pipeline.New(pipeline.Config{
		Decoder: debezium.NewDecoder(cfg), Store: store, Parker: redisstore.NewRedisParker(rdb, prefix),
	})))
	t.Cleanup(srv.Close)
	return srv
}

func TestReplay(t *testing.T) {
	const prefix = "cachectl-test-replay:"
	rdb := sharedRedis(t, prefix)
	ctx := context.Background()
	stream := redisstore.RejectedStreamKey(prefix)
	gen := changegen.New(changegen.Options{Seed: 3, Keys: 5, Schemas: true, Ordering: true,
		Now: func() time.Time { return time.Date(2024, 5, 1, 13, 4, 5, 0, time.UTC) }})
	good := gen.Next(1)[0]
	park := func(payload, orderingKey, id string) {
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{
			"reason", "store unavailable at the time", "payload", payload, "attributes", `{"a":"1"}`,
			"message_id", id, "publish_time", "2024-05-01T13:04:06Z", "ordering_key", orderingKey,
			"rejected_at", "2024-05-01T13:04:07Z"}}).Err())
	}
	park(string(good.Data), good.OrderingKey, "m1")
	park("\x00 still garbage", "", "m2")

	t.Run("function down: nothing is deleted", func(t *testing.T) {
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer down.Close()
		out, _, err := runCmd(t, nil, "replay", "-redis", testRedisURL, "-prefix", prefix, "-url", down.URL)
		assert.ErrorContains(t, err, "503")
		golden(t, "replay", "function-down", out)
		n, err := rdb.XLen(ctx, stream).Result()
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
	})
	t.Run("replayed", func(t *testing.T) {
		fn := pushFunction(t, rdb, prefix)
		out, errOut, err := runCmd(t, nil, "replay", "-redis", testRedisURL, "-prefix", prefix, "-url", fn.URL)
		require.NoError(t, err, errOut)
		golden(t, "replay", "replayed", out)
		row, err := rdb.HGet(ctx, prefix+good.Key, "d").Result()
		require.NoError(t, err, "the good message was applied")
		exp := gen.Expected()
		assert.JSONEq(t, string(exp[0].Row), row)
		entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
		require.NoError(t, err)
		require.Len(t, entries, 1, "only the re-parked message is left")
		assert.Equal(t, "m2", entries[0].Values["message_id"])
		assert.Equal(t, `{"a":"1"}`, entries[0].Values["attributes"], "attributes survive the round trip")
	})
	t.Run("nothing parked", func(t *testing.T) {
		out, _, err := runCmd(t, nil, "replay", "-redis", testRedisURL, "-prefix", prefix+"none:", "-url", "http://127.0.0.1:1/")
		require.NoError(t, err)
		golden(t, "replay", "empty", out)
	})
	_, _, err := runCmd(t, nil, "replay", "-redis", testRedisURL)
	assert.ErrorContains(t, err, "-url is required")
}
