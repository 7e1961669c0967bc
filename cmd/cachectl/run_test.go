package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/localrun"
	"github.com/cloudsql-cache/cloudsql-cache/schema"
)

// binary builds a command once for the tests of this package.
type binary struct {
	build func(ctx context.Context, dir string) (string, error)
	once  sync.Once
	path  string
	err   error
}

var function, worker = &binary{build: localrun.BuildFunction}, &binary{build: localrun.BuildWorker}

func (b *binary) built(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "cachectl-test-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path, b.err = b.build(context.Background(), dir)
	})
	require.NoError(t, b.err)
	return b.path
}

// builtFunction builds the push function once for the tests of this package.
func builtFunction(t *testing.T) string { return function.built(t) }

// deliveryFlags are the run flags of each delivery, with its prebuilt binary.
func deliveryFlags(t *testing.T, delivery string) []string {
	if delivery == "pull" || delivery == "kafka" {
		return []string{"-delivery", delivery, "-worker", worker.built(t)}
	}
	return []string{"-delivery", "push", "-function", builtFunction(t)}
}

var deliveries = []string{"push", "pull", "kafka"}

// summaryLine matches the run's summary; the groups are its counts.
var summaryLine = regexp.MustCompile(`(?m)^summary: published=(\d+) applied=(\d+) stale=(\d+) ignored=(\d+) rejected=(\d+) ` +
	`dead_lettered=(\d+) pending=(\d+) lag_p50_ms=\d+\.\d lag_p99_ms=\d+\.\d events_per_sec=\d+ bytes_per_event=(\d+)$`)

// summaryCounts returns published and the sum of every other count.
func summaryCounts(t *testing.T, out string) (published, accounted, pending int) {
	t.Helper()
	m := summaryLine.FindStringSubmatch(out)
	require.NotNil(t, m, "no summary line in:\n%s", out)
	n := make([]int, len(m))
	for i := 1; i < len(m); i++ {
		n[i], _ = strconv.Atoi(m[i])
	}
	return n[1], n[2] + n[3] + n[4] + n[5] + n[6] + n[7], n[7]
}

// summaryBytes returns the summary's bytes_per_event.
func summaryBytes(t *testing.T, out string) int {
	t.Helper()
	m := summaryLine.FindStringSubmatch(out)
	require.NotNil(t, m, "no summary line in:\n%s", out)
	n, _ := strconv.Atoi(m[8])
	return n
}

// TestRunThenVerify runs the local pipeline for 600 changes in each message
// format, through each delivery (push function, pull worker), and verifies
// the cache against the generator's state, by the file and by the state
// file's record of the run; the compact format's messages are billed a small
// fraction of the full format's.
func TestRunThenVerify(t *testing.T) {
	for _, delivery := range deliveries {
		t.Run(delivery, func(t *testing.T) { testRunThenVerify(t, delivery) })
	}
}

func testRunThenVerify(t *testing.T, delivery string) {
	bytes := map[string]int{}
	for _, format := range []string{"full", "compact"} {
		_, prefix := testredis.Shared(t) // a prefix of its own: the package's tests run in other worktrees too
		env := map[string]string{"CACHECTL_STATE_DIR": t.TempDir()}
		expected := filepath.Join(t.TempDir(), "expected.jsonl")
		args := append([]string{"run", "-redis", testRedisURL, "-prefix", prefix, "-events", "600",
			"-keys", "40", "-expected", expected, "-format", format}, deliveryFlags(t, delivery)...)
		out, errOut, err := runCmd(t, env, args...)
		require.NoError(t, err, "%s\n%s", out, errOut)
		published, accounted, pending := summaryCounts(t, out)
		assert.Equal(t, 600, published, format)
		assert.Equal(t, published, accounted, "the summary adds up")
		assert.Zero(t, pending)
		if format == "full" {
			assert.Regexp(t, `summary: published=600 applied=600 `, out, "ordered delivery, no duplicates: every change applies")
		}
		bytes[format] = summaryBytes(t, out)
		assert.Contains(t, out, format+" messages, column registry synced from MySQL database localrun")
		assert.Contains(t, out, map[string]string{"push": "; function http://", "pull": "; worker http://", "kafka": "; worker http://"}[delivery])
		assert.Contains(t, out, "stops after 600 changes; Ctrl-C to stop sooner")
		assert.NotContains(t, out, "\r", "not a terminal: lines, no carriage returns")

		vout, verr, err := runCmd(t, nil, "verify", "-redis", testRedisURL, "-prefix", prefix, "-expected", expected)
		require.NoError(t, err, "%s%s", vout, verr)
		assert.Contains(t, vout, "missing=0 stale=0 resurrected=0", format)

		// Without flags verify finds the finished run, its cache and its file.
		vout, verr, err = runCmd(t, env, "verify")
		require.NoError(t, err, "%s%s", vout, verr)
		verified(t, vout, "(against "+expected+", written at the end of the local run)")
	}
	assert.Positive(t, bytes["compact"])
	assert.Less(t, bytes["compact"]*5, bytes["full"], "compact messages are a fraction of full ones: %v", bytes)
}

// TestRunInterrupted stops a run as Ctrl-C does (its context ends) while
// changes are in flight, through each delivery: publishing stops, the
// backlog drains, the summary adds up with nothing pending, and the run
// succeeds (exit 0).
func TestRunInterrupted(t *testing.T) {
	for _, delivery := range deliveries {
		t.Run(delivery, func(t *testing.T) { testRunInterrupted(t, delivery) })
	}
}

func testRunInterrupted(t *testing.T, delivery string) {
	_, prefix := testredis.Shared(t) // a prefix of its own: the package's tests run in other worktrees too
	stateDir := t.TempDir()
	env := map[string]string{"CACHECTL_STATE_DIR": stateDir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		// -expected of its own: the default is the user's file in the temporary directory.
		args := append([]string{"run", "-redis", testRedisURL, "-prefix", prefix, "-keys", "40", "-drain", "2m",
			"-expected", filepath.Join(t.TempDir(), "expected.jsonl")},
			deliveryFlags(t, delivery)...)
		out, _, err := runCmdCtx(t, ctx, env, args...)
		done <- result{out, err}
	}()
	waitForApplied(t, stateDir, 500)
	if delivery == "kafka" {
		// status finds the run's Kafka fake through the state file.
		sout, serr, err := runCmd(t, env, "status")
		require.NoError(t, err, serr)
		assert.Regexp(t, `(?m)^kafka     group cloudsql-cache: \w+, 1 members, lag \d+ records on 9 partitions$`, sout)
		assert.Regexp(t, `(?m)^  dbserver1\.localrun\.customers/0 +committed (\d+|none) +end \d+ +lag \d+  member kgo$`, sout)
	}
	cancel()
	r := <-done
	require.NoError(t, r.err, r.out)
	assert.Equal(t, 0, exitCode(r.err))
	assert.Contains(t, r.out, "Ctrl-C to stop")
	assert.Contains(t, r.out, "stopping: publishing stopped, draining")
	published, accounted, pending := summaryCounts(t, r.out)
	assert.GreaterOrEqual(t, published, 500)
	assert.Equal(t, published, accounted, "published = applied + stale + ignored + rejected + dead_lettered + pending")
	assert.Zero(t, pending, "the drain delivered everything published")
	assert.Contains(t, r.out, "expected state: ")
	assert.NotContains(t, r.out, "\r")
}

// TestVerifyDuringRun verifies while the run publishes: verify asks the run
// for a consistent cut, so it compares the cache with the generator's state
// at one moment instead of another run's (or no) file. status finds the run
// by itself too.
func TestVerifyDuringRun(t *testing.T) {
	_, prefix := testredis.Shared(t) // a prefix of its own: the package's tests run in other worktrees too
	stateDir := t.TempDir()
	env := map[string]string{"CACHECTL_STATE_DIR": stateDir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// -expected "": nothing but the cut can make verify pass.
		_, _, err := runCmdCtx(t, ctx, env, "run", "-redis", testRedisURL, "-prefix", prefix, "-keys", "40",
			"-expected", "", "-drain", "2m", "-function", builtFunction(t))
		done <- err
	}()
	waitForApplied(t, stateDir, 300)
	for range 2 {
		vout, verr, err := runCmd(t, env, "verify")
		require.NoError(t, err, "%s%s", vout, verr)
		verified(t, vout, "(against a consistent cut of the running local run)")
	}
	sout, serr, err := runCmd(t, env, "status")
	require.NoError(t, err, serr)
	assert.Contains(t, sout, `prefix "`+prefix+`"`, "status takes the running pipeline's prefix")
	assert.Regexp(t, `(?m)^bridge    backlog \d+: published=\d+ `, sout, "and its backlog")
	assert.Contains(t, sout, "server    dbserver1", "and the checkpoint under it")
	cancel()
	require.NoError(t, <-done)

	_, _, err = runCmd(t, env, "verify")
	assert.ErrorContains(t, err, "ended without writing its expected state")
}

// verified asserts verify's line: every key checked is ok, against source.
func verified(t *testing.T, out, source string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^verify: checked=(\d+) ok=(\d+) missing=0 stale=0 resurrected=0 (.*)$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.Equal(t, m[1], m[2], out)
	assert.NotEqual(t, "0", m[1], out)
	assert.Equal(t, source, m[3])
}

// waitForApplied waits until the run recorded in stateDir has acknowledged
// n messages, reading its control endpoint.
func waitForApplied(t *testing.T, stateDir string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, ok, err := localrun.ReadState(localrun.StatePath(stateDir))
		if err != nil || !ok || st.Control == "" {
			return false
		}
		stats, err := bridgeStats(context.Background(), st.Control+"/bridge")
		return err == nil && stats.Acked >= n
	}, 3*time.Minute, 20*time.Millisecond)
}

func TestRunRejectsBadFlags(t *testing.T) {
	_, _, err := runCmd(t, nil, "run", "-events", "-1")
	assert.ErrorContains(t, err, "-events")
	assert.Equal(t, 2, exitCode(err))
	_, _, err = runCmd(t, nil, "run", "extra")
	assert.ErrorContains(t, err, "unexpected arguments")
	assert.Equal(t, 2, exitCode(err))
	_, _, err = runCmd(t, nil, "run", "-format", "avro")
	assert.ErrorContains(t, err, "avro")
	_, _, err = runCmd(t, nil, "run", "-delivery", "carrier-pigeon")
	assert.ErrorContains(t, err, "carrier-pigeon")
	assert.Equal(t, 2, exitCode(err))
	_, _, err = runCmd(t, nil, "run", "-redis", "redis://127.0.0.1:1/0", "-events", "1")
	assert.ErrorContains(t, err, "services.sh")
	assert.Equal(t, 1, exitCode(err))
}

// TestRunTypesFromRegistryOrConfig: by default a run creates its tables in
// MariaDB and syncs the column registry from them (the compact messages are
// keyed and typed by it); with -mysql "" the cache config carries key: and
// types: instead; an unreachable MySQL is an error that names the registry.
func TestRunTypesFromRegistryOrConfig(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	args := append([]string{"run", "-redis", testRedisURL, "-prefix", prefix, "-events", "200", "-keys", "20", "-expected", ""},
		deliveryFlags(t, "push")...)
	out, errOut, err := runCmd(t, map[string]string{"CACHECTL_STATE_DIR": t.TempDir()}, args...)
	require.NoError(t, err, "%s\n%s", out, errOut)
	assert.Contains(t, out, "compact messages, column registry synced from MySQL database localrun")
	_, _, pending := summaryCounts(t, out)
	assert.Zero(t, pending)
	assert.Regexp(t, ` rejected=0 `, out)
	reg, bad, err := schema.Load(context.Background(), rdb, prefix)
	require.NoError(t, err)
	assert.Empty(t, bad)
	require.Contains(t, reg.Tables, "localrun.order_items")
	assert.Equal(t, []string{"order_id", "line"}, reg.Tables["localrun.order_items"].Key)
	assert.Len(t, reg.Tables, 3)

	_, prefix = testredis.Shared(t)
	out, errOut, err = runCmd(t, map[string]string{"CACHECTL_STATE_DIR": t.TempDir()},
		append([]string{"run", "-redis", testRedisURL, "-prefix", prefix, "-events", "200", "-keys", "20", "-expected", "", "-mysql", ""},
			deliveryFlags(t, "push")...)...)
	require.NoError(t, err, "%s\n%s", out, errOut)
	assert.Contains(t, out, "compact messages, key: and types: in the cache config")
	assert.Regexp(t, ` rejected=0 `, out)
	n, err := rdb.Exists(context.Background(), prefix+"__cdc:schema").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "no registry without -mysql")

	_, _, err = runCmd(t, nil, "run", "-redis", testRedisURL, "-prefix", prefix, "-events", "1", "-mysql", "root@tcp(127.0.0.1:1)/")
	assert.ErrorContains(t, err, "column registry: mysql")
}
