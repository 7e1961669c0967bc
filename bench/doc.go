// Package bench drives the end-to-end benchmark of the push function: it
// wraps changegen's Debezium MySQL change events (its customers table, or
// the wide orders table) in Pub/Sub push envelopes, posts them in a closed
// loop (fixed concurrency) or an open loop (fixed offered rate, latency from
// the scheduled send time so queueing is not hidden), and reads the CPU time
// a process and the Redis server spent. The posting is its own minimal
// HTTP/1.1 client over keep-alive connections rather than net/http's: the
// load generator shares the machine with the server it measures, so every
// microsecond it spends per request is taken from that server.
//
// bench/naive is the hand-written baseline handler; bench/floor is an empty
// net/http handler, the floor under any handler's CPU; bench/cmd/bench runs
// the whole comparison (`make bench`); `cachectl load` is the load generator
// on its own.
package bench
