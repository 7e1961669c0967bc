// Package testprom is test support: it parses a /metrics body with the
// Prometheus project's own text parser (prometheus/common/expfmt), so a
// test fails on anything a Prometheus scraper would refuse, and checks what
// the parser lets through but histogram_quantile relies on.
package testprom

import (
	"math"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Parse parses text (the Prometheus text format, version 0.0.4) and
// returns its families by name. The test fails when the text does not
// parse (a repeated family, a malformed line or label) or when a
// histogram's buckets are not ascending and cumulative with a +Inf bucket
// equal to its count.
func Parse(tb testing.TB, text string) map[string]*dto.MetricFamily {
	tb.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		tb.Fatalf("/metrics is not valid Prometheus text: %v", err)
	}
	for name, f := range fams {
		if f.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			prevLe, prevN := math.Inf(-1), uint64(0)
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() <= prevLe || b.GetCumulativeCount() < prevN {
					tb.Fatalf("%s %v: bucket le=%v count %d after le=%v count %d", name, m.GetLabel(),
						b.GetUpperBound(), b.GetCumulativeCount(), prevLe, prevN)
				}
				prevLe, prevN = b.GetUpperBound(), b.GetCumulativeCount()
			}
			if !math.IsInf(prevLe, 1) || prevN != h.GetSampleCount() {
				tb.Fatalf("%s %v: last bucket le=%v count %d, _count %d", name, m.GetLabel(), prevLe, prevN, h.GetSampleCount())
			}
		}
	}
	return fams
}
