package kafkasource

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// fakeKafka is a kfake cluster with the topics' IDs (OffsetCommit v10
// names topics by ID) and a watch on every offset commit a client sends.
type fakeKafka struct {
	c     *kfake.Cluster
	addrs []string
	ids   map[[16]byte]string

	mu      sync.Mutex
	commits []commit                               // protected by mu
	check   func(topic string, p int32, off int64) // protected by mu; called per committed offset
}

type commit struct {
	topic     string
	partition int32
	offset    int64
}

func newFakeKafka(t *testing.T, partitions int32, topics ...string) *fakeKafka {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	fk := &fakeKafka{c: c, addrs: c.ListenAddrs(), ids: map[[16]byte]string{}}
	adm := kadm.NewClient(fk.client(t))
	td, err := adm.ListTopics(context.Background(), topics...)
	require.NoError(t, err)
	for _, d := range td {
		fk.ids[d.ID] = d.Topic
	}
	c.KeepControl()
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		fk.observe(req.(*kmsg.OffsetCommitRequest))
		return nil, nil, false // the cluster handles it as usual
	})
	return fk
}

func (fk *fakeKafka) observe(req *kmsg.OffsetCommitRequest) {
	fk.mu.Lock()
	defer fk.mu.Unlock()
	for _, t := range req.Topics {
		name := t.Topic
		if name == "" {
			name = fk.ids[t.TopicID]
		}
		for _, p := range t.Partitions {
			fk.commits = append(fk.commits, commit{name, p.Partition, p.Offset})
			if fk.check != nil {
				fk.check(name, p.Partition, p.Offset)
			}
		}
	}
}

// client returns a plain client of the cluster, closed with the test.
func (fk *fakeKafka) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(fk.addrs...),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// produce writes records (value nil = tombstone) to topic/partition and
// returns them with their offsets.
func produce(t *testing.T, cl *kgo.Client, topic string, partition int32, values ...[]byte) []*kgo.Record {
	t.Helper()
	return produceAt(t, cl, topic, partition, 0, values...)
}

// produceAt is produce with keys numbered from first, for records that
// follow ones produced earlier.
func produceAt(t *testing.T, cl *kgo.Client, topic string, partition int32, first int, values ...[]byte) []*kgo.Record {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: partition, Key: []byte(fmt.Sprintf(`{"id":%d}`, first+i)), Value: v}
	}
	require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
	return recs
}

// committed returns the group's committed offset of topic/partition (-1
// when none).
func committed(t *testing.T, cl *kgo.Client, group, topic string, partition int32) int64 {
	t.Helper()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		return -1 // GROUP_ID_NOT_FOUND until the group first commits
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		return -1
	}
	return o.At
}

// scripted is a Processor whose verdict per message a test chooses; it
// remembers which message IDs it finished (Ack or Parked).
type scripted struct {
	mu       sync.Mutex
	verdict  func(m pipeline.Message) pipeline.Verdict // protected by mu
	finished map[string]bool                           // protected by mu
	seen     map[string]int                            // protected by mu: calls per message ID
	calls    chan []pipeline.Message                   // optional: every call's messages
}

func newScripted(v func(pipeline.Message) pipeline.Verdict) *scripted {
	return &scripted{verdict: v, finished: map[string]bool{}, seen: map[string]int{}}
}

func (s *scripted) Process(_ context.Context, msgs []pipeline.Message) []pipeline.Verdict {
	out := make([]pipeline.Verdict, len(msgs))
	s.mu.Lock()
	for i, m := range msgs {
		out[i] = s.verdict(m)
		s.seen[m.ID]++
		if out[i] != pipeline.Retry {
			s.finished[m.ID] = true
		}
	}
	s.mu.Unlock()
	if s.calls != nil {
		s.calls <- msgs
	}
	return out
}

func (s *scripted) setVerdict(v func(pipeline.Message) pipeline.Verdict) {
	s.mu.Lock()
	s.verdict = v
	s.mu.Unlock()
}

func (s *scripted) isFinished(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished[id]
}

// startSource runs a source until the test ends (or stop is called).
func startSource(t *testing.T, cfg Config, p Processor) (src *Source, stop func()) {
	t.Helper()
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	cfg.CommitInterval = 100 * time.Millisecond
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Opts = append(cfg.Opts, kgo.HeartbeatInterval(50*time.Millisecond),
		kgo.SessionTimeout(2*time.Second), kgo.FetchMaxWait(50*time.Millisecond))
	src, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, p) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return src, stop
}
