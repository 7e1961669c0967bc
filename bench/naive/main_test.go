package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/bench"
)

func TestHandlerWritesAfterImage(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	prefix := fmt.Sprintf("test:naive:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	srv := httptest.NewServer(&handler{rdb: rdb, prefix: prefix})
	defer srv.Close()

	for _, schema := range []bool{true, false} {
		opts := bench.DefaultEventOptions(schema)
		opts.Keys = 3
		g, err := bench.NewGenerator(opts, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for range 4 { // the 4th event updates key 1
			resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(g.Next()))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("schema=%v: status %d", schema, resp.StatusCode)
			}
		}
		n, err := rdb.Exists(ctx, prefix+"shop.orders:1", prefix+"shop.orders:2", prefix+"shop.orders:3").Result()
		if err != nil || n != 3 {
			t.Fatalf("schema=%v: %d of 3 rows written (%v)", schema, n, err)
		}
		d, err := rdb.HGet(ctx, prefix+"shop.orders:1", "d").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var row map[string]any
		if err := json.Unmarshal(d, &row); err != nil || row["id"] != 1.0 || row["email"] != "customer1@example.com" {
			t.Fatalf("schema=%v: row %s (%v)", schema, d, err)
		}
	}

	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader([]byte(`{"message":`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("broken envelope: status %d, want 400", resp.StatusCode)
	}
}
