package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cloudsql-cache/cloudsql-cache/kafkasource"
)

// writeKafkaStatus prints the consumer group's state and, per partition,
// the committed offset, the end offset and the lag between them: the
// records the workers have not finished. The committed offset never passes
// an unfinished record, so lag 0 means every record is in the cache.
func writeKafkaStatus(ctx context.Context, w io.Writer, brokers, group string, sec kafkasource.Security) error {
	opts, err := sec.Opts(ctx)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(strings.Split(brokers, ",")...))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	lags, err := kadm.NewClient(cl).Lag(ctx, group)
	if err != nil {
		return err
	}
	gl, ok := lags[group]
	if !ok {
		return fmt.Errorf("group %s not described", group)
	}
	if err := gl.Error(); err != nil {
		return fmt.Errorf("group %s: %w", group, err)
	}
	rows := gl.Lag.Sorted()
	var total int64
	for _, r := range rows {
		total += max(r.Lag, 0)
	}
	fmt.Fprintf(w, "kafka     group %s: %s, %d members, lag %d records on %d partitions\n",
		group, gl.State, len(gl.Members), total, len(rows))
	if len(rows) == 0 {
		fmt.Fprintln(w, "  no committed offsets yet")
		return nil
	}
	width := 0
	for _, r := range rows {
		width = max(width, len(r.Topic)+1+len(strconv.Itoa(int(r.Partition))))
	}
	for _, r := range rows {
		tp := r.Topic + "/" + strconv.Itoa(int(r.Partition))
		commit := "none"
		if r.Commit.At >= 0 {
			commit = strconv.FormatInt(r.Commit.At, 10)
		}
		line := fmt.Sprintf("  %-*s  committed %-10s end %-10d lag %d", width, tp, commit, r.End.Offset, r.Lag)
		if r.Err != nil {
			line += "  error " + r.Err.Error()
		}
		if r.Member != nil {
			line += "  member " + r.Member.ClientID
		}
		fmt.Fprintln(w, line)
	}
	return nil
}
