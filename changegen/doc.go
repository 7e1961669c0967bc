// Package changegen generates MySQL change events exactly as Debezium
// Server's Pub/Sub sink publishes them, for the local pipeline and its tests:
// a small model of database `inventory` (customers, order_items with a
// composite key, and all_types with a column of every type of the design's
// canonical table) goes through a snapshot and then inserts, updates,
// primary-key changes and deletes at growing binlog positions. Each message
// carries the topic (<server>.<db>.<table>), the value JSON (with or without
// the schema envelope) and the ordering key (the Debezium key JSON) when
// ordering is on.
//
// The generator also keeps the final state every key must reach in the
// cache: the row as canonical JSON, computed with the cdc.Append* encoders
// straight from the model's Go values (never through a decoder), or
// "deleted". Output is deterministic for a seed; only the wall-clock fields
// (ts_ms, ts_us, ts_ns) come from the injected clock.
//
// Cycle is the load generator's stream (the benchmark's): creates, then
// updates with before images, of one table's keys in order, usually the wide
// 18-column orders table, at strictly growing positions from a chosen start.
package changegen
