package svcenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// HealthTimeout bounds one cache ping of /healthz (and the one at start),
// so a hung cache answers the probe with 503 instead of holding it.
const HealthTimeout = 2 * time.Second

// RedisProblem says, naming the setting to fix, why the Redis of opts did
// not answer with err: a refused password, a database number the server
// does not have, a TLS failure, or nothing answering at the address. The
// password is never part of it.
func RedisProblem(opts *redis.Options, err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "invalid password"),
		strings.Contains(msg, "invalid username-password"):
		return fmt.Sprintf("REDIS_URL: the server at %s refuses the user or password (rediss://:PASSWORD@host:port/db): %s", opts.Addr, msg)
	case strings.Contains(msg, "NOAUTH"):
		return fmt.Sprintf("REDIS_URL: the server at %s needs a password (rediss://:PASSWORD@host:port/db): %s", opts.Addr, msg)
	case strings.Contains(msg, "DB index is out of range"):
		return fmt.Sprintf("REDIS_URL: the server at %s has no database %d (the number after the last /): %s", opts.Addr, opts.DB, msg)
	case strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"), strings.Contains(msg, "certificate"):
		return fmt.Sprintf("REDIS_URL/REDIS_CA_CERT: TLS with %s failed (rediss:// needs the server's CA in REDIS_CA_CERT): %s", opts.Addr, msg)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Sprintf("REDIS_URL: no answer from %s within %v (host, port, firewall or VPC egress)", opts.Addr, HealthTimeout)
	}
	return fmt.Sprintf("REDIS_URL: nothing answers at %s (host, port, firewall or VPC egress): %s", opts.Addr, msg)
}

// MemcacheProblem is RedisProblem for memcached nodes.
func MemcacheProblem(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("MEMCACHE_ADDRS: a node gave no answer within %v", HealthTimeout)
	}
	return "MEMCACHE_ADDRS: " + err.Error()
}

// CacheCheck pings a cache and says what is wrong, naming the setting.
type CacheCheck struct {
	// Ping asks the cache for an answer.
	Ping func(ctx context.Context) error
	// Problem explains a Ping error, naming the setting (RedisProblem);
	// nil: the error's own text.
	Problem func(err error) string
}

// Check pings the cache (at most HealthTimeout) and returns "" when it
// answers, else the problem.
func (c CacheCheck) Check(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, HealthTimeout)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		if c.Problem == nil {
			return err.Error()
		}
		return c.Problem(err)
	}
	return ""
}

// AtStart pings the cache once and, when it does not answer, logs one
// error that names the setting. A bad cache setting is not a failed start:
// the process keeps serving (its changes are retried, /healthz is 503) so a
// deploy with a wrong password or database shows at once, without a crash
// loop, and recovers by itself once the cache answers. It returns whether
// the cache answered.
func (c CacheCheck) AtStart(ctx context.Context, log *slog.Logger, what string) bool {
	problem := c.Check(ctx)
	if problem == "" {
		return true
	}
	log.ErrorContext(ctx, "cache not answering at start: "+problem+"; "+what+" until it answers, and /healthz answers 503",
		"setting", strings.SplitN(problem, ":", 2)[0])
	return false
}

// Healthz answers 200 "ok" while the cache answers a ping, else 503 with
// the problem; every request pings again (readiness, never remembered).
// ready, when not nil, adds a condition of the process's own: a non-empty
// answer is a 503 with that text.
func (c CacheCheck) Healthz(ready func() string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if problem := c.Check(r.Context()); problem != "" {
			http.Error(w, "cache not answering: "+problem, http.StatusServiceUnavailable)
			return
		}
		if ready != nil {
			if problem := ready(); problem != "" {
				http.Error(w, problem, http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "ok\n")
	}
}

// RedisLogger routes go-redis's own log lines (redis.SetLogger) through a
// structured logger: each becomes one WARNING entry with
// "component":"go-redis", instead of a plain-text line on stderr among the
// JSON ones.
type RedisLogger struct {
	// Log receives the lines.
	Log *slog.Logger
}

// Printf logs one go-redis line.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	msg := strings.TrimPrefix(strings.TrimSpace(fmt.Sprintf(format, v...)), "redis: ")
	l.Log.WarnContext(ctx, msg, "component", "go-redis")
}
