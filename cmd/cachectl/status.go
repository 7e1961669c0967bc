package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/svcenv"
	"github.com/cloudsql-cache/cloudsql-cache/kafkasource"
	"github.com/cloudsql-cache/cloudsql-cache/localrun"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// runStatus prints, per Debezium server, the checkpoint (binlog position,
// commit and apply times, lag), the parked messages, and the events pending:
// the backlog of a local run (found through its state file, or -bridge), of
// Pub/Sub subscriptions in the cloud (-subscription, from Cloud Monitoring),
// and the Kafka workers' committed offsets and lag per partition when -kafka
// (or $KAFKA_BROKERS, or the running local run's Kafka fake) names brokers.
// $CACHECTL_NOW (RFC 3339) fixes the
// clock for tests.
func runStatus(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cache := addCacheFlags(fs, getenv, "the local run's own, running or the last one, when no cache flag or variable is set")
	prefix := fs.String("prefix", getenv("CACHE_PREFIX"), "cache key prefix (default $CACHE_PREFIX; the local run's own, running or the last one, when neither is set)")
	bridgeURL := fs.String("bridge", "", "URL of a local bridge's counters (default: the running local pipeline's, if any)")
	kafkaBrokers := fs.String("kafka", getenv("KAFKA_BROKERS"), "Kafka brokers (default $KAFKA_BROKERS): show the worker group's committed offsets and lag per partition")
	kafkaGroup := fs.String("kafka-group", firstNonEmpty(getenv("KAFKA_GROUP"), kafkasource.DefaultGroup), "Kafka consumer group of the workers")
	var subs []string
	fs.Func("subscription", "Pub/Sub subscription `projects/P/subscriptions/S` whose backlog to read from Cloud Monitoring (repeatable)", func(v string) error {
		subs = append(subs, v)
		return nil
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("status: unexpected arguments %q", fs.Args())
	}
	if err := cache.check("status"); err != nil {
		return err
	}
	now := time.Now()
	if v := getenv("CACHECTL_NOW"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return fmt.Errorf("status: CACHECTL_NOW: %w", err)
		}
		now = t
	}
	// A finished local run's cache is still worth showing: without it, a
	// bare `status` after `make run` would look at prefix "" in DB 0.
	local, err := localRun(fs, getenv, cache, prefix, false)
	if err != nil {
		return err
	}
	if local != nil && local.Live() && *bridgeURL == "" && local.Control != "" && local.Prefix == *prefix {
		*bridgeURL = local.Control + "/bridge"
	}
	if local != nil && local.Live() && local.Kafka != "" && local.Prefix == *prefix && !flagSet(fs, "kafka") && getenv("KAFKA_BROKERS") == "" {
		*kafkaBrokers = local.Kafka
		if !flagSet(fs, "kafka-group") && getenv("KAFKA_GROUP") == "" {
			*kafkaGroup = local.KafkaGroup
		}
	}
	if local != nil && !local.Live() && cache.same(*local) && local.Prefix == *prefix {
		writeLastRun(stdout, local, now)
	}
	if cache.memcached() {
		if err := writeMemcachedStatus(ctx, stdout, cache, *prefix, now); err != nil {
			return err
		}
	} else if err := writeRedisStatus(ctx, stdout, cache, getenv("REDIS_CA_CERT"), *prefix, now); err != nil {
		return err
	}
	if *bridgeURL != "" {
		st, err := bridgeStats(ctx, *bridgeURL)
		if err != nil {
			return fmt.Errorf("status: bridge: %w", err)
		}
		fmt.Fprintf(stdout, "bridge    backlog %d: published=%d delivered=%d acked=%d retried=%d dead_lettered=%d duplicates=%d\n",
			st.Pending, st.Published, st.Delivered, st.Acked, st.Retried, st.DeadLettered, st.Duplicates)
	}
	if len(subs) > 0 {
		svc, err := monitoringService(ctx, getenv)
		if err != nil {
			return err
		}
		for _, sub := range subs {
			b, err := subscriptionBacklog(ctx, svc, sub, now)
			if err != nil {
				return err
			}
			writeBacklog(stdout, sub, b)
		}
	}
	if *kafkaBrokers != "" {
		if err := writeKafkaStatus(ctx, stdout, *kafkaBrokers, *kafkaGroup, kafkasource.SecurityFromEnv(getenv)); err != nil {
			return fmt.Errorf("status: kafka: %w", err)
		}
	}
	return nil
}

// writeRedisStatus prints the checkpoint and the parked messages of the
// Redis cache.
func writeRedisStatus(ctx context.Context, stdout io.Writer, cache *cacheFlags, caFile, prefix string, now time.Time) error {
	rdb, err := redisClient(cache.redisURL, caFile)
	if err != nil {
		return err
	}
	defer rdb.Close()
	cp, err := rdb.HGetAll(ctx, redisstore.CheckpointKey(prefix)).Result()
	if err != nil {
		return fmt.Errorf("status: checkpoint: %w", err)
	}
	stream := redisstore.RejectedStreamKey(prefix)
	parked, err := rdb.XLen(ctx, stream).Result()
	if err != nil {
		return fmt.Errorf("status: parked messages: %w", err)
	}
	fmt.Fprintf(stdout, "prefix %q\n", prefix)
	writeCheckpoints(stdout, cp, now)
	hint := ""
	if parked > 0 {
		hint = " (cachectl replay pushes them back through the function)"
	}
	fmt.Fprintf(stdout, "parked    %d messages in %s%s\n", parked, stream, hint)
	return nil
}

// writeMemcachedStatus prints what memcached holds of the status: the
// checkpoint item and each streamed table's truncate watermark. The parked
// messages are not there (memcached has no stream: they are in REJECT_TOPIC
// or the Kafka DLQ topic), and it cannot count keys by prefix.
func writeMemcachedStatus(ctx context.Context, stdout io.Writer, cache *cacheFlags, prefix string, now time.Time) error {
	cc, err := cache.open("")
	if err != nil {
		return err
	}
	defer cc.Close()
	cps, err := memcachestore.ReadCheckpoints(ctx, cc.mc, prefix)
	if err != nil {
		return fmt.Errorf("status: checkpoint: %w", err)
	}
	fmt.Fprintf(stdout, "prefix %q on %s\n", prefix, cache)
	writeCheckpoints(stdout, checkpointFields(cps), now)
	tables := slices.Sorted(maps.Keys(cps.Tables))
	ops := make([]*memcachestore.Op, len(tables))
	for i, t := range tables {
		ops[i] = &memcachestore.Op{Key: memcachestore.TruncatedKey(prefix, t)}
	}
	cc.mc.Do(ctx, ops)
	for i, op := range ops {
		switch {
		case op.Err != nil:
			return fmt.Errorf("status: truncate watermark of %s: %w", tables[i], op.Err)
		case op.Status == memcachestore.StatusHit:
			fmt.Fprintf(stdout, "truncated %s at %s (records at or below it read as absent)\n", tables[i], op.Value)
		default:
			fmt.Fprintf(stdout, "truncated %s never\n", tables[i])
		}
	}
	fmt.Fprintln(stdout, "parked    not in memcached (it has no stream): rejected messages go to REJECT_TOPIC or KAFKA_DLQ_TOPIC; read their backlog there")
	return nil
}

// checkpointFields returns the memcached checkpoint item in the Redis
// checkpoint hash's fields (<server>, <server>|commit_ms, |applied_ms,
// |server_id, table|<db.table>), so writeCheckpoints shows either cache's.
func checkpointFields(cps memcachestore.Checkpoints) map[string]string {
	out := map[string]string{}
	for s, cp := range cps.Servers {
		out[s] = string(cp.Version)
		out[s+"|commit_ms"] = strconv.FormatInt(cp.CommitMs, 10)
		out[s+"|applied_ms"] = strconv.FormatInt(cp.AppliedMs, 10)
		if cp.ServerID != 0 {
			out[s+"|server_id"] = strconv.FormatInt(cp.ServerID, 10)
		}
	}
	for t, s := range cps.Tables {
		out["table|"+t] = s
	}
	return out
}

// localRun reads the local run's state file. When the run is live (or has
// ended, unless onlyLive) and neither the flags nor the environment chose
// them, its cache (Redis or memcached) and prefix become the defaults of the
// cache flags and -prefix.
func localRun(fs *flag.FlagSet, getenv func(string) string, cache *cacheFlags, prefix *string, onlyLive bool) (*localrun.State, error) {
	st, ok, err := localrun.ReadState(localrun.StatePath(getenv("CACHECTL_STATE_DIR")))
	if err != nil || !ok || (onlyLive && !st.Live()) {
		return nil, err
	}
	if !cache.chosen(fs, getenv) {
		cache.fromRun(st)
	}
	if !flagSet(fs, "prefix") && getenv("CACHE_PREFIX") == "" {
		*prefix = st.Prefix
	}
	return &st, nil
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// writeLastRun says that no local run is active and where the last one
// wrote, which is what the rest of the output shows.
func writeLastRun(w io.Writer, st *localrun.State, now time.Time) {
	if st.Ended.IsZero() {
		fmt.Fprintf(w, "local run none active; the last one (started %s) did not record its end (killed?), shown below\n",
			st.Started.Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "local run none active; the last one ended %s (%s ago), shown below\n",
			st.Ended.Format(time.RFC3339), ago(now, st.Ended))
	}
	var c cacheFlags
	c.fromRun(*st)
	fmt.Fprintf(w, "  cache     %s prefix %q\n", c.String(), st.Prefix)
	if st.Expected != "" {
		fmt.Fprintf(w, "  expected  %s (cachectl verify compares the cache with it)\n", st.Expected)
	}
}

// writeCheckpoints prints the checkpoint hash (redisstore.CheckpointKey)
// server by server.
func writeCheckpoints(w io.Writer, cp map[string]string, now time.Time) {
	var servers []string
	tables := map[string][]string{}
	for field, v := range cp {
		if t, ok := strings.CutPrefix(field, "table|"); ok {
			tables[v] = append(tables[v], t)
		} else if !strings.Contains(field, "|") {
			servers = append(servers, field)
		}
	}
	if len(servers) == 0 {
		fmt.Fprintln(w, "checkpoint none: no change applied under this prefix yet")
		return
	}
	slices.Sort(servers)
	for _, s := range servers {
		fmt.Fprintf(w, "server    %s\n", s)
		version := cp[s]
		if seq, pos, row, err := cdc.ParseVersion(version); err == nil {
			fmt.Fprintf(w, "  binlog    file %d (.%06d), pos %d, row %d\n", seq, seq, pos, row)
		} else {
			fmt.Fprintf(w, "  binlog    unreadable version %q\n", version)
		}
		commit, applied := msField(cp[s+"|commit_ms"]), msField(cp[s+"|applied_ms"])
		if !commit.IsZero() {
			fmt.Fprintf(w, "  committed %s (%s ago)\n", commit.Format(time.RFC3339Nano), ago(now, commit))
		}
		if !applied.IsZero() {
			fmt.Fprintf(w, "  applied   %s (%s ago)\n", applied.Format(time.RFC3339Nano), ago(now, applied))
		}
		if !commit.IsZero() && !applied.IsZero() {
			fmt.Fprintf(w, "  lag       %s (applied - committed; commit times have 1 s resolution)\n",
				applied.Sub(commit).Round(time.Millisecond))
		}
		if id := cp[s+"|server_id"]; id != "" {
			fmt.Fprintf(w, "  server_id %s\n", id)
		}
		ts := tables[s]
		slices.Sort(ts)
		fmt.Fprintf(w, "  tables    %s\n", strings.Join(ts, ", "))
	}
}

func msField(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

func ago(now, t time.Time) time.Duration { return now.Sub(t).Round(time.Millisecond) }

func bridgeStats(ctx context.Context, url string) (pushbridge.Stats, error) {
	var st pushbridge.Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// redisClient connects as the services do (svcenv.RedisOptions): a
// rediss:// URL is verified against caFile (REDIS_CA_CERT, Memorystore's
// server CA) when set.
func redisClient(url, caFile string) (*redis.Client, error) {
	opts, err := svcenv.RedisOptions(url, caFile)
	if err != nil {
		return nil, fmt.Errorf("-redis: %w", err)
	}
	return redis.NewClient(opts), nil
}
