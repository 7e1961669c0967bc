package kafkasource

import (
	"cmp"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// batch is one polled batch being worked on. Records of one partition are
// in offset order, as franz-go returns them.
type batch struct {
	recs []*kgo.Record
	// done[i] is true once recs[i] is finished (its verdict was Ack or
	// Parked, or it is a tombstone) or dropped (its partition was revoked).
	done []bool
	// pending lists the indices of unfinished records still to hand to the
	// core, in batch order.
	pending []int
	// marked[tp] is the index of the last record already marked for commit
	// per partition, so a retry round marks only progress.
	marked map[topicPartition]int
	// gone holds the partitions revoked while the batch was in flight.
	gone map[topicPartition]bool
}

// messages returns the pending records as core messages.
func (b *batch) messages(attempt int) []pipeline.Message {
	msgs := make([]pipeline.Message, len(b.pending))
	for j, i := range b.pending {
		msgs[j] = message(b.recs[i], attempt)
	}
	return msgs
}

// message converts a record: headers become attributes.
func message(r *kgo.Record, attempt int) pipeline.Message {
	m := pipeline.Message{
		Data:        r.Value,
		Key:         r.Key,
		ID:          MessageID(r),
		Source:      r.Topic,
		PublishTime: r.Timestamp,
		Attempt:     attempt,
	}
	if len(r.Key) == 0 {
		m.Key = nil
	}
	if len(r.Headers) > 0 {
		m.Attributes = make(map[string]string, len(r.Headers))
		for _, h := range r.Headers {
			m.Attributes[h.Key] = string(h.Value)
		}
	}
	return m
}

// record applies the core's verdicts for the pending records (verdicts[j]
// belongs to pending[j]) and keeps only those answered Retry pending. A
// short or missing verdict list leaves the records pending: the core
// promised one verdict per message, and an unanswered record must not be
// committed.
func (b *batch) record(verdicts []pipeline.Verdict) {
	still := b.pending[:0]
	for j, i := range b.pending {
		if j < len(verdicts) && (verdicts[j] == pipeline.Ack || verdicts[j] == pipeline.Parked) {
			b.done[i] = true
			continue
		}
		still = append(still, i)
	}
	b.pending = still
}

// drop gives up the unfinished records of the given partitions (they were
// revoked: the next owner gets them again from the committed offset, which
// is behind them) and returns how many it dropped. Their leading finished
// records were marked before; nothing of theirs is marked after.
func (b *batch) drop(gone map[topicPartition]bool) int {
	if b.gone == nil {
		b.gone = make(map[topicPartition]bool)
	}
	for tp := range gone {
		b.gone[tp] = true
	}
	still := b.pending[:0]
	for _, i := range b.pending {
		r := b.recs[i]
		if !gone[topicPartition{r.Topic, r.Partition}] {
			still = append(still, i)
		}
	}
	n := len(b.pending) - len(still)
	b.pending = still
	return n
}

// finishedHeads returns, per partition, the last record of the leading run
// of finished records, when it moved since the last call.
func (b *batch) finishedHeads() []*kgo.Record {
	if b.marked == nil {
		b.marked = make(map[topicPartition]int)
	}
	heads := make(map[topicPartition]int)
	blocked := make(map[topicPartition]bool)
	for i, r := range b.recs {
		tp := topicPartition{r.Topic, r.Partition}
		if blocked[tp] || b.gone[tp] {
			continue
		}
		if !b.done[i] {
			blocked[tp] = true
			continue
		}
		heads[tp] = i
	}
	var out []*kgo.Record
	for tp, i := range heads {
		if prev, ok := b.marked[tp]; ok && prev >= i {
			continue
		}
		b.marked[tp] = i
		out = append(out, b.recs[i])
	}
	return out
}

func sortLags(ls []PartitionLag) {
	slices.SortFunc(ls, func(a, b PartitionLag) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}
