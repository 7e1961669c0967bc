package cacheaside

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// redisCache is the Redis record format (redisstore) under a Reader.
type redisCache struct {
	rdb    redis.UniversalClient
	prefix string
}

func (c redisCache) lookup(ctx context.Context, _ string, keys []string) ([]entry, error) {
	out := make([]entry, len(keys))
	if len(keys) == 1 {
		vals, err := c.rdb.HMGet(ctx, keys[0], redisstore.FieldData, redisstore.FieldTombstone).Result()
		if err != nil {
			if keyError(err) {
				out[0].err = err
				return out, nil
			}
			return nil, err
		}
		out[0] = redisEntry(vals)
		return out, nil
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HMGet(ctx, k, redisstore.FieldData, redisstore.FieldTombstone)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// An error reply fails only its own key; any other error fails
		// them all alike (the connection).
		for _, cmd := range cmds {
			if err := cmd.Err(); err != nil && !keyError(err) {
				return nil, err
			}
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			out[i].err = err
			continue
		}
		out[i] = redisEntry(cmd.Val())
	}
	return out, nil
}

// redisEntry reads HMGET d t.
func redisEntry(vals []any) entry {
	if d, ok := vals[0].(string); ok {
		return entry{row: []byte(d)}
	}
	return entry{deleted: vals[1] != nil}
}

func (c redisCache) acquire(ctx context.Context, table string, keys []string, ttl time.Duration) ([]lease, error) {
	ls, err := redisstore.AcquireLeases(ctx, c.rdb, c.prefix, table, keys, ttl)
	if err != nil {
		return nil, err
	}
	out := make([]lease, len(ls))
	for i, l := range ls {
		switch l.State {
		case redisstore.LeaseGranted:
			out[i] = lease{state: leaseGranted, held: l}
		case redisstore.LeaseHit:
			out[i] = lease{state: leaseHit, row: l.Row}
		case redisstore.LeaseDeleted:
			out[i] = lease{state: leaseDeleted}
		default:
			out[i] = lease{state: leaseBusy}
		}
	}
	return out, nil
}

func (c redisCache) fill(ctx context.Context, fills []fill) ([]bool, error) {
	fs := make([]redisstore.Fill, len(fills))
	for i, f := range fills {
		fs[i] = redisstore.Fill{Key: f.key, Lease: f.lease.held.(redisstore.Lease), Row: f.row, Release: f.release, TTL: f.ttl}
	}
	return redisstore.FillLeases(ctx, c.rdb, fs)
}

func (redisCache) keyOnly(err error) bool { return keyError(err) }

// keyError reports whether err is Redis's error reply about the key asked,
// such as WRONGTYPE for a key of another type under the prefix: that key's
// problem, not the server's. Connection errors and timeouts are not replies;
// the replies in serverWide speak for the whole server.
func keyError(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) || errors.Is(err, redis.Nil) {
		return false
	}
	msg := reply.Error()
	for _, code := range serverWide {
		if strings.HasPrefix(msg, code) {
			return false
		}
	}
	return true
}

// serverWide are the error codes with which Redis refuses every command for
// a while: loading its data, a script running, no primary, out of memory
// (for the lease writes), read-only replica, not authenticated.
var serverWide = []string{"LOADING ", "BUSY ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "OOM ", "READONLY ", "NOAUTH "}
