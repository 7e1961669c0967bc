package kafkasource

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cfg, err := ConfigFromEnv(env(map[string]string{
		"KAFKA_BROKERS": "a:9092, b:9092", "KAFKA_TOPICS": "cdc.db.t1,cdc.db.t2", "KAFKA_GROUP": "g", "KAFKA_MAX_BATCH": "250",
		"KAFKA_COMMIT_INTERVAL": "250ms", "KAFKA_SESSION_TIMEOUT": "10s",
	}))
	require.NoError(t, err)
	assert.Equal(t, []string{"a:9092", "b:9092"}, cfg.Brokers)
	assert.Equal(t, []string{"cdc.db.t1", "cdc.db.t2"}, cfg.Topics)
	assert.Equal(t, "g", cfg.Group)
	assert.Equal(t, 250, cfg.MaxBatch)
	assert.Equal(t, 250*time.Millisecond, cfg.CommitInterval)
	assert.Equal(t, 10*time.Second, cfg.SessionTimeout)
	assert.Equal(t, Security{}, cfg.Security)

	cfg, err = ConfigFromEnv(env(map[string]string{"KAFKA_BROKERS": "a:9092", "KAFKA_TOPIC_REGEX": `cdc\..*`,
		"KAFKA_TLS": "1", "KAFKA_SASL": "PLAIN", "KAFKA_USER": "u", "KAFKA_PASSWORD": "p"}))
	require.NoError(t, err)
	assert.Equal(t, `cdc\..*`, cfg.TopicRegex)
	assert.Equal(t, Security{TLS: true, SASL: SASLPlain, User: "u", Password: "p"}, cfg.Security)

	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KAFKA_TOPICS": "t"}, "KAFKA_BROKERS: required"},
		{map[string]string{"KAFKA_BROKERS": "a:1"}, "KAFKA_TOPICS: required"},
		{map[string]string{"KAFKA_BROKERS": "a:1", "KAFKA_TOPICS": "t", "KAFKA_TOPIC_REGEX": "t"}, "not both"},
		{map[string]string{"KAFKA_BROKERS": "a:1", "KAFKA_TOPICS": "t", "KAFKA_MAX_BATCH": "0"}, "KAFKA_MAX_BATCH"},
		{map[string]string{"KAFKA_BROKERS": "a:1", "KAFKA_TOPICS": "t", "KAFKA_COMMIT_INTERVAL": "20ms"}, "KAFKA_COMMIT_INTERVAL"},
		{map[string]string{"KAFKA_BROKERS": "a:1", "KAFKA_TOPICS": "t", "KAFKA_SESSION_TIMEOUT": "100ms"}, "KAFKA_SESSION_TIMEOUT"},
		{map[string]string{"KAFKA_BROKERS": "a:1", "KAFKA_TOPICS": "t", "KAFKA_SESSION_TIMEOUT": "soon"}, "KAFKA_SESSION_TIMEOUT"},
		{map[string]string{"KAFKA_BROKERS": "a:1", "KAFKA_TOPICS": "t", "KAFKA_SASL": "gssapi"}, "KAFKA_SASL:"},
	} {
		_, err := ConfigFromEnv(env(c.env))
		assert.ErrorContains(t, err, c.want, "%v", c.env)
	}
}
