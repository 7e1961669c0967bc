package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// replayBatch is the number of stream entries read at a time.
const replayBatch = 100

// runReplay pushes parked messages (the Redis stream <prefix>__cdc:rejected)
// back through the function as wrapped push envelopes, oldest first, and
// deletes each entry only after a 2xx. A message the function rejects again
// is parked again (a new entry) and counted as re-parked.
func runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis", firstNonEmpty(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"), "Redis URL")
	prefix := fs.String("prefix", getenv("CACHE_PREFIX"), "cache key prefix (default $CACHE_PREFIX)")
	url := fs.String("url", "", "the push function's URL, e.g. http://127.0.0.1:8080/ (required)")
	limit := fs.Int("max", 0, "replay at most this many messages (0: all)")
	sub := fs.String("subscription", "projects/local/subscriptions/cachectl-replay", "subscription name written in the envelopes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" || fs.NArg() > 0 {
		fs.Usage()
		return usagef("replay: -url is required and there are no arguments")
	}
	rdb, err := redisClient(*redisURL, getenv("REDIS_CA_CERT"))
	if err != nil {
		return err
	}
	defer rdb.Close()
	stream := redisstore.RejectedStreamKey(*prefix)
	parker := redisstore.NewRedisParker(rdb, *prefix)

	// Only entries parked before the replay started: re-parked ones land after.
	last, err := rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if len(last) == 0 {
		fmt.Fprintf(stdout, "replay: no parked messages in %s\n", stream)
		return nil
	}
	end := last[0].ID
	client := &http.Client{Timeout: 30 * time.Second}
	replayed := map[string]bool{} // message IDs answered 2xx
	var done, failed int
	start := "-"
	var firstErr error
	for *limit == 0 || done+failed < *limit {
		entries, err := rdb.XRangeN(ctx, stream, start, end, replayBatch).Result()
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			if *limit > 0 && done+failed >= *limit {
				break
			}
			err := replayOne(ctx, client, *url, *sub, e)
			if err == nil {
				_, err = parker.Delete(ctx, e.ID)
			}
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("entry %s: %w", e.ID, err)
				}
				continue
			}
			done++
			id, _ := e.Values["message_id"].(string)
			replayed[id] = true
		}
		start = "(" + entries[len(entries)-1].ID
	}
	// Count the replayed messages the function parked again.
	reparked := 0
	if done > 0 {
		after, err := rdb.XRange(ctx, stream, "("+end, "+").Result()
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		for _, e := range after {
			if id, _ := e.Values["message_id"].(string); replayed[id] {
				reparked++
			}
		}
	}
	fmt.Fprintf(stdout, "replay: replayed=%d accepted=%d reparked=%d failed=%d (left in %s)\n",
		done, done-reparked, reparked, failed, stream)
	if firstErr != nil {
		return fmt.Errorf("replay: %d failed, first: %w", failed, firstErr)
	}
	return nil
}

// replayOne posts one stream entry as a wrapped push envelope.
func replayOne(ctx context.Context, client *http.Client, url, sub string, e redis.XMessage) error {
	str := func(k string) string { s, _ := e.Values[k].(string); return s }
	m := pushbridge.PushMessage{Data: []byte(str("payload")), ID: str("message_id"), OrderingKey: str("ordering_key")}
	if attrs := str("attributes"); attrs != "" {
		if err := json.Unmarshal([]byte(attrs), &m.Attributes); err != nil {
			return fmt.Errorf("attributes: %w", err)
		}
	}
	m.PublishTime = time.Now()
	if t, err := time.Parse(time.RFC3339Nano, str("publish_time")); err == nil {
		m.PublishTime = t
	}
	body := pushbridge.AppendEnvelope(nil, sub, m, 0)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("function answered %s", resp.Status)
	}
	return nil
}
