// Package kafkasource is the Kafka transport of cloudsql-cache: a consumer
// group (franz-go) over the Debezium topics that hands fetched records to the
// batch core in batches and commits offsets only behind finished work.
//
// The guarantees, per partition:
//   - an offset is committed only up to the last record whose change the core
//     finished (applied, stale, ignored or parked), never past an unfinished
//     one, so a crash at any moment redelivers from the first unfinished
//     record (versions make the redelivered duplicates harmless);
//   - and only once the effects of those records are durable (Config.Durable:
//     the store writes its checkpoint first), since a committed record is
//     never delivered again to finish what it left unwritten;
//   - records the core could not apply (Retry: cache down, timeouts) are
//     retried with exponential backoff, without fetching further, until they
//     finish, the partition is revoked, or the source stops;
//   - on a rebalance a revoked partition finishes the core call in flight,
//     abandons the retries it still has, commits what it finished and is
//     released; a lost partition (the member was fenced) commits nothing;
//   - a record with a null value (Debezium's delete tombstone, meant for log
//     compaction) is finished without reaching the core.
package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// Processor is the batch core: verdicts[i] belongs to msgs[i].
// *pipeline.Core implements it.
type Processor interface {
	Process(ctx context.Context, msgs []pipeline.Message) []pipeline.Verdict
}

// DefaultGroup is the consumer group when Config.Group is empty.
const DefaultGroup = "cloudsql-cache"

// Defaults of Config's tunables.
const (
	DefaultMaxBatch       = 1000
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultCommitInterval = time.Second
	// MinCommitInterval is the shortest CommitInterval franz-go accepts.
	MinCommitInterval = 100 * time.Millisecond
	// MinSessionTimeout is the shortest SessionTimeout ConfigFromEnv
	// accepts: a third of it is the heartbeat interval.
	MinSessionTimeout = 300 * time.Millisecond
)

// Config configures a Source. Brokers and Topics or TopicRegex are required.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topics are the topics to consume; TopicRegex, when set instead, is a
	// regular expression matched against every topic name (anchored here:
	// it must match the whole name), so tables added later are picked up.
	Topics     []string
	TopicRegex string
	// Group is the consumer group; default DefaultGroup.
	Group string
	// MaxBatch bounds the records handed to the core in one Process call;
	// default DefaultMaxBatch.
	MaxBatch int
	// MinBackoff and MaxBackoff bound the wait between retries of records
	// the core answered Retry (doubling, with jitter).
	MinBackoff, MaxBackoff time.Duration
	// CommitInterval is how often finished offsets are committed in the
	// background (they are also committed on revoke and on stop).
	CommitInterval time.Duration
	// Durable, when set, makes the effects of every record the core has
	// finished so far durable (the store writes its checkpoint now); it is
	// called before offsets are committed, and an error holds the commit
	// back until a later call succeeds.
	Durable func(ctx context.Context) error
	// SessionTimeout is the group session timeout: how long the group
	// waits for a member that stopped heartbeating (killed, partitioned)
	// before its partitions move; default franz-go's 45 s. The heartbeat
	// interval is a third of it, at most franz-go's 3 s.
	SessionTimeout time.Duration
	// Security is TLS and SASL; New turns it into client options (for
	// oauthbearer it finds the Google credentials then).
	Security Security
	// Opts are more client options (timeouts, tests' tuning).
	Opts []kgo.Opt
	// Logger gets rebalances, commit failures and retry episodes (never a
	// line per record); default slog.Default().
	Logger *slog.Logger
}

// Source consumes the Debezium topics as one member of a consumer group.
type Source struct {
	cl       *kgo.Client
	log      *slog.Logger
	maxBatch int
	minBack  time.Duration
	maxBack  time.Duration

	// procMu is held while a batch is being worked on (a core call in
	// flight, verdicts being recorded), and released during retry backoff,
	// so a revoke waits for a core call to return but not for a backoff.
	// It protects cur and owned.
	procMu sync.Mutex
	cur    *batch
	owned  map[topicPartition]bool

	// markMu guards unmarked, the finished records not yet marked for
	// commit: they are marked only after durable succeeds (markDurable).
	markMu   sync.Mutex
	unmarked []*kgo.Record
	durable  func(ctx context.Context) error
	every    time.Duration // how often markDurable and a commit run

	lagMu sync.Mutex
	lag   map[topicPartition]*partitionLag // protected by lagMu

	stats     counters
	connected atomic.Bool
}

type topicPartition struct {
	topic     string
	partition int32
}

// partitionLag is what the source knows of one partition's position.
type partitionLag struct {
	highWatermark int64 // from the last fetch
	finished      int64 // offset after the last finished record (what is committed next)
}

// counters are the source's own totals (the core counts outcomes).
type counters struct {
	batches, records, tombstones, retries, abandoned, commitErrors atomic.Uint64
}

// New connects a group member (lazily: franz-go dials on first use).
func New(cfg Config) (*Source, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafkasource: no brokers")
	}
	s := &Source{
		log:      cfg.Logger,
		maxBatch: cfg.MaxBatch,
		minBack:  cfg.MinBackoff,
		maxBack:  cfg.MaxBackoff,
		owned:    make(map[topicPartition]bool),
		lag:      make(map[topicPartition]*partitionLag),
		durable:  cfg.Durable,
	}
	s.connected.Store(true)
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBatch <= 0 {
		s.maxBatch = DefaultMaxBatch
	}
	if s.minBack <= 0 {
		s.minBack = DefaultMinBackoff
	}
	if s.maxBack < s.minBack {
		s.maxBack = max(DefaultMaxBackoff, s.minBack)
	}
	group := cfg.Group
	if group == "" {
		group = DefaultGroup
	}
	commitEvery := cfg.CommitInterval
	if commitEvery <= 0 {
		commitEvery = DefaultCommitInterval
	}
	s.every = commitEvery
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(group),
		// Offsets are committed only for records marked finished.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(commitEvery),
		kgo.AutoCommitCallback(s.onCommit),
		// A new group reads each topic from its start: the snapshot is
		// there, and the cache must hold every row.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
	}
	if cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(cfg.SessionTimeout),
			kgo.HeartbeatInterval(min(3*time.Second, cfg.SessionTimeout/3)))
	}
	switch {
	case cfg.TopicRegex != "":
		re := "^(?:" + cfg.TopicRegex + ")$"
		if _, err := regexp.Compile(re); err != nil {
			return nil, fmt.Errorf("kafkasource: topic regex: %w", err)
		}
		opts = append(opts, kgo.ConsumeTopics(re), kgo.ConsumeRegex())
	case len(cfg.Topics) > 0:
		opts = append(opts, kgo.ConsumeTopics(cfg.Topics...))
	default:
		return nil, errors.New("kafkasource: no topics and no topic regex")
	}
	sec, err := cfg.Security.Opts(context.Background())
	if err != nil {
		return nil, fmt.Errorf("kafkasource: %w", err)
	}
	opts = append(append(opts, sec...), cfg.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkasource: %w", err)
	}
	s.cl = cl
	return s, nil
}

// Client returns the source's Kafka client (a DLQ parker produces with it).
func (s *Source) Client() *kgo.Client { return s.cl }

// Ping checks that a broker answers (for health checks).
func (s *Source) Ping(ctx context.Context) error { return s.cl.Ping(ctx) }

// DrainTimeout bounds how long Run lets the core call in flight finish
// after ctx ends (its changes are then committed); retries still pending
// are abandoned at once.
const DrainTimeout = 5 * time.Second

// Run consumes until ctx is done or the client fails for good, then
// finishes the core call in flight (DrainTimeout), commits what is
// finished, leaves the group and closes the client. Records of a batch
// still unfinished when ctx ends are not committed: the next member gets
// them again.
func (s *Source) Run(ctx context.Context, p Processor) error {
	defer s.close()
	// The core's context outlives ctx by DrainTimeout, so a stop does not
	// fail the store call in flight.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() { time.AfterFunc(DrainTimeout, cancelWork) })
	defer stopDrain()
	loopCtx, stopLoop := context.WithCancel(ctx)
	committerDone := make(chan struct{})
	go s.commitLoop(loopCtx, committerDone)
	defer func() { stopLoop(); <-committerDone }()
	var fetchErrs int
	for {
		fs := s.cl.PollRecords(ctx, s.maxBatch)
		if ctx.Err() != nil {
			return nil
		}
		if fs.IsClientClosed() {
			return errors.New("kafkasource: client closed")
		}
		failed := false
		fs.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			failed = true
			// franz-go retries fetches itself; one line per error episode.
			if fetchErrs++; fetchErrs == 1 || fetchErrs%100 == 0 {
				s.log.WarnContext(ctx, "kafka fetch failed", "topic", topic, "partition", partition,
					"err", err.Error(), "errors", fetchErrs)
			}
		})
		s.noteHighWatermarks(fs)
		recs := fs.Records()
		s.connected.Store(!failed || len(recs) > 0)
		if len(recs) == 0 {
			continue
		}
		fetchErrs = 0
		s.runBatch(ctx, work, p, recs)
	}
}

// Connected reports whether the last poll reached the brokers (true until a
// poll reports errors only).
func (s *Source) Connected() bool { return s.connected.Load() }

// close commits the finished offsets and leaves the group.
func (s *Source) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.commit(ctx); err != nil {
		s.log.Warn("kafka commit on stop failed", "err", err.Error())
	}
	s.cl.Close()
}

// commitLoop commits every CommitInterval until ctx ends (Run's own
// deferred close commits last). franz-go's autocommit loop, which commits
// whatever is marked, finds nothing new after it.
func (s *Source) commitLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	var failures int
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.commit(ctx)
		if err == nil || ctx.Err() != nil {
			failures = 0
			continue
		}
		// One line per failure episode (the cache down for a while).
		if failures++; failures == 1 || failures%100 == 0 {
			s.log.Warn("kafka commit failed", "err", err.Error(), "failures", failures)
		}
	}
}

// commit makes the finished records durable, marks them and commits the
// marked offsets.
func (s *Source) commit(ctx context.Context) error {
	if err := s.markDurable(ctx); err != nil {
		return err
	}
	if err := s.cl.CommitMarkedOffsets(ctx); err != nil {
		s.stats.commitErrors.Add(1)
		return err
	}
	return nil
}

// markDurable calls durable, then marks for commit the records that were
// finished before it was called. A failure keeps them unmarked (and
// counts as a commit error): their offsets wait for the next success.
func (s *Source) markDurable(ctx context.Context) error {
	s.markMu.Lock()
	defer s.markMu.Unlock()
	if len(s.unmarked) == 0 {
		return nil
	}
	if s.durable != nil {
		if err := s.durable(ctx); err != nil {
			s.stats.commitErrors.Add(1)
			return fmt.Errorf("effects not durable, offsets not committed: %w", err)
		}
	}
	s.cl.MarkCommitRecords(s.unmarked...)
	clear(s.unmarked)
	s.unmarked = s.unmarked[:0]
	return nil
}

// runBatch works one polled batch until every record is finished, or the
// records still unfinished belong to partitions this member no longer owns,
// or ctx ends.
func (s *Source) runBatch(ctx, work context.Context, p Processor, recs []*kgo.Record) {
	s.procMu.Lock()
	b := s.newBatch(recs)
	s.cur = b
	back := s.minBack
	for attempt := 1; ; attempt++ {
		if len(b.pending) > 0 {
			msgs := b.messages(attempt)
			verdicts := p.Process(work, msgs)
			b.record(verdicts)
		}
		s.markFinished(b)
		if len(b.pending) == 0 {
			break
		}
		if attempt == 1 || attempt%20 == 0 {
			s.log.WarnContext(ctx, "kafka batch: records to retry", "records", len(b.pending),
				"attempt", attempt, "backoff", back.String())
		}
		s.stats.retries.Add(uint64(len(b.pending)))
		s.procMu.Unlock()
		wait := back/2 + rand.N(back/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			s.procMu.Lock()
			s.stats.abandoned.Add(uint64(len(b.pending)))
			s.cur = nil
			s.procMu.Unlock()
			return
		case <-t.C:
		}
		back = min(2*back, s.maxBack)
		s.procMu.Lock()
	}
	s.cur = nil
	s.procMu.Unlock()
}

// newBatch builds a batch from polled records, dropping records of
// partitions no longer owned (polled before a revoke completed) and
// finishing tombstones at once. Called with procMu held.
func (s *Source) newBatch(recs []*kgo.Record) *batch {
	b := &batch{recs: recs[:0:0], done: nil}
	for _, r := range recs {
		if !s.owned[topicPartition{r.Topic, r.Partition}] {
			continue
		}
		b.recs = append(b.recs, r)
	}
	b.done = make([]bool, len(b.recs))
	b.pending = make([]int, 0, len(b.recs))
	for i, r := range b.recs {
		if r.Value == nil {
			b.done[i] = true
			s.stats.tombstones.Add(1)
			continue
		}
		b.pending = append(b.pending, i)
	}
	s.stats.batches.Add(1)
	s.stats.records.Add(uint64(len(b.recs)))
	return b
}

// markFinished queues, per partition, the last record of the batch's
// leading run of finished records to be marked for commit (markDurable).
// Called with procMu held.
func (s *Source) markFinished(b *batch) {
	marks := b.finishedHeads()
	if len(marks) == 0 {
		return
	}
	s.markMu.Lock()
	s.unmarked = append(s.unmarked, marks...)
	s.markMu.Unlock()
	s.lagMu.Lock()
	for _, r := range marks {
		pl := s.lagOf(topicPartition{r.Topic, r.Partition})
		pl.finished = max(pl.finished, r.Offset+1)
	}
	s.lagMu.Unlock()
}

// onAssigned records newly owned partitions.
func (s *Source) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	s.procMu.Lock()
	for topic, parts := range assigned {
		for _, p := range parts {
			s.owned[topicPartition{topic, p}] = true
		}
	}
	s.procMu.Unlock()
	s.log.InfoContext(ctx, "kafka partitions assigned", "partitions", countPartitions(assigned))
}

// onRevoked waits for a core call in flight, abandons the revoked
// partitions' unfinished records (their offsets stay behind them), and
// commits what they finished before the partitions move on.
func (s *Source) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	abandoned := s.release(revoked)
	if err := s.commit(ctx); err != nil {
		s.log.WarnContext(ctx, "kafka commit on revoke failed", "err", err.Error())
	}
	if n := countPartitions(revoked); n > 0 {
		s.log.InfoContext(ctx, "kafka partitions revoked", "partitions", n, "abandoned_records", abandoned)
	}
}

// onLost is onRevoked without the commit: the member was fenced, so another
// member may own the partitions already and a commit would be refused.
func (s *Source) onLost(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
	abandoned := s.release(lost)
	if n := countPartitions(lost); n > 0 {
		s.log.WarnContext(ctx, "kafka partitions lost", "partitions", n, "abandoned_records", abandoned)
	}
}

// release forgets partitions and drops the current batch's unfinished
// records of them; it returns how many were dropped.
func (s *Source) release(parts map[string][]int32) int {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	gone := make(map[topicPartition]bool)
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			gone[tp] = true
			delete(s.owned, tp)
		}
	}
	s.lagMu.Lock()
	for tp := range gone {
		delete(s.lag, tp)
	}
	s.lagMu.Unlock()
	if s.cur == nil {
		return 0
	}
	n := s.cur.drop(gone)
	s.stats.abandoned.Add(uint64(n))
	return n
}

// onCommit counts background commit failures (a commit refused because of a
// rebalance is normal; the next commit or the next owner covers it).
func (s *Source) onCommit(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		s.stats.commitErrors.Add(1)
		s.log.Warn("kafka commit failed", "err", err.Error())
		return
	}
	if resp == nil {
		return
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				s.stats.commitErrors.Add(1)
			}
		}
	}
}

// noteHighWatermarks keeps each fetched partition's high watermark for Lag.
func (s *Source) noteHighWatermarks(fs kgo.Fetches) {
	s.lagMu.Lock()
	defer s.lagMu.Unlock()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil {
			return
		}
		pl := s.lagOf(topicPartition{p.Topic, p.Partition})
		pl.highWatermark = max(pl.highWatermark, p.HighWatermark)
		if len(p.Records) > 0 && pl.finished == 0 {
			// First fetch of the partition: what came before was committed.
			pl.finished = p.Records[0].Offset
		}
	})
}

// lagOf returns tp's entry, creating it; called with lagMu held.
func (s *Source) lagOf(tp topicPartition) *partitionLag {
	pl := s.lag[tp]
	if pl == nil {
		pl = &partitionLag{}
		s.lag[tp] = pl
	}
	return pl
}

// PartitionLag is the consumer lag of one owned partition as this member
// sees it. The JSON names are a contract: the worker logs one LagSummary
// per partition per interval, and Terraform's lag metric extracts them.
type PartitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// HighWatermark is the partition's end offset at the last fetch.
	HighWatermark int64 `json:"high_watermark"`
	// Finished is the offset after the last finished record: the offset
	// committed next (or already).
	Finished int64 `json:"finished"`
	// Lag is HighWatermark - Finished: records not yet finished.
	Lag int64 `json:"lag"`
}

// LagMessage is the "message" field of the lag log entries.
const LagMessage = "kafka partition lag"

// LagSummary is the payload of one lag log entry.
type LagSummary struct {
	Message string `json:"message"`
	PartitionLag
}

// LagSummaries returns one entry per owned partition, for the worker's
// periodic log.
func (s *Source) LagSummaries() []LagSummary {
	lags := s.Lag()
	out := make([]LagSummary, len(lags))
	for i, l := range lags {
		out[i] = LagSummary{Message: LagMessage, PartitionLag: l}
	}
	return out
}

// Lag returns the owned partitions' lag, sorted by topic and partition.
func (s *Source) Lag() []PartitionLag {
	s.lagMu.Lock()
	out := make([]PartitionLag, 0, len(s.lag))
	for tp, pl := range s.lag {
		out = append(out, PartitionLag{Topic: tp.topic, Partition: tp.partition,
			HighWatermark: pl.highWatermark, Finished: pl.finished,
			Lag: max(0, pl.highWatermark-pl.finished)})
	}
	s.lagMu.Unlock()
	sortLags(out)
	return out
}

// Stats are the source's totals since it started.
type Stats struct {
	// Batches and Records count polled batches and the records in them.
	Batches, Records uint64
	// Tombstones counts null-value records finished without the core.
	Tombstones uint64
	// Retries counts record retries (one per record per retry round).
	Retries uint64
	// Abandoned counts unfinished records dropped on revoke or stop.
	Abandoned uint64
	// CommitErrors counts failed offset commits.
	CommitErrors uint64
}

// Stats returns the source's totals.
func (s *Source) Stats() Stats {
	return Stats{
		Batches: s.stats.batches.Load(), Records: s.stats.records.Load(),
		Tombstones: s.stats.tombstones.Load(), Retries: s.stats.retries.Load(),
		Abandoned: s.stats.abandoned.Load(), CommitErrors: s.stats.commitErrors.Load(),
	}
}

func countPartitions(m map[string][]int32) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}

// MessageID is the message id of a Kafka record: "topic/partition/offset".
func MessageID(r *kgo.Record) string {
	return r.Topic + "/" + strconv.FormatInt(int64(r.Partition), 10) + "/" + strconv.FormatInt(r.Offset, 10)
}
