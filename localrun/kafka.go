package localrun

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cloudsql-cache/cloudsql-cache/kafkasource"
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
)

// StartKafka starts an in-process Kafka (franz-go's kfake, speaking the
// Kafka protocol on a free port of 127.0.0.1) with the topics, each of
// partitions partitions; Close stops it.
func StartKafka(topics []string, partitions int32) (*kfake.Cluster, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		return nil, fmt.Errorf("kafka fake: %w", err)
	}
	return c, nil
}

// KafkaPublisher publishes messages as Kafka records, as Debezium's Kafka
// sink does: the Debezium key (the message's ordering key) as the record
// key, so one row's changes share a partition.
type KafkaPublisher struct {
	cl *kgo.Client
}

// NewKafkaPublisher returns a publisher over cl (SeedBrokers set).
func NewKafkaPublisher(cl *kgo.Client) *KafkaPublisher { return &KafkaPublisher{cl: cl} }

// Publish produces msgs and returns their "topic/partition/offset" IDs.
func (p *KafkaPublisher) Publish(ctx context.Context, msgs []pushbridge.Message) ([]string, error) {
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = &kgo.Record{Topic: m.Topic, Value: m.Data}
		if m.OrderingKey != "" {
			recs[i].Key = []byte(m.OrderingKey)
		}
	}
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, err
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = kafkasource.MessageID(r)
	}
	return ids, nil
}

// KafkaBacklog returns the records of topics not yet committed by group:
// the end offsets minus the committed ones (a partition without a commit
// counts from its start).
func KafkaBacklog(ctx context.Context, adm *kadm.Client, group string, topics ...string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil && ctx.Err() != nil {
		return 0, err
	}
	// A group that never committed is not found: everything is pending.
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		pending := o.Offset
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.At >= 0 {
			pending -= c.At
		}
		n += max(pending, 0)
	})
	return n, nil
}
