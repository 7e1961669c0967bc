package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
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
		var last []byte
		for range 4 { // the 4th event updates key 1001
			last = g.Next()
			resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(last))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("schema=%v: status %d", schema, resp.StatusCode)
			}
		}
		n, err := rdb.Exists(ctx, prefix+"shop.customers:1001", prefix+"shop.customers:1002", prefix+"shop.customers:1003").Result()
		if err != nil || n != 3 {
			t.Fatalf("schema=%v: %d of 3 rows written (%v)", schema, n, err)
		}
		d, err := rdb.HGet(ctx, prefix+"shop.customers:1001", "d").Bytes()
		if err != nil {
			t.Fatal(err)
		}
		var row map[string]any
		if err := json.Unmarshal(d, &row); err != nil || row["id"] != 1001.0 || !reflect.DeepEqual(row, afterImage(t, last)) {
			t.Fatalf("schema=%v: row %s is not the update's after image (%v)", schema, d, err)
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

// afterImage decodes the after image of a push body's Debezium event, with
// or without the schema envelope.
func afterImage(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var env struct{ Message struct{ Data []byte } }
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		After   map[string]any
		Payload struct{ After map[string]any }
	}
	if err := json.Unmarshal(env.Message.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.After == nil {
		return ev.Payload.After
	}
	return ev.After
}
