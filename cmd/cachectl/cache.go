package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/localrun"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
)

// cacheFlags are the flags that name the cache a command reads: -cache
// (redis or memcached), -redis and -memcache, defaulting to the services'
// environment (CACHE_BACKEND, REDIS_URL, MEMCACHE_ADDRS).
type cacheFlags struct {
	backend, redisURL, memcache string
}

// addCacheFlags defines the cache flags on fs; who says where a local run's
// defaults apply.
func addCacheFlags(fs *flag.FlagSet, getenv func(string) string, who string) *cacheFlags {
	c := &cacheFlags{}
	fs.StringVar(&c.backend, "cache", firstNonEmpty(getenv("CACHE_BACKEND"), localrun.CacheRedis),
		"the cache: redis or memcached (default $CACHE_BACKEND, else redis; "+who+")")
	fs.StringVar(&c.redisURL, "redis", firstNonEmpty(getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"),
		"Redis URL (default $REDIS_URL; "+who+")")
	fs.StringVar(&c.memcache, "memcache", firstNonEmpty(getenv("MEMCACHE_ADDRS"), localMemcacheAddr),
		"memcached nodes host:port,... with -cache memcached (default $MEMCACHE_ADDRS; "+who+")")
	return c
}

// chosen reports whether the command line or the environment named the cache.
func (c *cacheFlags) chosen(fs *flag.FlagSet, getenv func(string) string) bool {
	for _, f := range []string{"cache", "redis", "memcache"} {
		if flagSet(fs, f) {
			return true
		}
	}
	for _, e := range []string{"CACHE_BACKEND", "REDIS_URL", "MEMCACHE_ADDRS"} {
		if getenv(e) != "" {
			return true
		}
	}
	return false
}

// fromRun takes the cache of the local run st.
func (c *cacheFlags) fromRun(st localrun.State) {
	c.backend = firstNonEmpty(st.Cache, localrun.CacheRedis)
	if c.backend == localrun.CacheMemcached {
		c.memcache = strings.Join(st.Memcache, ",")
	} else {
		c.redisURL = st.Redis
	}
}

// memcached reports whether the cache is memcached.
func (c *cacheFlags) memcached() bool { return c.backend == localrun.CacheMemcached }

// check refuses an unknown -cache.
func (c *cacheFlags) check(cmd string) error {
	if c.backend != localrun.CacheRedis && c.backend != localrun.CacheMemcached {
		return usagef("%s: -cache %q: redis or memcached", cmd, c.backend)
	}
	return nil
}

// String names the cache, as the commands print it.
func (c *cacheFlags) String() string {
	if c.memcached() {
		return "memcached " + c.memcache
	}
	return c.redisURL
}

// same reports whether st's cache is this one.
func (c *cacheFlags) same(st localrun.State) bool {
	var run cacheFlags
	run.fromRun(st)
	return run.backend == c.backend && (c.memcached() && run.memcache == c.memcache || !c.memcached() && run.redisURL == c.redisURL)
}

// cacheConn is an open cache: exactly one of rdb and mc is set.
type cacheConn struct {
	rdb *redis.Client
	mc  *memcachestore.Client
}

// open connects to the cache (caFile: REDIS_CA_CERT, for rediss://).
func (c *cacheFlags) open(caFile string) (cacheConn, error) {
	if c.memcached() {
		mc, err := memcachestore.NewClient(strings.Split(c.memcache, ","), memcachestore.ClientOptions{})
		if err != nil {
			return cacheConn{}, fmt.Errorf("-memcache: %w", err)
		}
		return cacheConn{mc: mc}, nil
	}
	rdb, err := redisClient(c.redisURL, caFile)
	return cacheConn{rdb: rdb}, err
}

// records reads records under prefix for localrun.VerifyRecords.
func (cc cacheConn) records(prefix string) localrun.Records {
	if cc.mc != nil {
		return localrun.MemcachedRecords(cc.mc, prefix)
	}
	return localrun.RedisRecords(cc.rdb)
}

// Close closes the client.
func (cc cacheConn) Close() error {
	if cc.mc != nil {
		return cc.mc.Close()
	}
	return cc.rdb.Close()
}
