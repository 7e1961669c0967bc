package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/localrun"
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

// After a local run has ended, a bare `cachectl status` shows that run's
// cache (found through its state file), saying plainly that no run is
// active and where the last one wrote: not prefix "" in DB 0.
func TestStatusAfterFinishedLocalRun(t *testing.T) {
	const prefix = "cachectl-test-status-last:"
	rdb := sharedRedis(t, prefix)
	ctx := context.Background()
	require.NoError(t, rdb.HSet(ctx, prefix+"__cdc:checkpoint",
		"dbserver1", string(cdc.NewVersion(3, 5120, 0)),
		"dbserver1|commit_ms", "1714568400000", // 13:00:00
		"dbserver1|applied_ms", "1714568400120",
		"table|inventory.customers", "dbserver1",
	).Err())
	dir := t.TempDir()
	require.NoError(t, localrun.WriteState(localrun.StatePath(dir), localrun.State{
		PID: os.Getpid(), Redis: testRedisURL, Prefix: prefix, Control: "http://127.0.0.1:1",
		Started:  time.Date(2024, 5, 1, 12, 58, 0, 0, time.UTC),
		Ended:    time.Date(2024, 5, 1, 13, 0, 1, 0, time.UTC),
		Expected: "/tmp/cloudsql-cache-expected.json",
	}))
	env := map[string]string{"CACHECTL_NOW": "2024-05-01T13:05:00Z", "CACHECTL_STATE_DIR": dir}
	out, errOut, err := runCmd(t, env, "status")
	require.NoError(t, err, errOut)
	golden(t, "status", "finished-local-run", out)

	// -prefix (or $CACHE_PREFIX) chooses another cache: no word of the run.
	const other = "cachectl-test-status-other:"
	sharedRedis(t, other)
	out, errOut, err = runCmd(t, env, "status", "-redis", testRedisURL, "-prefix", other)
	require.NoError(t, err, errOut)
	assert.NotContains(t, out, "local run")
	assert.Contains(t, out, `prefix "`+other+`"`)
}

func TestStatusErrors(t *testing.T) {
	_, _, err := runCmd(t, map[string]string{"CACHECTL_NOW": "yesterday"}, "status", "-redis", testRedisURL)
	assert.ErrorContains(t, err, "CACHECTL_NOW")
	_, _, err = runCmd(t, nil, "status", "-redis", "http://nope")
	assert.ErrorContains(t, err, "-redis")
	_, _, err = runCmd(t, nil, "status", "-redis", testRedisURL, "-prefix", "cachectl-test-status-c:", "-bridge", "http://127.0.0.1:1/bridge")
	assert.ErrorContains(t, err, "bridge")
}

// TestStatusSubscriptionBacklog reads a cloud subscription's backlog from
// Cloud Monitoring's timeSeries.list (an HTTP server answering as the API
// does: no Cloud Monitoring runs here).
func TestStatusSubscriptionBacklog(t *testing.T) {
	var filters []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v3/projects/shop-prod/timeSeries" {
			http.NotFound(w, r)
			return
		}
		f := r.URL.Query().Get("filter")
		filters = append(filters, f)
		value := `{"int64Value":"1234"}`
		if strings.Contains(f, "oldest_unacked_message_age") {
			value = `{"int64Value":"42"}`
		}
		fmt.Fprintf(w, `{"timeSeries":[{"points":[
			{"interval":{"startTime":"2024-05-01T13:04:00Z","endTime":"2024-05-01T13:04:00Z"},"value":%s},
			{"interval":{"startTime":"2024-05-01T13:03:00Z","endTime":"2024-05-01T13:03:00Z"},"value":{"int64Value":"1"}}]}]}`, value)
	}))
	defer api.Close()
	const prefix = "cachectl-test-status-sub:"
	sharedRedis(t, prefix)
	env := map[string]string{"CACHECTL_NOW": "2024-05-01T13:05:00Z", "CACHECTL_MONITORING_ENDPOINT": api.URL}
	out, errOut, err := runCmd(t, env, "status", "-redis", testRedisURL, "-prefix", prefix,
		"-subscription", "projects/shop-prod/subscriptions/cdc-push.cdc.inventory.customers")
	require.NoError(t, err, errOut)
	golden(t, "status", "subscription", out)
	assert.Equal(t, []string{
		`metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages" AND resource.labels.subscription_id="cdc-push.cdc.inventory.customers"`,
		`metric.type="pubsub.googleapis.com/subscription/oldest_unacked_message_age" AND resource.labels.subscription_id="cdc-push.cdc.inventory.customers"`,
	}, filters)

	_, _, err = runCmd(t, env, "status", "-redis", testRedisURL, "-prefix", prefix, "-subscription", "cdc-push.x")
	assert.ErrorContains(t, err, "is not projects/PROJECT/subscriptions/NAME")
	assert.Equal(t, 2, exitCode(err))
	_, _, err = runCmd(t, env, "status", "-redis", testRedisURL, "-prefix", prefix, "-subscription", "projects/other/subscriptions/s")
	assert.ErrorContains(t, err, "num_undelivered_messages of projects/other/subscriptions/s")
}
