package kafkasource

import (
	"io"
	"strconv"

	"github.com/cloudsql-cache/cloudsql-cache/metrics"
)

// WritePrometheus writes the source's metrics in the Prometheus text format:
// cdc_kafka_partition_lag{topic,partition} (records not yet finished) and
// the counters cdc_kafka_{batches,records,tombstones,retries,abandoned,
// commit_errors}_total.
func (s *Source) WritePrometheus(w io.Writer) error {
	p := metrics.NewPromWriter(w)
	p.Family("cdc_kafka_partition_lag", "gauge", "Records of an owned partition not yet finished (high watermark minus the next offset to commit).")
	for _, l := range s.Lag() {
		p.Gauge("cdc_kafka_partition_lag", float64(l.Lag), "topic", l.Topic, "partition", strconv.Itoa(int(l.Partition)))
	}
	st := s.Stats()
	for _, c := range []struct {
		name, help string
		v          uint64
	}{
		{"cdc_kafka_batches_total", "Polled batches.", st.Batches},
		{"cdc_kafka_records_total", "Records polled.", st.Records},
		{"cdc_kafka_tombstones_total", "Null-value records finished without the core.", st.Tombstones},
		{"cdc_kafka_retries_total", "Record retries after a Retry verdict.", st.Retries},
		{"cdc_kafka_abandoned_total", "Unfinished records dropped on revoke or stop (redelivered to the next owner).", st.Abandoned},
		{"cdc_kafka_commit_errors_total", "Failed offset commits.", st.CommitErrors},
	} {
		p.Family(c.name, "counter", c.help)
		p.Counter(c.name, c.v)
	}
	return p.Flush()
}
