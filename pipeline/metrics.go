package pipeline

import (
	"context"
	"io"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/logging"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
)

// unknownTable labels messages whose table could not be decoded.
const unknownTable = "unknown"

// Metrics holds the handler's counters and histograms by table. Cumulative
// since start; safe for concurrent use.
type Metrics struct {
	mu     sync.RWMutex
	tables map[string]*TableMetrics // guarded by mu; entries are never removed
}

// TableMetrics are one table's counters and latency histograms.
type TableMetrics struct {
	// Outcomes counts messages by cdc.Outcome.
	Outcomes [cdc.NumOutcomes]metrics.Counter
	// CommitLag is now - source.ts_ms (MySQL commit, 1 s resolution).
	CommitLag metrics.Histogram
	// PipelineLag is now - the envelope's ts_ms (when Debezium processed it).
	PipelineLag metrics.Histogram
	// Queue is now - the Pub/Sub publish time.
	Queue metrics.Histogram
	// Apply is the duration of the store call.
	Apply metrics.Histogram
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{tables: map[string]*TableMetrics{}}
}

// Table returns the metrics of a table ("db.table"), creating them on first
// use. "" (a message with no table: heartbeats, transaction markers,
// messages that did not decode) is counted under the label "unknown".
func (m *Metrics) Table(name string) *TableMetrics {
	if name == "" {
		name = unknownTable
	}
	m.mu.RLock()
	t := m.tables[name]
	m.mu.RUnlock()
	if t != nil {
		return t
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t = m.tables[name]; t == nil {
		t = new(TableMetrics)
		m.tables[name] = t
	}
	return t
}

// TableSnapshot is a copy of one table's metrics (or of all tables summed).
type TableSnapshot struct {
	// Outcomes are the message counts by cdc.Outcome.
	Outcomes [cdc.NumOutcomes]uint64
	// CommitLag, PipelineLag, Queue and Apply are the histograms of
	// TableMetrics' fields of the same names.
	CommitLag, PipelineLag, Queue, Apply metrics.HistogramSnapshot
}

// Sub returns what happened between prev and s (s taken later).
func (s *TableSnapshot) Sub(prev *TableSnapshot) TableSnapshot {
	var d TableSnapshot
	for i := range s.Outcomes {
		d.Outcomes[i] = s.Outcomes[i] - prev.Outcomes[i]
	}
	d.CommitLag = s.CommitLag.Sub(&prev.CommitLag)
	d.PipelineLag = s.PipelineLag.Sub(&prev.PipelineLag)
	d.Queue = s.Queue.Sub(&prev.Queue)
	d.Apply = s.Apply.Sub(&prev.Apply)
	return d
}

// Messages returns the number of messages counted, all outcomes.
func (s *TableSnapshot) Messages() uint64 {
	var n uint64
	for _, c := range s.Outcomes {
		n += c
	}
	return n
}

func (t *TableMetrics) snapshot() TableSnapshot {
	var s TableSnapshot
	for i := range t.Outcomes {
		s.Outcomes[i] = t.Outcomes[i].Load()
	}
	s.CommitLag = t.CommitLag.Snapshot()
	s.PipelineLag = t.PipelineLag.Snapshot()
	s.Queue = t.Queue.Snapshot()
	s.Apply = t.Apply.Snapshot()
	return s
}

// Tables returns a snapshot of every table's metrics.
func (m *Metrics) Tables() map[string]TableSnapshot {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]TableSnapshot, len(m.tables))
	for name, t := range m.tables {
		out[name] = t.snapshot()
	}
	return out
}

// Total returns all tables summed: totals per outcome and the overall lag
// histograms (for a progress line; Sub two of them for recent quantiles).
func (m *Metrics) Total() TableSnapshot {
	var total TableSnapshot
	for _, s := range m.Tables() {
		for i := range s.Outcomes {
			total.Outcomes[i] += s.Outcomes[i]
		}
		total.CommitLag.Add(&s.CommitLag)
		total.PipelineLag.Add(&s.PipelineLag)
		total.Queue.Add(&s.Queue)
		total.Apply.Add(&s.Apply)
	}
	return total
}

// Prometheus family names.
const (
	famMessages    = "cdc_messages_total"
	famCommitLag   = "cdc_commit_lag_seconds"
	famPipelineLag = "cdc_pipeline_lag_seconds"
	famQueue       = "cdc_queue_seconds"
	famApply       = "cdc_apply_seconds"
)

// WritePrometheus writes the metrics in the Prometheus text format:
// cdc_messages_total{table,outcome} and the histograms
// cdc_{commit_lag,pipeline_lag,queue,apply}_seconds{table}.
func (m *Metrics) WritePrometheus(w io.Writer) error {
	tables := m.Tables()
	names := slices.Sorted(maps.Keys(tables))
	p := metrics.NewPromWriter(w)
	p.Family(famMessages, "counter", "Messages handled, by table and outcome.")
	for _, name := range names {
		s := tables[name]
		for o := range cdc.NumOutcomes {
			p.Counter(famMessages, s.Outcomes[o], "table", name, "outcome", o.String())
		}
	}
	hists := []struct {
		name, help string
		get        func(*TableSnapshot) *metrics.HistogramSnapshot
	}{
		{famCommitLag, "Now minus the MySQL commit time (source.ts_ms) of applied changes.",
			func(s *TableSnapshot) *metrics.HistogramSnapshot { return &s.CommitLag }},
		{famPipelineLag, "Now minus the time Debezium processed the change (envelope ts_ms).",
			func(s *TableSnapshot) *metrics.HistogramSnapshot { return &s.PipelineLag }},
		{famQueue, "Now minus the Pub/Sub publish time.",
			func(s *TableSnapshot) *metrics.HistogramSnapshot { return &s.Queue }},
		{famApply, "Duration of the store call.",
			func(s *TableSnapshot) *metrics.HistogramSnapshot { return &s.Apply }},
	}
	for _, h := range hists {
		p.Family(h.name, "histogram", h.help)
		for _, name := range names {
			s := tables[name]
			p.Histogram(h.name, h.get(&s), "table", name)
		}
	}
	return p.Flush()
}

// SummaryMessage is the "message" field of every summary entry; log-based
// metrics filter on it.
const SummaryMessage = "cdc summary"

// Summary is one table's activity over one interval, the payload of the
// periodic log entry. The JSON field names are a contract: Terraform's
// log-based metrics extract them. Durations are milliseconds.
type Summary struct {
	Message          string  `json:"message"`
	Table            string  `json:"table"`
	Applied          uint64  `json:"applied"`
	Deleted          uint64  `json:"deleted"`
	Stale            uint64  `json:"stale"`
	Ignored          uint64  `json:"ignored"`
	Rejected         uint64  `json:"rejected"`
	Failed           uint64  `json:"failed"`
	Untyped          uint64  `json:"untyped"`
	CommitLagMsP50   float64 `json:"commit_lag_ms_p50"`
	CommitLagMsP99   float64 `json:"commit_lag_ms_p99"`
	PipelineLagMsP50 float64 `json:"pipeline_lag_ms_p50"`
	PipelineLagMsP99 float64 `json:"pipeline_lag_ms_p99"`
	QueueMsP99       float64 `json:"queue_ms_p99"`
	ApplyMsP50       float64 `json:"apply_ms_p50"`
	ApplyMsP99       float64 `json:"apply_ms_p99"`
}

// Summarizer turns the cumulative metrics into per-interval summaries. Not
// safe for concurrent use: one goroutine calls Next.
type Summarizer struct {
	m    *Metrics
	prev map[string]TableSnapshot // the snapshot at the previous Next
}

// NewSummarizer returns a summarizer whose first interval starts at zero.
func NewSummarizer(m *Metrics) *Summarizer {
	return &Summarizer{m: m, prev: map[string]TableSnapshot{}}
}

// Next returns one summary per table that saw messages since the previous
// call, sorted by table. Idle tables get no entry.
func (s *Summarizer) Next() []Summary {
	cur := s.m.Tables()
	var out []Summary
	for _, name := range slices.Sorted(maps.Keys(cur)) {
		c := cur[name]
		p := s.prev[name]
		d := c.Sub(&p)
		if d.Messages() == 0 {
			continue
		}
		out = append(out, Summary{
			Message:          SummaryMessage,
			Table:            name,
			Applied:          d.Outcomes[cdc.OutcomeApplied],
			Deleted:          d.Outcomes[cdc.OutcomeDeleted],
			Stale:            d.Outcomes[cdc.OutcomeStale],
			Ignored:          d.Outcomes[cdc.OutcomeIgnored],
			Rejected:         d.Outcomes[cdc.OutcomeRejected],
			Failed:           d.Outcomes[cdc.OutcomeFailed],
			Untyped:          d.Outcomes[cdc.OutcomeUntyped],
			CommitLagMsP50:   ms(d.CommitLag.Quantile(0.5)),
			CommitLagMsP99:   ms(d.CommitLag.Quantile(0.99)),
			PipelineLagMsP50: ms(d.PipelineLag.Quantile(0.5)),
			PipelineLagMsP99: ms(d.PipelineLag.Quantile(0.99)),
			QueueMsP99:       ms(d.Queue.Quantile(0.99)),
			ApplyMsP50:       ms(d.Apply.Quantile(0.5)),
			ApplyMsP99:       ms(d.Apply.Quantile(0.99)),
		})
	}
	s.prev = cur
	return out
}

// ms converts to milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// RunSummaries calls emit with every summary from s each interval until ctx
// ends, then once more for the last partial interval.
func RunSummaries(ctx context.Context, s *Summarizer, interval time.Duration, emit func(Summary)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			for _, sum := range s.Next() {
				emit(sum)
			}
			return
		}
		for _, sum := range s.Next() {
			emit(sum)
		}
	}
}

// LogSummary returns an emit function for RunSummaries that writes each
// summary as an INFO entry through l. With a logger made with
// logging.RedirectAsJSON(os.Stdout), each entry is one JSON line on stdout
// that Cloud Run's agent ingests; the library puts the payload under the
// line's "message" key, so in Cloud Logging the fields are
// jsonPayload.message.<field> (e.g. jsonPayload.message.commit_lag_ms_p99).
func LogSummary(l *logging.Logger) func(Summary) {
	return func(s Summary) {
		l.Log(logging.Entry{Severity: logging.Info, Payload: s})
	}
}
