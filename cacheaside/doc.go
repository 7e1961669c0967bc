// Package cacheaside is the read library services use (design section 4):
// Get a row as canonical JSON from the cache kept by the change stream,
// Redis (New) or memcached (NewMemcached), with the primary MySQL database
// as the fallback on a miss. Both give the same answers, fills, leases and
// Stats; what follows says Redis and holds for memcached, whose record
// format and leases are memcachestore's (a lease is an item replaced by
// compare-and-swap, a fill a compare-and-swap on the lease's token).
//
// One Redis round trip decides: a row ("d") is a hit, a tombstone ("t") is
// ErrNotFound without asking the database, anything else is a miss. A miss
// reads the database through mysqlrow (same column list, same canonical
// encoder as the change stream) and, where the table's fill policy is
// "lease", writes the row back under a memcache-style lease (redisstore
// leases): the first reader to miss takes the lease, only it fills, and only
// if no change was applied meanwhile (any change clears the lease). The fill
// sets the record's version to at least the checkpoint version read with the
// lease, so a late redelivery older than what the database showed is
// rejected and every later change still applies. Concurrent misses on one
// key inside a process share one database query.
//
// Answers:
//   - On a fill conflict (a change was applied between lease and fill) Get
//     returns the row it read from the database: that row was committed and
//     current when read, during the call, which is all a read can promise;
//     re-reading Redis would cost a round trip and could find only a marker.
//   - A row the database does not have is cached as a short tombstone when
//     the table sets negative_ttl (and fill is lease). Its version is the
//     checkpoint version taken before the database read; any insert of that
//     key the read did not see commits after the read, so later in the
//     binlog than every change the checkpoint covers: its version is higher
//     and the stream replaces the tombstone.
//   - Database reads run at most Options.MaxDBConcurrency at a time, Redis
//     up or down (a cold cache is all misses). With Redis unreachable,
//     reads go to the database, and Redis is not tried again for
//     Options.RedisBackoff, so a dead Redis costs no timeout per read. The
//     read that finds Redis down waits for go-redis to give up dialing
//     (by default 5 attempts 100ms apart): give the read path's client
//     DialerRetries 1 and a short DialTimeout.
//
// The lease script reads the row's record and the checkpoint hash
// atomically, so on Redis Cluster both keys would have to share a slot;
// it is meant for a single primary (Memorystore standard tier).
//
// On memcached a read also fetches the table's truncate watermark in the
// same multi-get (a record at or below it is absent), and a lease also the
// checkpoint item. With several nodes, any node that does not answer counts
// as memcached down for the whole Reader (RedisBackoff), not per node.
package cacheaside
