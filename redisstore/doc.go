// Package redisstore is the cache's record format on Redis (go-redis v9): the
// apply path that writes change-stream events as versioned rows, tombstones
// and markers with one atomic Lua script per batch of changes, background
// truncates, and the per-server checkpoint hash. The read path's fill leases live here
// too, so that every script touching a record sits beside the format it
// relies on.
//
// A record is one hash per row (design section 2): v (version), d (row
// JSON), t ("1": deleted), l (fill lease). A change writes only when its
// version is above the stored one and above its table's truncate watermark
// (TruncatedKey), so duplicates and reordering converge on the newest
// change and a truncated row never comes back; TTLs bound what a lost
// change can leave behind.
package redisstore
