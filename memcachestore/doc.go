// Package memcachestore is the cache's record format on memcached: the same
// versioned rows, tombstones, markers, fill leases, truncate watermarks and
// checkpoint as redisstore, with the same apply rules, for memcached 1.6 or
// later run with -M (no eviction).
//
// memcached has no scripts, so a change is applied as read, decide, then
// compare-and-swap: the record is read with its CAS token, the apply rules
// decide locally, and the new record is written only if the record is
// unchanged since the read (a cas, or an add where there was none); a lost
// race is read again, a bounded number of times. A lower or equal version
// therefore never replaces a higher one, whatever the interleaving.
//
// The client speaks memcached's meta protocol (mg, ms, mn) itself: no
// maintained Go client pipelines compare-and-swap writes (gomemcache sends
// one CompareAndSwap per round trip), while the meta protocol lets one batch
// of changes cost two round trips per node: every read of the batch, then
// every write. Concurrent single changes (push requests) are merged into
// such batches (internal/coalesce), as the Redis store merges them into one
// script call. Keys are spread over several nodes by consistent hashing in
// libketama's layout (libmemcached's ketama mode), so adding a node moves
// about 1/n of the keys.
//
// One item per row, value (design section 2, "Memcached record"):
//
//	D<version><row JSON>   a row: a hit
//	T<version>             deleted (a tombstone)
//	M<version>             a marker: changed, content not cached (a miss)
//	L<lease>[:<version>]   a fill lease (a miss)
//
// where <version> is the 40-digit cdc.Version. A table's truncate watermark
// is the item TruncatedKey(prefix, table) holding the truncate's version: a
// record at or below it counts as absent, to writers and readers alike, as
// memcached cannot enumerate a table's keys to delete them.
package memcachestore
