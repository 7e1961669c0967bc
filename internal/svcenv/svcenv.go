// Package svcenv reads the settings the push function and the worker share
// (REDIS_URL, REDIS_CA_CERT, CACHE_CONFIG, CACHE_PREFIX, REJECT_TOPIC,
// SUMMARY_INTERVAL) and builds what they need from them: the Redis
// options, the cache config, the JSON logger and the summary log, the
// parker, and the store's lines on /metrics.
package svcenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"time"

	"cloud.google.com/go/logging"
	"github.com/redis/go-redis/v9"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/api/monitoredres"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/memcachestore"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
	"github.com/cloudsql-cache/cloudsql-cache/redisstore"
)

// Defaults of the shared settings.
const (
	DefaultRedisURL        = "redis://127.0.0.1:6379/0"
	DefaultSummaryInterval = time.Minute
)

var rejectTopic = regexp.MustCompile(`^projects/([^/]+)/topics/([^/]+)$`)

// RedisOptions parses REDIS_URL (default the local server) and applies
// REDIS_CA_CERT.
func RedisOptions(rawURL, caFile string) (*redis.Options, error) {
	if rawURL == "" {
		rawURL = DefaultRedisURL
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if caFile != "" {
		if opts.TLSConfig == nil {
			return nil, fmt.Errorf("REDIS_CA_CERT: set, but REDIS_URL %q does not use TLS (rediss://)", rawURL)
		}
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("REDIS_CA_CERT: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("REDIS_CA_CERT: no PEM certificate in %s", caFile)
		}
		opts.TLSConfig.RootCAs = pool
		opts.TLSConfig.MinVersion = tls.VersionTLS12
	}
	// Respect callers' deadlines, so a hung Redis turns into a retry in time.
	opts.ContextTimeoutEnabled = true
	return opts, nil
}

// CacheConfig loads CACHE_CONFIG (or the default) and applies CACHE_PREFIX
// and CACHE_SERVER_NAME (the Debezium server name for messages that name
// none), each when set.
func CacheConfig(path, prefix, server string) (*cdc.Config, error) {
	cfg := cdc.DefaultConfig()
	if path != "" {
		var err error
		if cfg, err = cdc.LoadConfig(path); err != nil {
			return nil, fmt.Errorf("CACHE_CONFIG: %w", err)
		}
	}
	if prefix != "" {
		cfg.Prefix = prefix
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("CACHE_PREFIX: %w", err)
		}
	}
	if server != "" {
		cfg.ServerName = server
	}
	return cfg, nil
}

// SummaryInterval parses SUMMARY_INTERVAL (default one minute).
func SummaryInterval(v string) (time.Duration, error) {
	if v == "" {
		return DefaultSummaryInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("SUMMARY_INTERVAL: %q is not a positive duration such as 60s", v)
	}
	return d, nil
}

// RejectTopic checks REJECT_TOPIC and returns its project ("" when unset).
func RejectTopic(topic string) (project string, err error) {
	if topic == "" {
		return "", nil
	}
	m := rejectTopic.FindStringSubmatch(topic)
	if m == nil {
		return "", fmt.Errorf("REJECT_TOPIC: %q is not projects/PROJECT/topics/TOPIC", topic)
	}
	return m[1], nil
}

// NewLogger returns a JSON slog logger whose lines Cloud Logging parses as
// structured entries: "message" for the text and "severity" for the level.
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.MessageKey:
				a.Key = "message"
			case slog.LevelKey:
				a.Key = "severity"
				if lvl, ok := a.Value.Any().(slog.Level); ok && lvl == slog.LevelWarn {
					a.Value = slog.StringValue("WARNING")
				}
			}
			return a
		},
	}))
}

// SummaryLog returns a logging client and the logger the periodic summaries
// go through, writing JSON lines to w. The client only formats entries
// (RedirectAsJSON): nothing is sent to the Logging API, so no credentials
// are needed; a fixed resource skips the metadata-server probe. Close the
// client when done.
func SummaryLog(ctx context.Context, project string, w io.Writer) (*logging.Client, *logging.Logger, error) {
	if project == "" {
		project = "cloudsql-cache"
	}
	c, err := logging.NewClient(ctx, "projects/"+project, option.WithoutAuthentication())
	if err != nil {
		return nil, nil, fmt.Errorf("logging client: %w", err)
	}
	return c, c.Logger("cloudsql-cache", logging.RedirectAsJSON(w),
		logging.CommonResource(&monitoredres.MonitoredResource{Type: "global"})), nil
}

// WriteStoreMetrics writes the Redis store's counters in the Prometheus
// text format: how well the apply path batches, and the faults that
// otherwise reach only the logs.
func WriteStoreMetrics(w io.Writer, st redisstore.Stats) error {
	return writeCounters(w, []counter{
		{"cdc_apply_calls_total", "Apply script calls (Redis commands) that carried changes.", st.ApplyPipelines},
		{"cdc_apply_call_changes_total", "Changes those calls carried; divided by cdc_apply_calls_total, the batch size.", st.ApplyCalls},
		{"cdc_restore_warnings_total", restoreHelp, st.RestoreWarnings},
		{"cdc_truncate_errors_total", "Truncates abandoned after retries.", st.TruncateErrors},
		{"cdc_checkpoint_errors_total", checkpointHelp, st.CheckpointErrors},
	})
}

// WriteMemcacheStoreMetrics is WriteStoreMetrics for the memcached store,
// whose compare-and-swap races take the place of the truncate errors.
func WriteMemcacheStoreMetrics(w io.Writer, st memcachestore.Stats) error {
	return writeCounters(w, []counter{
		{"cdc_apply_calls_total", "Read-then-write rounds (one pipelined round trip of reads and one of writes per node) that carried changes.", st.ApplyPipelines},
		{"cdc_apply_call_changes_total", "Changes those rounds carried; divided by cdc_apply_calls_total, the batch size.", st.ApplyCalls},
		{"cdc_restore_warnings_total", restoreHelp, st.RestoreWarnings},
		{"cdc_cas_races_total", "Compare-and-swap writes that lost to another writer and were read again.", st.Races},
		{"cdc_cas_exhausted_total", "Changes that lost every compare-and-swap attempt (retried by redelivery).", st.Exhausted},
		{"cdc_checkpoint_errors_total", checkpointHelp, st.CheckpointErrors},
	})
}

const (
	restoreHelp    = "Changes far below the checkpoint from another MySQL server_id: a restored database or a repointed Debezium."
	checkpointHelp = "Failed checkpoint writes (each is retried)."
)

type counter struct {
	name, help string
	v          int64
}

func writeCounters(w io.Writer, cs []counter) error {
	p := metrics.NewPromWriter(w)
	for _, c := range cs {
		p.Family(c.name, "counter", c.help)
		p.Counter(c.name, uint64(c.v))
	}
	return p.Flush()
}
