package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// syncBuffer is a goroutine-safe writer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`serving the push function on (http://\S+)/`)

func TestRunServesOnePushAndStops(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer c.Close()
	require.NoError(t, c.Ping(context.Background()).Err(), "the test needs Redis on 127.0.0.1:6379")
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test:cmd:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		keys, _ := c.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(context.Background(), keys...)
		}
	})

	env := map[string]string{"PORT": "0", "CACHE_PREFIX": prefix}
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, stdout, stderr) }()

	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run ended early: %v; stderr: %s", err, stderr.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "no listening line; stderr: %s", stderr.String())
		time.Sleep(10 * time.Millisecond) // polling interval
	}

	now := time.Now().UnixMilli()
	data := fmt.Sprintf(`{"before":null,"after":{"id":3,"name":"x"},"source":{"name":"s","ts_ms":%d,"db":"shop",`+
		`"table":"items","server_id":1,"file":"mysql-bin.000002","pos":77,"row":0},"op":"c","ts_ms":%d}`, now, now)
	body, _ := json.Marshal(map[string]any{"message": map[string]any{
		"data": base64.StdEncoding.EncodeToString([]byte(data)), "messageId": "1",
		"publishTime": time.Now().UTC().Format(time.RFC3339Nano), "orderingKey": `{"id":3}`}})
	resp, err := http.Post(base+"/", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)

	resp, err = http.Get(base + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(metrics), `cdc_messages_total{table="shop.items",outcome="applied"} 1`)

	d, err := c.HGet(context.Background(), prefix+"shop.items:3", "d").Result()
	require.NoError(t, err)
	assert.Equal(t, `{"id":3,"name":"x"}`, d)

	cancel() // what SIGINT/SIGTERM does in main
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
	assert.Contains(t, stderr.String(), "stopped")
	assert.Contains(t, stdout.String(), `"table":"shop.items"`, "the final summary entry is written on shutdown")
	// The checkpoint was flushed by the store's Close.
	n, err := c.Exists(context.Background(), redisstore.CheckpointKey(prefix)).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

func TestRunRejectsArgumentsAndBadConfig(t *testing.T) {
	err := run(context.Background(), []string{"-x"}, func(string) string { return "" }, io.Discard, io.Discard)
	require.Error(t, err)
	err = run(context.Background(), nil, func(k string) string {
		return map[string]string{"PORT": "eighty"}[k]
	}, io.Discard, io.Discard)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "PORT:"), err.Error())
}
