// Package worker is the long-running cloudsql-cache process for high volume
// (worker/cmd, one process per Cloud Run worker-pool instance): a queue
// transport (DELIVERY=pull: Pub/Sub streaming pull; DELIVERY=kafka: a Kafka
// consumer group) feeding the batch core, which applies to the cache store
// (CACHE_BACKEND=redis, or memcached). It serves /metrics and /healthz on
// PORT, logs the per-table summaries like the push function, and on SIGTERM
// drains: it stops receiving, finishes the batches in flight, acknowledges
// them and flushes the checkpoint.
package worker

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/internal/svcenv"
	"github.com/cloudsql-cache/cloudsql-cache/kafkasource"
	"github.com/cloudsql-cache/cloudsql-cache/pubsubpull"
)

// The values of DELIVERY and CACHE_BACKEND.
const (
	DeliveryPull  = "pull"
	DeliveryKafka = "kafka"

	BackendRedis     = "redis"
	BackendMemcached = "memcached"
)

// DefaultPort is where /metrics and /healthz are served.
const DefaultPort = "8080"

var subscriptionName = regexp.MustCompile(`^projects/([^/]+)/subscriptions/([^/]+)$`)

// Config is the worker's configuration, read from the environment by
// FromEnv.
type Config struct {
	// Port serves /metrics and /healthz ("0": any free port).
	Port string
	// Delivery is DeliveryPull or DeliveryKafka.
	Delivery string
	// Backend is BackendRedis or BackendMemcached.
	Backend string

	// Redis is the store's (and the default parker's) Redis.
	Redis *redis.Options
	// MemcacheAddrs are the memcached nodes (Backend memcached).
	MemcacheAddrs []string
	// Cache is the tables' configuration and the key prefix.
	Cache *cdc.Config
	// RejectTopic (projects/P/topics/T) parks rejected messages on Pub/Sub
	// instead of the Redis stream; RejectProject is its P.
	RejectTopic, RejectProject string
	// SummaryInterval is how often the per-table summary is logged.
	SummaryInterval time.Duration

	// Pull is the DELIVERY=pull settings.
	Pull PullConfig
	// Kafka is the DELIVERY=kafka settings.
	Kafka KafkaConfig
}

// KafkaConfig is the Kafka transport's settings.
type KafkaConfig struct {
	// Source is the consumer group: brokers, topics or regex, group,
	// batch size, TLS and SASL.
	Source kafkasource.Config
	// DLQTopic (KAFKA_DLQ_TOPIC) parks rejected messages in Kafka; empty:
	// the reject topic or the Redis stream.
	DLQTopic string
}

// PullConfig is the streaming-pull transport's settings.
type PullConfig struct {
	// Subscriptions are full names, projects/P/subscriptions/S.
	Subscriptions []string
	// Project is the project of the first subscription (the client's).
	Project string
	// EmulatorHost is PUBSUB_EMULATOR_HOST: host:port of a fake Pub/Sub,
	// reached without TLS or credentials.
	EmulatorHost string
	// MaxOutstanding is PULL_MAX_OUTSTANDING.
	MaxOutstanding int
}

// FromEnv reads the configuration:
//
//	DELIVERY              pull | kafka (required)
//	CACHE_BACKEND         redis (default) | memcached
//	PORT                  /metrics and /healthz, default 8080
//	REDIS_URL             redis://host:6379/0 or rediss:// (TLS), default redis://127.0.0.1:6379/0
//	REDIS_CA_CERT         PEM file of the CA of the Redis server certificate (rediss://)
//	MEMCACHE_ADDRS        host:port,... (CACHE_BACKEND=memcached)
//	CACHE_CONFIG          YAML config file; none: every table, replicate mode
//	CACHE_PREFIX          key prefix, overrides the file's
//	CACHE_SERVER_NAME     Debezium server name for compact rows, overrides the file's server_name
//	REJECT_TOPIC          projects/P/topics/T: park rejects there instead of the Redis stream
//	SUMMARY_INTERVAL      how often the per-table summary is logged, default 1m
//	PUBSUB_SUBSCRIPTIONS  projects/P/subscriptions/S,... (DELIVERY=pull, required)
//	PUBSUB_EMULATOR_HOST  host:port of a fake Pub/Sub (local runs and tests)
//	PULL_MAX_OUTSTANDING  messages received and not yet acknowledged, per subscription, default 5000
//	KAFKA_BROKERS         host:port,... (DELIVERY=kafka, required)
//	KAFKA_TOPICS          topics to consume, comma-separated; or
//	KAFKA_TOPIC_REGEX     a regular expression every consumed topic's whole name matches
//	KAFKA_GROUP           consumer group, default cloudsql-cache
//	KAFKA_MAX_BATCH       records per core call, default 1000
//	KAFKA_COMMIT_INTERVAL how often offsets are committed (the checkpoint written first), default 1s, at least 100ms
//	KAFKA_SESSION_TIMEOUT how long the group waits for a silent member before moving its partitions, default 45s
//	KAFKA_TLS             1: TLS (Managed Kafka); KAFKA_CA_CERT: PEM file of a private CA
//	KAFKA_SASL            none (default) | plain (KAFKA_USER, KAFKA_PASSWORD) | oauthbearer (Google credentials)
//	KAFKA_DLQ_TOPIC       park rejected messages in this Kafka topic
//
// A bad setting is an error naming the variable.
func FromEnv(getenv func(string) string) (Config, error) {
	var (
		c   Config
		err error
	)
	c.Port = firstNonEmpty(getenv("PORT"), DefaultPort)
	if n, err := strconv.Atoi(c.Port); err != nil || n < 0 || n > 65535 {
		return c, fmt.Errorf("PORT: %q is not a TCP port number", c.Port)
	}
	c.Delivery = getenv("DELIVERY")
	switch c.Delivery {
	case DeliveryPull, DeliveryKafka:
	case "":
		return c, fmt.Errorf("DELIVERY: not set; %s or %s", DeliveryPull, DeliveryKafka)
	default:
		return c, fmt.Errorf("DELIVERY: %q is neither %s nor %s", c.Delivery, DeliveryPull, DeliveryKafka)
	}
	c.Backend = firstNonEmpty(getenv("CACHE_BACKEND"), BackendRedis)
	switch c.Backend {
	case BackendRedis:
	case BackendMemcached:
		c.MemcacheAddrs = splitList(getenv("MEMCACHE_ADDRS"))
		if len(c.MemcacheAddrs) == 0 {
			return c, fmt.Errorf("MEMCACHE_ADDRS: required with CACHE_BACKEND=memcached")
		}
	default:
		return c, fmt.Errorf("CACHE_BACKEND: %q is neither %s nor %s", c.Backend, BackendRedis, BackendMemcached)
	}
	if c.Redis, err = svcenv.RedisOptions(getenv("REDIS_URL"), getenv("REDIS_CA_CERT")); err != nil {
		return c, err
	}
	if c.Cache, err = svcenv.CacheConfig(getenv("CACHE_CONFIG"), getenv("CACHE_PREFIX"), getenv("CACHE_SERVER_NAME")); err != nil {
		return c, err
	}
	if c.SummaryInterval, err = svcenv.SummaryInterval(getenv("SUMMARY_INTERVAL")); err != nil {
		return c, err
	}
	c.RejectTopic = getenv("REJECT_TOPIC")
	if c.RejectProject, err = svcenv.RejectTopic(c.RejectTopic); err != nil {
		return c, err
	}
	switch c.Delivery {
	case DeliveryPull:
		c.Pull, err = pullFromEnv(getenv)
	case DeliveryKafka:
		c.Kafka.Source, err = kafkasource.ConfigFromEnv(getenv)
		c.Kafka.DLQTopic = getenv("KAFKA_DLQ_TOPIC")
	}
	return c, err
}

func pullFromEnv(getenv func(string) string) (PullConfig, error) {
	p := PullConfig{EmulatorHost: getenv("PUBSUB_EMULATOR_HOST"), MaxOutstanding: pubsubpull.DefaultMaxOutstanding}
	p.Subscriptions = splitList(getenv("PUBSUB_SUBSCRIPTIONS"))
	if len(p.Subscriptions) == 0 {
		return p, fmt.Errorf("PUBSUB_SUBSCRIPTIONS: required with DELIVERY=pull (projects/P/subscriptions/S,...)")
	}
	for _, s := range p.Subscriptions {
		m := subscriptionName.FindStringSubmatch(s)
		if m == nil {
			return p, fmt.Errorf("PUBSUB_SUBSCRIPTIONS: %q is not projects/PROJECT/subscriptions/SUBSCRIPTION", s)
		}
		if p.Project == "" {
			p.Project = m[1]
		}
	}
	if v := getenv("PULL_MAX_OUTSTANDING"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return p, fmt.Errorf("PULL_MAX_OUTSTANDING: %q is not a positive number of messages", v)
		}
		p.MaxOutstanding = n
	}
	return p, nil
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
