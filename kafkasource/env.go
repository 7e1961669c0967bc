package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ConfigFromEnv reads the worker's Kafka variables (DESIGN "Worker
// configuration"): KAFKA_BROKERS, KAFKA_TOPICS or KAFKA_TOPIC_REGEX,
// KAFKA_GROUP, KAFKA_MAX_BATCH, and the security ones (SecurityFromEnv).
// The DLQ topic (KAFKA_DLQ_TOPIC) is the caller's: it picks the parker.
func ConfigFromEnv(ctx context.Context, getenv func(string) string) (Config, error) {
	cfg := Config{
		Brokers:    splitList(getenv("KAFKA_BROKERS")),
		Topics:     splitList(getenv("KAFKA_TOPICS")),
		TopicRegex: getenv("KAFKA_TOPIC_REGEX"),
		Group:      getenv("KAFKA_GROUP"),
	}
	if len(cfg.Brokers) == 0 {
		return cfg, errors.New("KAFKA_BROKERS is required with DELIVERY=kafka")
	}
	switch {
	case len(cfg.Topics) > 0 && cfg.TopicRegex != "":
		return cfg, errors.New("set KAFKA_TOPICS or KAFKA_TOPIC_REGEX, not both")
	case len(cfg.Topics) == 0 && cfg.TopicRegex == "":
		return cfg, errors.New("KAFKA_TOPICS or KAFKA_TOPIC_REGEX is required with DELIVERY=kafka")
	}
	if v := getenv("KAFKA_MAX_BATCH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("KAFKA_MAX_BATCH %q: want a positive integer", v)
		}
		cfg.MaxBatch = n
	}
	opts, err := SecurityFromEnv(getenv).Opts(ctx)
	if err != nil {
		return cfg, err
	}
	cfg.Opts = opts
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
