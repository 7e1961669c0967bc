package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

func TestRunSummariesFlushesOnStop(t *testing.T) {
	m := pipeline.NewMetrics()
	m.Table("a.b").Outcomes[cdc.OutcomeApplied].Add(3)
	got := make(chan pipeline.Summary, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		pipeline.RunSummaries(ctx, pipeline.NewSummarizer(m), time.Hour, func(s pipeline.Summary) { got <- s })
		close(done)
	}()
	cancel()
	<-done
	require.Len(t, got, 1, "the last partial interval is written on stop")
	s := <-got
	assert.Equal(t, "a.b", s.Table)
	assert.Equal(t, uint64(3), s.Applied)
}
