package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/testlog"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

var (
	listening      = regexp.MustCompile(`serving the push function on (http://\S+)/`)
	pprofListening = regexp.MustCompile(`serving net/http/pprof on (http://\S+)/debug/pprof/`)
)

// running is run in a goroutine, serving until stop.
type running struct {
	stdout, stderr *testlog.Buffer
	cancel         context.CancelFunc
	done           chan error
}

// startRun starts run with env and waits for the line saying where it
// serves the push function; it returns that base URL.
func startRun(t *testing.T, env map[string]string) (*running, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, nil, func(k string) string { return env[k] }, r.stdout, r.stderr) }()
	t.Cleanup(func() { r.stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listening.FindStringSubmatch(r.stderr.String()); m != nil {
			return r, m[1]
		}
		select {
		case err := <-r.done:
			r.done <- err // for stop
			t.Fatalf("run ended early: %v; stderr: %s", err, r.stderr.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "no listening line; stderr: %s", r.stderr.String())
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// stop cancels run's context (what SIGINT/SIGTERM does in main) and returns
// run's error; later calls return nil.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
		return nil
	}
}

// get returns the status and body of a GET of url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestRunServesOnePushAndStops(t *testing.T) {
	c, prefix := testredis.Shared(t)
	r, base := startRun(t, map[string]string{"PORT": "0", "CACHE_PREFIX": prefix})

	now := time.Now().UnixMilli()
	data := fmt.Sprintf(`{"before":null,"after":{"id":3,"name":"x"},"source":{"name":"s","ts_ms":%d,"db":"shop",`+
		`"table":"items","server_id":1,"file":"mysql-bin.000002","pos":77,"row":0},"op":"c","ts_ms":%d}`, now, now)
	body, _ := json.Marshal(map[string]any{"message": map[string]any{
		"data": base64.StdEncoding.EncodeToString([]byte(data)), "messageId": "1",
		"publishTime": time.Now().UTC().Format(time.RFC3339Nano), "orderingKey": `{"id":3}`},
		"subscription": "projects/p/subscriptions/s"})
	resp, err := http.Post(base+"/", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	_, metrics := get(t, base+"/metrics")
	assert.Contains(t, metrics, `cdc_messages_total{table="shop.items",outcome="applied"} 1`)

	d, err := c.HGet(context.Background(), prefix+"shop.items:3", "d").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"id":3,"name":"x"}`, d)

	require.NoError(t, r.stop(t))
	assert.Contains(t, r.stderr.String(), "stopped")
	assert.Contains(t, r.stdout.String(), `"table":"shop.items"`, "the final summary entry is written on shutdown")
	// The checkpoint was flushed by the store's Close.
	n, err := c.Exists(context.Background(), redisstore.CheckpointKey(prefix)).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

func TestRunRejectsArgumentsAndBadConfig(t *testing.T) {
	err := Run(context.Background(), []string{"-x"}, func(string) string { return "" }, io.Discard, io.Discard)
	require.Error(t, err)
	err = Run(context.Background(), nil, func(k string) string {
		return map[string]string{"PORT": "eighty"}[k]
	}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "PORT:"), err.Error())
}

func TestPprofAddrServesProfilesApartFromPort(t *testing.T) {
	_, prefix := testredis.Shared(t)
	r, base := startRun(t, map[string]string{"PORT": "0", "CACHE_PREFIX": prefix, "PPROF_ADDR": "127.0.0.1:0"})
	m := pprofListening.FindStringSubmatch(r.stderr.String())
	require.NotNil(t, m, "no pprof line; stderr: %s", r.stderr.String())
	require.NotEqual(t, base, m[1])

	code, index := get(t, m[1]+"/debug/pprof/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, index, "goroutine")
	code, _ = get(t, m[1]+"/debug/pprof/cmdline")
	assert.Equal(t, http.StatusOK, code)

	// The public port does not serve them.
	code, public := get(t, base+"/debug/pprof/")
	assert.NotEqual(t, http.StatusOK, code)
	assert.NotContains(t, public, "goroutine")
	require.NoError(t, r.stop(t))
}

func TestRunWithoutPprofAddrServesNoProfiles(t *testing.T) {
	_, prefix := testredis.Shared(t)
	r, _ := startRun(t, map[string]string{"PORT": "0", "CACHE_PREFIX": prefix})
	require.NoError(t, r.stop(t))
	assert.NotContains(t, r.stderr.String(), "pprof")
}

func TestRunRejectsBadPprofAddr(t *testing.T) {
	_, prefix := testredis.Shared(t)
	err := Run(context.Background(), nil, func(k string) string {
		return map[string]string{"PORT": "0", "CACHE_PREFIX": prefix, "PPROF_ADDR": "127.0.0.1:notaport"}[k]
	}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "PPROF_ADDR:"), err.Error())
}

// TestServerCutsStalledUpload checks the push server's read timeout covers
// the body: a client that sends its headers and part of the body, then
// stalls, gets its connection closed instead of holding it (and the
// request's memory budget) until Cloud Run's request timeout.
func TestServerCutsStalledUpload(t *testing.T) {
	assert.Less(t, pushTimeouts.read, 60*time.Second, "under Cloud Run's default request timeout")
	assert.Greater(t, pushTimeouts.idle, pushTimeouts.read)
	assert.NotZero(t, pushTimeouts.header)

	reads := make(chan error, 1)
	srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		reads <- err
	}), timeouts{header: time.Second, read: 100 * time.Millisecond, idle: time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
	require.NoError(t, err)
	select {
	case err := <-reads:
		require.Error(t, err, "the handler's body read ends with the timeout")
	case <-time.After(10 * time.Second): // a safety net, far above the 100 ms under test
		t.Fatal("the stalled body was never cut off")
	}
	// The server closes the connection: the client reads to EOF.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadAll(conn)
	require.NoError(t, err, "closed by the server, not by the safety deadline")
}

// go-redis's own log lines (here: its pool failing to dial a Redis that is
// not there) reach stdout as JSON entries like ours, never as plain text.
func TestGoRedisLogLinesAreStructured(t *testing.T) {
	dead := testredis.StartPrivate(t)
	dead.Kill()
	r, base := startRun(t, map[string]string{"PORT": "0", "REDIS_URL": dead.URL(), "SUMMARY_INTERVAL": "1h"})
	resp, err := http.Post(base+"/", "application/json", strings.NewReader(`{"message":{"data":"e30=","messageId":"1"}}`))
	require.NoError(t, err)
	resp.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(r.stdout.String(), `"component":"go-redis"`) {
		require.True(t, time.Now().Before(deadline), "no go-redis line on stdout: %s", r.stdout.String())
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	lines, err := r.stdout.JSONLines()
	require.NoError(t, err, "every stdout line is JSON")
	var found bool
	for _, l := range lines {
		if l["component"] == "go-redis" {
			found = true
			assert.Equal(t, "WARNING", l["severity"])
			assert.Contains(t, l["message"], "failed to dial")
		}
	}
	assert.True(t, found)
}
