package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cloudsql-cache/cloudsql-cache/kafkasource"
	"github.com/cloudsql-cache/cloudsql-cache/pushbridge"
)

// KafkaPartitions is the partitions of each topic of a Kafka run: more than
// one, so the worker commits and status shows offsets per partition.
const KafkaPartitions = 3

// KafkaCommitInterval is the worker's commit interval in a Kafka run, the
// shortest franz-go takes: the backlog is counted from committed offsets,
// and the producer holds back on it (KafkaMaxBacklog).
const KafkaCommitInterval = kafkasource.MinCommitInterval

// KafkaMaxBacklog is where the producer of a Kafka run holds back: the
// backlog includes what the worker finished since its last commit, so the
// push and pull runs' 300 would pace the run to 300 records a commit.
const KafkaMaxBacklog = 3000

// StartKafka starts an in-process Kafka (franz-go's kfake, speaking the
// Kafka protocol on a free port of 127.0.0.1) with the topics, each of
// partitions partitions, and opts; Close stops it.
func StartKafka(topics []string, partitions int32, opts ...kfake.Opt) (*kfake.Cluster, error) {
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka fake: %w", err)
	}
	return c, nil
}

// KafkaPublisher publishes messages as Kafka records, as Debezium's Kafka
// sink does: the Debezium key (the message's ordering key) as the record
// key, so one row's changes share a partition.
type KafkaPublisher struct {
	cl        *kgo.Client
	published atomic.Int64
}

// NewKafkaPublisher returns a publisher over cl (SeedBrokers set).
func NewKafkaPublisher(cl *kgo.Client) *KafkaPublisher { return &KafkaPublisher{cl: cl} }

// Publish produces msgs and returns their "topic/partition/offset" IDs.
func (p *KafkaPublisher) Publish(ctx context.Context, msgs []pushbridge.Message) ([]string, error) {
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = &kgo.Record{Topic: m.Topic, Value: m.Data}
		// Debezium's Kafka sink writes the record's headers, which its
		// Pub/Sub sink copies to attributes.
		for _, k := range slices.Sorted(maps.Keys(m.Attributes)) {
			recs[i].Headers = append(recs[i].Headers, kgo.RecordHeader{Key: k, Value: []byte(m.Attributes[k])})
		}
		if m.OrderingKey != "" {
			recs[i].Key = []byte(m.OrderingKey)
		}
	}
	err := p.cl.ProduceSync(ctx, recs...).FirstErr()
	// Counted even on error, as the Pub/Sub one counts: a record may be
	// in the log, and the backlog must not go negative.
	p.published.Add(int64(len(recs)))
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = kafkasource.MessageID(r)
	}
	return ids, nil
}

// Published counts the records produced.
func (p *KafkaPublisher) Published() int64 { return p.published.Load() }

// KafkaBacklog returns the records of topics not yet committed by group:
// the end offsets minus the committed ones (a partition without a commit
// counts from its start). A failed read of either is an error: the caller
// keeps its last count.
func KafkaBacklog(ctx context.Context, adm *kadm.Client, group string, topics ...string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, err
	}
	if err := ends.Error(); err != nil {
		return 0, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		// A group no member ever joined: nothing committed, all pending.
		committed = nil
	case err != nil:
		// Not "nothing committed": that reads the whole log as pending
		// and holds the producer back on a moment's failure.
		return 0, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	if err := committed.Error(); err != nil {
		return 0, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
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

// KafkaQueue is the Kafka of a Kafka run: the fake (kfake) on a port of
// 127.0.0.1 with the topics, KafkaPartitions each, and a producer keyed as
// Debezium's Kafka sink keys. The worker consumes the topics as the
// consumer group Group through KAFKA_BROKERS (Env). Its backlog is the
// group's lag: the records past the committed offsets, which never pass an
// unfinished record.
type KafkaQueue struct {
	*KafkaPublisher
	// Cluster is the fake; Group the workers' consumer group.
	Cluster *kfake.Cluster
	Group   string

	topics []string
	cl     *kgo.Client
	adm    *kadm.Client
	// pending is the last backlog read; a failed read keeps it, so a
	// moment of the fake not answering reads as no progress, not as idle.
	pending atomic.Int64
}

// StartKafkaQueue starts the fake with the topics, RejectTopic (a memcached
// run's dead-letter topic, KAFKA_DLQ_TOPIC; not in the backlog), the fake's
// opts, and a producer.
func StartKafkaQueue(topics []string, opts ...kfake.Opt) (*KafkaQueue, error) {
	c, err := StartKafka(append(slices.Clip(topics), RejectTopic), KafkaPartitions, opts...)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(0))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &KafkaQueue{KafkaPublisher: NewKafkaPublisher(cl), Cluster: c, Group: kafkasource.DefaultGroup,
		topics: topics, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Brokers is the fake's bootstrap address list, comma-separated.
func (q *KafkaQueue) Brokers() string { return strings.Join(q.Cluster.ListenAddrs(), ",") }

// Env is the worker's environment for this queue.
func (q *KafkaQueue) Env() []string {
	return []string{"DELIVERY=kafka", "KAFKA_BROKERS=" + q.Brokers(), "KAFKA_TOPICS=" + strings.Join(q.topics, ","),
		"KAFKA_GROUP=" + q.Group, "KAFKA_COMMIT_INTERVAL=" + KafkaCommitInterval.String()}
}

// Run has nothing to deliver (the worker consumes by itself); it returns
// when ctx ends.
func (q *KafkaQueue) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Stats returns the queue's counters: published, committed (Acked) and
// the group's lag (Pending). Kafka has no dead-letter topic of its own: a
// record is retried until it finishes, and parked ones are finished.
func (q *KafkaQueue) Stats() pushbridge.Stats {
	s, _ := q.stats()
	return s
}

// stats is Stats, and whether its backlog was read just now.
func (q *KafkaQueue) stats() (pushbridge.Stats, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := KafkaBacklog(ctx, q.adm, q.Group, q.topics...)
	if err == nil {
		q.pending.Store(n)
	}
	s := pushbridge.Stats{Published: q.Published(), Pending: q.pending.Load()}
	s.Acked = max(s.Published-s.Pending, 0) // a record is in the log a moment before it is counted
	return s, err == nil
}

// Idle reports whether every record produced is committed, by a backlog
// read just now (a kept count may predate the last records).
func (q *KafkaQueue) Idle() bool {
	s, fresh := q.stats()
	return fresh && s.Pending == 0
}

// Pause and Resume are no-ops: the worker counts an outcome before it
// commits, so once Idle its counters and the queue's agree.
func (q *KafkaQueue) Pause() {}

// Resume: see Pause.
func (q *KafkaQueue) Resume() {}

// ServeHTTP serves Stats as JSON, as the bridge does (for cachectl status).
func (q *KafkaQueue) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(q.Stats())
}

// Close closes the producer and stops the fake.
func (q *KafkaQueue) Close() error {
	q.cl.Close()
	q.Cluster.Close()
	return nil
}
