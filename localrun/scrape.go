package localrun

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/metrics"
)

// Totals are the push function's outcome counts and pipeline-lag histogram,
// summed over tables, as read from its /metrics.
type Totals struct {
	// Outcomes counts messages by cdc.Outcome.
	Outcomes [cdc.NumOutcomes]uint64
	// Lag is now minus the envelope's ts_ms (when Debezium processed the
	// change): millisecond precise, unlike the commit lag whose source
	// timestamp has one-second resolution.
	Lag metrics.HistogramSnapshot
}

// Handled counts the messages the function answered 2xx for: every outcome
// but failed.
func (t Totals) Handled() uint64 {
	var n uint64
	for o, c := range t.Outcomes {
		if cdc.Outcome(o) != cdc.OutcomeFailed {
			n += c
		}
	}
	return n
}

// Applied counts changes written: rows and tombstones.
func (t Totals) Applied() uint64 {
	return t.Outcomes[cdc.OutcomeApplied] + t.Outcomes[cdc.OutcomeDeleted]
}

// Plus returns t and u summed: metrics restart from zero with the process,
// so totals over several lifetimes are the sum of each one's last scrape.
func (t Totals) Plus(u Totals) Totals {
	for i := range t.Outcomes {
		t.Outcomes[i] += u.Outcomes[i]
	}
	for i := range t.Lag.Buckets {
		t.Lag.Buckets[i] += u.Lag.Buckets[i]
	}
	t.Lag.Count += u.Lag.Count
	t.Lag.Sum += u.Lag.Sum
	return t
}

// Minus returns what happened between an earlier scrape u and t.
func (t Totals) Minus(u Totals) Totals {
	for i := range t.Outcomes {
		t.Outcomes[i] -= u.Outcomes[i]
	}
	t.Lag = t.Lag.Sub(&u.Lag)
	return t
}

// leIndex maps a bucket's le label to its index in metrics' layout.
var leIndex = func() map[string]int {
	m := map[string]int{"+Inf": metrics.NumBuckets}
	for i := range metrics.NumBuckets {
		m[strconv.FormatFloat(metrics.Bound(i).Seconds(), 'g', -1, 64)] = i
	}
	return m
}()

const (
	familyMessages = "cdc_messages_total{"
	familyLag      = "cdc_pipeline_lag_seconds_bucket{"
)

// Scrape reads the function's /metrics (baseURL ends with "/").
func Scrape(ctx context.Context, client *http.Client, baseURL string) (Totals, error) {
	var t Totals
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"metrics", nil)
	if err != nil {
		return t, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return t, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return t, fmt.Errorf("scrape: %s", resp.Status)
	}
	t, err = parseMetrics(bufio.NewScanner(resp.Body))
	if err != nil {
		return t, fmt.Errorf("scrape: %w", err)
	}
	return t, nil
}

func parseMetrics(sc *bufio.Scanner) (Totals, error) {
	var t Totals
	outcomes := map[string]cdc.Outcome{}
	for o := range cdc.NumOutcomes {
		outcomes[o.String()] = o
	}
	// Buckets are cumulative per table; lagIdx is the layout index of the
	// table's previous bucket line.
	lagTable, lagPrev, lagIdx := "", uint64(0), -1
	for sc.Scan() {
		line := sc.Text()
		isMsg, isLag := strings.HasPrefix(line, familyMessages), strings.HasPrefix(line, familyLag)
		if !isMsg && !isLag {
			continue
		}
		end := strings.LastIndexByte(line, ' ')
		n, err := strconv.ParseUint(line[end+1:], 10, 64)
		if err != nil {
			return t, fmt.Errorf("line %q: %w", line, err)
		}
		labels := line[:end]
		if isMsg {
			if o, ok := outcomes[label(labels, "outcome")]; ok {
				t.Outcomes[o] += n
			}
			continue
		}
		i, ok := leIndex[label(labels, "le")]
		if !ok {
			return t, fmt.Errorf("line %q: unknown bucket", line)
		}
		if table := label(labels, "table"); table != lagTable {
			lagTable, lagPrev, lagIdx = table, 0, -1
		}
		spread(&t.Lag, lagIdx+1, i, n-lagPrev)
		lagPrev, lagIdx = n, i
	}
	return t, sc.Err()
}

// label returns the value of name in a sample's {…} labels.
func label(labels, name string) string {
	i := strings.Index(labels, "{"+name+`="`)
	if i < 0 {
		i = strings.Index(labels, ","+name+`="`)
	}
	if i < 0 {
		return ""
	}
	v := labels[i+len(name)+3:]
	if j := strings.IndexByte(v, '"'); j >= 0 {
		return v[:j]
	}
	return ""
}

// spread adds n observations known to lie in layout buckets from..to (the
// /metrics exposition publishes only some bounds, metrics.Exposed) evenly
// over those buckets, so quantiles interpolate across the whole published
// bucket rather than inside its top layout bucket.
func spread(h *metrics.HistogramSnapshot, from, to int, n uint64) {
	if from > to {
		from = to
	}
	k := uint64(to - from + 1)
	for i := from; i <= to; i++ {
		share := n / k
		if uint64(i-from) < n%k {
			share++
		}
		h.Buckets[i] += share
	}
	h.Count += n
}
