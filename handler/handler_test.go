package handler_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/handler"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

const publishTime = "2024-05-01T13:04:05.123Z"

func TestWrappedAppliedStaleDeletedIgnored(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "")
	now := time.Now().UnixMilli()

	create := push{data: event("c", 1004, "a@example.com", 154, now), id: "1", publishTime: publishTime, orderingKey: keyOf(1004)}
	require.Equal(t, http.StatusNoContent, r.pushWrapped(create))
	rec := r.record(t, "inventory.customers", "1004")
	assert.Equal(t, `{"id":1004,"email":"a@example.com"}`, rec["d"])
	assert.Equal(t, string(cdc.NewVersion(3, 154, 0)), rec["v"])

	// The same delivery again is a duplicate: acknowledged, counted stale, record unchanged.
	require.Equal(t, http.StatusNoContent, r.pushWrapped(create))
	assert.Equal(t, rec, r.record(t, "inventory.customers", "1004"))

	del := push{data: event("d", 1004, "a@example.com", 300, now), id: "2", publishTime: publishTime, orderingKey: keyOf(1004)}
	require.Equal(t, http.StatusNoContent, r.pushWrapped(del))
	rec = r.record(t, "inventory.customers", "1004")
	assert.Equal(t, "1", rec["t"])
	assert.NotContains(t, rec, "d")

	heartbeat := push{data: []byte(`{"ts_ms":1714568645000}`), id: "3", publishTime: publishTime,
		orderingKey: `{"serverName":"dbserver1"}`}
	require.Equal(t, http.StatusNoContent, r.pushWrapped(heartbeat))

	tables := r.h.Metrics().Tables()
	cust := tables["inventory.customers"]
	assert.Equal(t, uint64(1), cust.Outcomes[cdc.OutcomeApplied])
	assert.Equal(t, uint64(1), cust.Outcomes[cdc.OutcomeStale])
	assert.Equal(t, uint64(1), cust.Outcomes[cdc.OutcomeDeleted])
	assert.Equal(t, uint64(1), tables["unknown"].Outcomes[cdc.OutcomeIgnored], "heartbeats have no table")
	assert.Equal(t, uint64(3), cust.Apply.Count)
	assert.Equal(t, uint64(3), cust.CommitLag.Count)
	assert.Equal(t, uint64(3), cust.Queue.Count)
	assert.Empty(t, logLines(t, r.logs), "no log line per applied change")
	assert.Empty(t, r.rejected(t))
}

func TestUnwrappedDelivery(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "")
	p := push{data: event("u", 7, "u@example.com", 99, time.Now().UnixMilli()), id: "42",
		publishTime: publishTime, orderingKey: keyOf(7)}
	require.Equal(t, http.StatusNoContent, r.pushUnwrapped(p))
	assert.Equal(t, `{"id":7,"email":"u@example.com"}`, r.record(t, "inventory.customers", "7")["d"])

	// Unwrapped without metadata headers: the body alone is the message;
	// with no ordering key there is no Debezium key, so it is parked.
	p.data = event("u", 8, "x@example.com", 100, time.Now().UnixMilli())
	require.Equal(t, http.StatusNoContent, r.do(http.MethodPost, p.data, nil).Code)
	assert.Empty(t, r.record(t, "inventory.customers", "8"))
	rej := r.rejected(t)
	require.Len(t, rej, 1)
	assert.Equal(t, string(p.data), rej[0].Values["payload"])
	assert.Contains(t, rej[0].Values["reason"], "key")
}

func TestMalformedParkedInRedisStream(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "")
	before := time.Now()

	bad := push{data: []byte(`{"op":"c","after":`), attrs: map[string]string{"table": "inventory.customers"},
		id: "m-1", publishTime: publishTime, orderingKey: keyOf(1)}
	require.Equal(t, http.StatusNoContent, r.pushWrapped(bad))

	unwrapped := push{data: []byte("not json at all"), attrs: map[string]string{"X-Origin": "test"}, id: "m-2", publishTime: publishTime}
	require.Equal(t, http.StatusNoContent, r.pushUnwrapped(unwrapped))

	// An envelope whose data is not base64: the whole body is parked.
	envelope := []byte(`{"message":{"data":"!!notbase64!!","messageId":"m-3"},"subscription":"s"}`)
	require.Equal(t, http.StatusNoContent, r.do(http.MethodPost, envelope, nil).Code)

	rej := r.rejected(t)
	require.Len(t, rej, 3)
	first := rej[0].Values
	assert.Contains(t, first["reason"], "decode: ")
	assert.Equal(t, string(bad.data), first["payload"])
	assert.JSONEq(t, `{"table":"inventory.customers"}`, first["attributes"].(string))
	assert.Equal(t, "m-1", first["message_id"])
	assert.Equal(t, publishTime, first["publish_time"])
	assert.Equal(t, keyOf(1), first["ordering_key"])
	at, err := time.Parse(time.RFC3339Nano, first["rejected_at"].(string))
	require.NoError(t, err)
	assert.WithinRange(t, at, before.Add(-time.Second), time.Now().Add(time.Second))

	second := rej[1].Values
	assert.Equal(t, "not json at all", second["payload"])
	assert.Equal(t, "m-2", second["message_id"])
	var attrs map[string]string
	require.NoError(t, json.Unmarshal([]byte(second["attributes"].(string)), &attrs))
	assert.Equal(t, map[string]string{"x-origin": "test"}, attrs, "transport headers (Authorization!) are not attributes")

	third := rej[2].Values
	assert.Contains(t, third["reason"], "push envelope")
	assert.Equal(t, string(envelope), third["payload"])

	assert.Equal(t, uint64(3), r.h.Metrics().Total().Outcomes[cdc.OutcomeRejected])
	lines := logLines(t, r.logs)
	require.Len(t, lines, 3, "one log line per reject")
	assert.Equal(t, "cdc message rejected", lines[0]["msg"])
	assert.Equal(t, "m-1", lines[0]["message_id"])
}

func TestParkFailureIs5xx(t *testing.T) {
	c, prefix := testredis.Shared(t)
	// A parker whose Redis is gone: nothing listens on a closed private server.
	pr := testredis.StartPrivate(t)
	dead := redis.NewClient(&redis.Options{Addr: pr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	pr.Kill()
	r := newRig(t, c, prefix, "", withParker(redisstore.NewRedisParker(dead, "x:")))

	code := r.pushWrapped(push{data: []byte("garbage"), id: "p-1", publishTime: publishTime})
	assert.Equal(t, http.StatusServiceUnavailable, code)
	tot := r.h.Metrics().Total()
	assert.Equal(t, uint64(1), tot.Outcomes[cdc.OutcomeFailed])
	assert.Zero(t, tot.Outcomes[cdc.OutcomeRejected])
	lines := logLines(t, r.logs)
	require.Len(t, lines, 1)
	assert.Equal(t, "cdc park failed", lines[0]["msg"])
}

func TestMethodNotAllowed(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "")
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		rec := r.do(m, nil, nil)
		assert.Equal(t, http.StatusMethodNotAllowed, rec.Code, m)
		assert.Equal(t, http.MethodPost, rec.Header().Get("Allow"))
	}
}

func TestTooLarge(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "")
	big := bytes.Repeat([]byte("x"), handler.MaxMessageBytes+1)

	t.Run("unwrapped", func(t *testing.T) {
		// The body is the message.
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.pushUnwrapped(push{data: big, id: "big-1"}))
	})
	t.Run("wrapped", func(t *testing.T) {
		// The envelope (base64) fits the body limit, the decoded data does
		// not. Built by hand: json.Marshal of 14 MB is slow under -race.
		env := slices.Concat([]byte(`{"message":{"messageId":"big-2","data":"`),
			[]byte(base64.StdEncoding.EncodeToString(big)), []byte(`"},"subscription":"s"}`))
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.do(http.MethodPost, env, nil).Code)
	})
	t.Run("over any envelope", func(t *testing.T) {
		// Cut off while reading.
		huge := bytes.Repeat([]byte("y"), 16<<20)
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.do(http.MethodPost, huge, nil).Code)
	})
	t.Run("at the limit", func(t *testing.T) {
		// Not too large: it reaches the decoder, and is parked by a stream
		// that takes entries this large.
		roomy := newRig(t, c, prefix, "", withParker(redisstore.NewRedisParkerLimits(c, prefix,
			redisstore.ParkLimits{MaxEntryBytes: 2 * handler.MaxMessageBytes})))
		atLimit := big[:handler.MaxMessageBytes]
		assert.Equal(t, http.StatusNoContent, roomy.pushUnwrapped(push{data: atLimit, id: "ok-1"}))
		require.Len(t, roomy.rejected(t), 1)
	})
}

func TestStoreErrorIs503AndRecovers(t *testing.T) {
	pr := testredis.StartPrivate(t)
	c := redis.NewClient(&redis.Options{Addr: pr.Addr(), DialTimeout: time.Second, MaxRetries: 1})
	t.Cleanup(func() { c.Close() })
	r := newRig(t, c, "private:", "")
	now := time.Now().UnixMilli()

	require.Equal(t, http.StatusNoContent, r.pushWrapped(push{data: event("c", 1, "one@example.com", 10, now),
		id: "1", publishTime: publishTime, orderingKey: keyOf(1)}))

	pr.Kill()
	second := push{data: event("c", 2, "two@example.com", 20, now), id: "2", publishTime: publishTime, orderingKey: keyOf(2)}
	require.Equal(t, http.StatusServiceUnavailable, r.pushWrapped(second))
	assert.Equal(t, uint64(1), r.h.Metrics().Tables()["inventory.customers"].Outcomes[cdc.OutcomeFailed])
	lines := logLines(t, r.logs)
	require.NotEmpty(t, lines)
	assert.Equal(t, "cdc apply failed", lines[len(lines)-1]["msg"])

	// Redis comes back; Pub/Sub redelivers until the push is acknowledged.
	pr.Restart()
	waitFor(t, 10*time.Second, "the redelivery is applied", func() bool {
		return r.pushWrapped(second) == http.StatusNoContent
	})
	assert.Equal(t, `{"id":2,"email":"two@example.com"}`, r.record(t, "inventory.customers", "2")["d"])
}

func TestPermanentStoreErrorIsParked(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "")
	// Passes the decoder (which checks nothing about TTLs) but an upsert
	// without a row can never apply: the store says ErrInvalid.
	failing := handler.New(pipeline.New(pipeline.Config{
		Decoder: decoderFunc(func([]byte, []byte) (cdc.Change, error) {
			return cdc.Change{Op: cdc.OpCreate, Table: "inventory.customers", Key: r.prefix + "inventory.customers:9",
				Version: cdc.NewVersion(1, 1, 0)}, nil
		}),
		Store:  r.store,
		Parker: redisstore.NewRedisParker(c, r.prefix),
	}))
	rec := httptestDo(failing, push{data: []byte(`{}`), id: "perm-1", publishTime: publishTime}.wrapped())
	assert.Equal(t, http.StatusNoContent, rec.Code)
	rej := r.rejected(t)
	require.Len(t, rej, 1)
	assert.Contains(t, rej[0].Values["reason"], "store: ")
}

func TestLagsAndSummary(t *testing.T) {
	c, prefix := testredis.Shared(t)
	base := time.Date(2024, 5, 1, 13, 5, 0, 0, time.UTC)
	var tick atomic.Int64
	clock := func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Millisecond) }
	r := newRig(t, c, prefix, "", withClock(clock))

	commit := base.Add(-2 * time.Second).UnixMilli() // commit lag ~2s, pipeline lag ~1.85s
	for i := range 10 {
		p := push{data: event("c", 100+i, "s@example.com", int64(1000+i), commit), id: "s",
			publishTime: base.Add(-500 * time.Millisecond).Format(time.RFC3339Nano), orderingKey: keyOf(100 + i)}
		require.Equal(t, http.StatusNoContent, r.pushWrapped(p))
	}
	require.Equal(t, http.StatusNoContent, r.pushWrapped(push{data: []byte("junk"), id: "j", publishTime: publishTime}))

	s := pipeline.NewSummarizer(r.h.Metrics())
	sums := s.Next()
	require.Len(t, sums, 2)
	cust := sums[0]
	assert.Equal(t, "inventory.customers", cust.Table)
	assert.Equal(t, pipeline.SummaryMessage, cust.Message)
	assert.Equal(t, uint64(10), cust.Applied)
	assert.InEpsilon(t, 2000, cust.CommitLagMsP50, 0.2)
	assert.InEpsilon(t, 1850, cust.PipelineLagMsP99, 0.2)
	assert.InEpsilon(t, 500, cust.QueueMsP99, 0.2)
	assert.InDelta(t, 1, cust.ApplyMsP50, 0.5, "the test clock advances 1ms per reading")
	assert.Equal(t, "unknown", sums[1].Table)
	assert.Equal(t, uint64(1), sums[1].Rejected)

	// Nothing new: no entries. Then one more change: only it is counted.
	assert.Empty(t, s.Next())
	require.Equal(t, http.StatusNoContent, r.pushWrapped(push{data: event("c", 200, "n@example.com", 5000, commit),
		id: "n", publishTime: publishTime, orderingKey: keyOf(200)}))
	sums = s.Next()
	require.Len(t, sums, 1)
	assert.Equal(t, uint64(1), sums[0].Applied)

	// The summary's JSON field names are the contract for log-based metrics.
	b, err := json.Marshal(sums[0])
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(b, &fields))
	for _, f := range []string{"message", "table", "applied", "deleted", "stale", "ignored", "rejected", "failed", "untyped",
		"commit_lag_ms_p50", "commit_lag_ms_p99", "pipeline_lag_ms_p50", "pipeline_lag_ms_p99", "queue_ms_p99",
		"apply_ms_p50", "apply_ms_p99"} {
		assert.Contains(t, fields, f)
	}
	assert.Len(t, fields, 16)
}

func TestPrometheusExposition(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "")
	require.Equal(t, http.StatusNoContent, r.pushWrapped(push{data: event("c", 1, "p@example.com", 1, time.Now().UnixMilli()),
		id: "1", publishTime: time.Now().Format(time.RFC3339Nano), orderingKey: keyOf(1)}))
	var b bytes.Buffer
	require.NoError(t, r.h.Metrics().WritePrometheus(&b))
	out := b.String()
	assert.Contains(t, out, "# TYPE cdc_messages_total counter\n")
	assert.Contains(t, out, `cdc_messages_total{table="inventory.customers",outcome="applied"} 1`+"\n")
	assert.Contains(t, out, `cdc_messages_total{table="inventory.customers",outcome="stale"} 0`+"\n")
	for _, fam := range []string{"cdc_commit_lag_seconds", "cdc_pipeline_lag_seconds", "cdc_queue_seconds", "cdc_apply_seconds"} {
		assert.Contains(t, out, "# TYPE "+fam+" histogram\n")
		assert.Contains(t, out, fam+`_count{table="inventory.customers"} 1`+"\n")
		assert.Contains(t, out, fam+`_bucket{table="inventory.customers",le="+Inf"} 1`+"\n")
	}
}

// A malformed message too large for the rejected stream (which shares the
// cache's no-eviction Redis) is answered 503, so Pub/Sub retries it and the
// subscription's dead-letter topic keeps it; nothing is parked or dropped.
func TestTooLargeToParkIs503(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "")
	big := bytes.Repeat([]byte("z"), 1<<20+1) // over the 1 MiB per-entry bound
	assert.Equal(t, http.StatusServiceUnavailable, r.pushUnwrapped(push{data: big, id: "huge-bad"}))
	assert.Empty(t, r.rejected(t))
	tot := r.h.Metrics().Total()
	assert.Equal(t, uint64(1), tot.Outcomes[cdc.OutcomeFailed])
	assert.Zero(t, tot.Outcomes[cdc.OutcomeRejected])
	lines := logLines(t, r.logs)
	require.Len(t, lines, 1)
	assert.Equal(t, "cdc park failed", lines[0]["msg"])
	assert.Contains(t, lines[0]["err"], "too large")
}

// TestEnvelopeOnlyByItsShape posts flattened rows without metadata headers
// (an unwrapped push whose body is the row) from a table whose columns are
// named like the push envelope's members. Each is a row and must be
// applied: a `message` column, string or object (a GEOMETRY is a struct),
// or a `subscription` column does not make the body an envelope.
func TestEnvelopeOnlyByItsShape(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "tables:\n  shop.notes:\n    key: [id]\n")
	meta := `"__op":"c","__source_db":"shop","__source_table":"notes","__source_file":"mysql-bin.000004",` +
		`"__source_pos":%d,"__source_row":0,"__deleted":"false"`
	for i, row := range []string{
		`{"id":1,"message":"hello"`,
		`{"id":2,"message":{"wkb":"AQEAAAAAAAAAAADwPwAAAAAAAABA","srid":4326}`,
		`{"id":3,"message":{"wkb":"AQEAAAAAAAAAAADwPwAAAAAAAABA","srid":0},"subscription":"gold"`,
		`{"id":4,"subscription":"gold","message":"x"`,
		`{"id":5,"message":null,"subscription":null`,
	} {
		body := fmt.Sprintf(row+","+meta+"}", 100+i)
		require.Equal(t, http.StatusNoContent, r.do(http.MethodPost, []byte(body), nil).Code, body)
		got := r.record(t, "shop.notes", strconv.Itoa(i+1))["d"]
		require.NotEmpty(t, got, "row %d not applied: %s", i+1, body)
		assert.JSONEq(t, row+"}", got)
	}
	assert.Empty(t, r.rejected(t), "nothing parked")
	assert.Equal(t, uint64(5), r.h.Metrics().Total().Outcomes[cdc.OutcomeApplied])
}

// A message rejected after its table was read (here: no key, no
// registry, no key: config) is counted and logged under that table; only
// what names no table is "unknown".
func TestRejectedCountedUnderItsTable(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r := newRig(t, c, prefix, "")
	noKey := push{data: event("c", 5, "k@example.com", 10, time.Now().UnixMilli()), id: "nk-1", publishTime: publishTime}
	require.Equal(t, http.StatusNoContent, r.pushWrapped(noKey))
	garbage := push{data: []byte("not json"), id: "nk-2", publishTime: publishTime}
	require.Equal(t, http.StatusNoContent, r.pushWrapped(garbage))

	tables := r.h.Metrics().Tables()
	assert.Equal(t, uint64(1), tables["inventory.customers"].Outcomes[cdc.OutcomeRejected])
	assert.Equal(t, uint64(1), tables["unknown"].Outcomes[cdc.OutcomeRejected])
	var logged []string
	for _, l := range logLines(t, r.logs) {
		if l["msg"] == "cdc message rejected" {
			logged = append(logged, fmt.Sprint(l["message_id"], "=", l["table"]))
		}
	}
	assert.Equal(t, []string{"nk-1=inventory.customers", "nk-2="}, logged)
}
