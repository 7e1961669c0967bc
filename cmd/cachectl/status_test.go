package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

func TestStatusGolden(t *testing.T) {
	bridge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"published":1200,"delivered":1180,"acked":1150,"retried":30,"dead_lettered":2,"duplicates":0,"pending":48}`))
	}))
	defer bridge.Close()
	env := map[string]string{"CACHECTL_NOW": "2024-05-01T13:05:00Z"}

	t.Run("checkpoint", func(t *testing.T) {
		const prefix = "cachectl-test-status-a:"
		rdb := sharedRedis(t, prefix)
		ctx := context.Background()
		require.NoError(t, rdb.HSet(ctx, prefix+"__cdc:checkpoint",
			"dbserver1", string(cdc.NewVersion(7, 4194000, 2)),
			"dbserver1|commit_ms", "1714568695000", // 13:04:55
			"dbserver1|applied_ms", "1714568695250",
			"dbserver1|server_id", "223344",
			"table|inventory.customers", "dbserver1",
			"table|inventory.all_types", "dbserver1",
			"other", string(cdc.NewVersion(12, 4, 0)),
			"table|shop.orders", "other",
		).Err())
		for range 2 {
			require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "__cdc:rejected",
				Values: []any{"reason", "decode: bad", "payload", "x"}}).Err())
		}
		out, errOut, err := runCmd(t, env, "status", "-redis", testRedisURL, "-prefix", prefix, "-bridge", bridge.URL)
		require.NoError(t, err, errOut)
		golden(t, "status", "checkpoint", out)
	})
	t.Run("empty", func(t *testing.T) {
		const prefix = "cachectl-test-status-b:"
		sharedRedis(t, prefix)
		out, errOut, err := runCmd(t, env, "status", "-redis", testRedisURL, "-prefix", prefix)
		require.NoError(t, err, errOut)
		golden(t, "status", "empty", out)
	})
}

func TestStatusErrors(t *testing.T) {
	_, _, err := runCmd(t, map[string]string{"CACHECTL_NOW": "yesterday"}, "status", "-redis", testRedisURL)
	assert.ErrorContains(t, err, "CACHECTL_NOW")
	_, _, err = runCmd(t, nil, "status", "-redis", "http://nope")
	assert.ErrorContains(t, err, "-redis")
	_, _, err = runCmd(t, nil, "status", "-redis", testRedisURL, "-prefix", "cachectl-test-status-c:", "-bridge", "http://127.0.0.1:1/bridge")
	assert.ErrorContains(t, err, "bridge")
}
