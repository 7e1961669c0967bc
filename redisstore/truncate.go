package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// truncateAttempts bounds the retries of one SCAN step before a truncate is
// abandoned (logged and counted; its rows then age out by TTL or are
// overwritten by later changes).
const truncateAttempts = 8

// TruncatedKey is the truncate watermark hash of a key prefix (namespace):
// field "db.table", value the version of the newest truncate applied to
// that table. No change at or below it is written, so a redelivery older
// than a truncate cannot bring back a row the truncate's scan removed.
func TruncatedKey(prefix string) string { return prefix + "__cdc:truncated" }

// raiseWatermark records a truncate in the watermark hash before its scan
// starts, so no older change writes behind the scan. stale is true when a
// newer truncate is already recorded: its scan removes everything this one
// would.
func (s *Store) raiseWatermark(ctx context.Context, ch cdc.Change) (stale bool, err error) {
	code, err := watermarkScript.Run(ctx, s.client, []string{TruncatedKey(s.cfg.Prefix)}, ch.Table, string(ch.Version)).Int64()
	if err != nil {
		return false, fmt.Errorf("redisstore: truncate %s: watermark: %w", ch.Table, err)
	}
	return code < 0, nil
}

// startTruncate removes, in the background, every record of the table
// older than the truncate. The caller is counted in s.active, so Close
// waits for it.
func (s *Store) startTruncate(ch cdc.Change) {
	s.truncates.Add(1)
	go func() {
		defer s.truncates.Done()
		if err := s.truncate(s.bg, ch.Table, ch.Version); err != nil {
			s.truncateErrors.Add(1)
			s.log.Error("redisstore: truncate abandoned", "table", ch.Table, "version", string(ch.Version), "err", err)
		}
	}()
}

// truncate scans the table's keys (on every master of a cluster) and
// deletes each record whose version is below v, atomically per key, so
// rows written by newer changes meanwhile survive.
func (s *Store) truncate(ctx context.Context, table string, v cdc.Version) error {
	match := escapeGlob(cdc.TableKeyPrefix(s.cfg.Prefix, table)) + "*"
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return s.truncateNode(ctx, node, match, v)
		})
	}
	return s.truncateNode(ctx, s.client, match, v)
}

// truncateNode runs one bounded SCAN step at a time, retrying a failed step
// with backoff.
func (s *Store) truncateNode(ctx context.Context, c redis.UniversalClient, match string, v cdc.Version) error {
	var cursor uint64
	failures := 0
	backoff := 50 * time.Millisecond
	for {
		keys, next, err := c.ScanType(ctx, cursor, match, int64(s.opts.TruncateBatch), "hash").Result()
		if err == nil && len(keys) > 0 {
			cmds := evalAll(ctx, c, truncateScript, len(keys), func(i int) ([]string, []any) {
				return keys[i : i+1], []any{string(v)}
			})
			for _, cmd := range cmds {
				if cmd.Err() != nil {
					err = cmd.Err()
					break
				}
			}
		}
		if err != nil {
			failures++
			if failures >= truncateAttempts || ctx.Err() != nil {
				return fmt.Errorf("scan %q: %w", match, err)
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return fmt.Errorf("scan %q: %w", match, ctx.Err())
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		failures, backoff = 0, 50*time.Millisecond
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}
