package kafkasource

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	ctx := context.Background()
	cfg, err := ConfigFromEnv(ctx, env(map[string]string{
		"KAFKA_BROKERS": "a:9092, b:9092", "KAFKA_TOPICS": "cdc.db.t1,cdc.db.t2", "KAFKA_GROUP": "g", "KAFKA_MAX_BATCH": "250",
	}))
	require.NoError(t, err)
	assert.Equal(t, []string{"a:9092", "b:9092"}, cfg.Brokers)
	assert.Equal(t, []string{"cdc.db.t1", "cdc.db.t2"}, cfg.Topics)
	assert.Equal(t, "g", cfg.Group)
	assert.Equal(t, 250, cfg.MaxBatch)
	assert.Empty(t, cfg.Opts)

	cfg, err = ConfigFromEnv(ctx, env(map[string]string{"KAFKA_BROKERS": "a:9092", "KAFKA_TOPIC_REGEX": `cdc\..*`,
		"KAFKA_TLS": "1", "KAFKA_SASL": "PLAIN", "KAFKA_USER": "u", "KAFKA_PASSWORD": "p"}))
	require.NoError(t, err)
	assert.Equal(t, `cdc\..*`, cfg.TopicRegex)
	assert.Len(t, cfg.Opts, 2, "TLS and SASL options")

	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KAFKA_TOPICS": "t"}, "KAFKA_BROKERS is required"},
		{map[string]string{"KAFKA_BROKERS": "a:1"}, "KAFKA_TOPICS or KAFKA_TOPIC_REGEX is required"},
		{map[string]string{"KAFKA_BROKERS": "a:1", "KAFKA_TOPICS": "t", "KAFKA_TOPIC_REGEX": "t"}, "not both"},
		{map[string]string{"KAFKA_BROKERS": "a:1", "KAFKA_TOPICS": "t", "KAFKA_MAX_BATCH": "0"}, "KAFKA_MAX_BATCH"},
		{map[string]string{"KAFKA_BROKERS": "a:1", "KAFKA_TOPICS": "t", "KAFKA_SASL": "gssapi"}, "want none, plain or oauthbearer"},
	} {
		_, err := ConfigFromEnv(ctx, env(c.env))
		assert.ErrorContains(t, err, c.want, "%v", c.env)
	}
}
