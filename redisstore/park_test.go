package redisstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// rejected is a parked message with the given id and payload.
func rejected(id, payload string) pipeline.Rejected {
	return pipeline.Rejected{Reason: "r", Payload: []byte(payload), MessageID: id,
		RejectedAt: time.Date(2024, 5, 1, 13, 4, 5, 0, time.UTC)}
}

// The fixed values of rejected(): reason "r", attributes "{}", message id
// (one byte here), rejected_at (20 bytes, RFC 3339 UTC without fraction).
const fixedBytes = 1 + 2 + 1 + 20

func TestParkBoundedByBytesNeverTrims(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	p := redisstore.NewRedisParkerLimits(c, prefix, redisstore.ParkLimits{MaxBytes: 3 * (100 + fixedBytes), MaxEntryBytes: 200})
	payload := strings.Repeat("x", 100)
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, p.Park(ctx, rejected(id, payload)))
	}
	err := p.Park(ctx, rejected("d", payload))
	require.ErrorIs(t, err, redisstore.ErrParkFull, "the fourth would pass the byte bound")
	require.ErrorIs(t, p.Park(ctx, rejected("e", strings.Repeat("y", 300))), redisstore.ErrParkTooLarge)

	entries, err := c.XRange(ctx, redisstore.RejectedStreamKey(prefix), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 3, "refused, not trimmed: the first three are all kept")
	assert.Equal(t, "a", entries[0].Values["message_id"])
	used, err := c.Get(ctx, redisstore.RejectedBytesKey(prefix)).Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(3*(100+fixedBytes)), used)

	// Deleting an entry (a replay) gives its bytes back.
	n, err := p.Delete(ctx, entries[0].ID, "0-1")
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "an unknown id is not counted")
	used, err = c.Get(ctx, redisstore.RejectedBytesKey(prefix)).Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(2*(100+fixedBytes)), used)
	require.NoError(t, p.Park(ctx, rejected("d", payload)))
}

func TestParkBoundedByEntries(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	p := redisstore.NewRedisParkerLimits(c, prefix, redisstore.ParkLimits{MaxEntries: 2})
	require.NoError(t, p.Park(ctx, rejected("a", "1")))
	require.NoError(t, p.Park(ctx, rejected("b", "2")))
	require.ErrorIs(t, p.Park(ctx, rejected("c", "3")), redisstore.ErrParkFull)
	n, err := c.XLen(ctx, redisstore.RejectedStreamKey(prefix)).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
}

// A count left high by a plain XDEL (another tool) heals once the stream is
// empty: the bound can make the stream refuse early, never hold more.
func TestParkByteCountHealsWhenEmpty(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	p := redisstore.NewRedisParkerLimits(c, prefix, redisstore.ParkLimits{MaxBytes: 150 + fixedBytes})
	require.NoError(t, p.Park(ctx, rejected("a", strings.Repeat("x", 100))))
	require.NoError(t, c.Del(ctx, redisstore.RejectedStreamKey(prefix)).Err())
	require.NoError(t, p.Park(ctx, rejected("b", strings.Repeat("x", 150))))
	used, err := c.Get(ctx, redisstore.RejectedBytesKey(prefix)).Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(150+fixedBytes), used)
}

func TestParkedEntryFormat(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	rej := pipeline.Rejected{Reason: "decode: x", Payload: []byte("p\x00q"), Attributes: map[string]string{"a": "1"},
		MessageID: "m-1", Key: `{"id":1}`, Source: "projects/p/subscriptions/s",
		PublishTime: time.Date(2024, 5, 1, 13, 4, 5, 123e6, time.UTC), RejectedAt: time.Date(2024, 5, 1, 13, 4, 6, 0, time.UTC)}
	require.NoError(t, redisstore.NewRedisParker(c, prefix).Park(ctx, rej))
	entries, err := c.XRange(ctx, redisstore.RejectedStreamKey(prefix), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, map[string]any{"reason": "decode: x", "payload": "p\x00q", "attributes": `{"a":"1"}`,
		"message_id": "m-1", "publish_time": "2024-05-01T13:04:05.123Z", "ordering_key": `{"id":1}`,
		"rejected_at": "2024-05-01T13:04:06Z"}, entries[0].Values)
}
