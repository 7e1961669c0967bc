package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Kafka lines show each partition's committed offset, end offset and lag
// for the workers' group.
func TestStatusKafkaGolden(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "cdc.inventory.customers"), kfake.SeedTopics(1, "cdc.inventory.orders"))
	require.NoError(t, err)
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	ctx := context.Background()
	for p, n := range []int{5, 3} {
		for range n {
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "cdc.inventory.customers", Partition: int32(p), Value: []byte("{}")}).FirstErr())
		}
	}
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "cdc.inventory.orders", Value: []byte("{}")}).FirstErr())
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "cdc.inventory.customers", Partition: 0, At: 5})
	offs.Add(kadm.Offset{Topic: "cdc.inventory.customers", Partition: 1, At: 1})
	offs.Add(kadm.Offset{Topic: "cdc.inventory.orders", Partition: 0, At: 1})
	_, err = kadm.NewClient(cl).CommitOffsets(ctx, "cloudsql-cache", offs)
	require.NoError(t, err)

	const prefix = "cachectl-test-status-kafka:"
	sharedRedis(t, prefix)
	env := map[string]string{"CACHECTL_NOW": "2024-05-01T13:05:00Z", "KAFKA_BROKERS": strings.Join(c.ListenAddrs(), ",")}
	out, errOut, err := runCmd(t, env, "status", "-redis", testRedisURL, "-prefix", prefix)
	require.NoError(t, err, errOut)
	golden(t, "status", "kafka", out)

	_, _, err = runCmd(t, map[string]string{"KAFKA_SASL": "kerberos"}, "status", "-redis", testRedisURL, "-prefix", prefix, "-kafka", c.ListenAddrs()[0])
	assert.ErrorContains(t, err, "status: kafka")
}
