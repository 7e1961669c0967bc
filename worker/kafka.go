package worker

import (
	"context"
	"io"
	"time"

	"cloud.google.com/go/logging"

	"github.com/cloudsql-cache/cloudsql-cache/kafkasource"
	"github.com/cloudsql-cache/cloudsql-cache/pipeline"
)

// kafkaTransport is the Kafka consumer group as the worker's source. Beside
// the core's summaries it logs one "kafka partition lag" entry per owned
// partition every summary interval (Terraform's consumer-lag metric reads
// them).
type kafkaTransport struct {
	src      *kafkasource.Source
	core     *pipeline.Core
	log      *logging.Logger
	interval time.Duration
}

func (k *kafkaTransport) Run(ctx context.Context) error {
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		t := time.NewTicker(k.interval)
		defer t.Stop()
		for {
			select {
			case <-lagCtx.Done():
				return
			case <-t.C:
				for _, l := range k.src.LagSummaries() {
					k.log.Log(logging.Entry{Severity: logging.Info, Payload: l})
				}
			}
		}
	}()
	err := k.src.Run(ctx, k.core)
	stopLag()
	<-lagDone
	return err
}

func (k *kafkaTransport) Connected() bool { return k.src.Connected() }

func (k *kafkaTransport) WritePrometheus(w io.Writer) error { return k.src.WritePrometheus(w) }
