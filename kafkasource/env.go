package kafkasource

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ConfigFromEnv reads the worker's Kafka variables (DESIGN "Worker
// configuration"): KAFKA_BROKERS, KAFKA_TOPICS or KAFKA_TOPIC_REGEX,
// KAFKA_GROUP, KAFKA_MAX_BATCH, KAFKA_COMMIT_INTERVAL,
// KAFKA_SESSION_TIMEOUT, and the security
// ones (SecurityFromEnv).
// The DLQ topic (KAFKA_DLQ_TOPIC) is the caller's: it picks the parker.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		Brokers:    splitList(getenv("KAFKA_BROKERS")),
		Topics:     splitList(getenv("KAFKA_TOPICS")),
		TopicRegex: getenv("KAFKA_TOPIC_REGEX"),
		Group:      getenv("KAFKA_GROUP"),
		Security:   SecurityFromEnv(getenv),
	}
	if len(cfg.Brokers) == 0 {
		return cfg, errors.New("KAFKA_BROKERS: required with DELIVERY=kafka (host:port,...)")
	}
	switch {
	case len(cfg.Topics) > 0 && cfg.TopicRegex != "":
		return cfg, errors.New("KAFKA_TOPIC_REGEX: set it or KAFKA_TOPICS, not both")
	case len(cfg.Topics) == 0 && cfg.TopicRegex == "":
		return cfg, errors.New("KAFKA_TOPICS: required with DELIVERY=kafka, unless KAFKA_TOPIC_REGEX is set")
	case cfg.TopicRegex != "":
		if _, err := regexp.Compile(cfg.TopicRegex); err != nil {
			return cfg, fmt.Errorf("KAFKA_TOPIC_REGEX: %w", err)
		}
	}
	if v := getenv("KAFKA_MAX_BATCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("KAFKA_MAX_BATCH: %q is not a positive number of records", v)
		}
		cfg.MaxBatch = n
	}
	if v := getenv("KAFKA_COMMIT_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < MinCommitInterval {
			return cfg, fmt.Errorf("KAFKA_COMMIT_INTERVAL: %q is not a duration of at least %s (such as 1s)", v, MinCommitInterval)
		}
		cfg.CommitInterval = d
	}
	if v := getenv("KAFKA_SESSION_TIMEOUT"); v != "" {
		// The broker bounds it too (group.min/max.session.timeout.ms,
		// 6 s and 30 min by default) and refuses the join outside them.
		d, err := time.ParseDuration(v)
		if err != nil || d < MinSessionTimeout {
			return cfg, fmt.Errorf("KAFKA_SESSION_TIMEOUT: %q is not a duration of at least %s (such as 10s)", v, MinSessionTimeout)
		}
		cfg.SessionTimeout = d
	}
	if err := cfg.Security.validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
