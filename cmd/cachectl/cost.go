package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/changegen"
	"github.com/cloudsql-cache/cloudsql-cache/cost"
)

// CPU per event of the function by format, from `make bench` at
// concurrency 50 on the shared 2-core machine (2026-11-25, four runs):
// schema envelopes of the 18-column table 68-78 µs, schemaless events
// 43-46 µs. The workers, which apply batches, are assumed to need no more.
const (
	cpuMicrosFull    = 70
	cpuMicrosCompact = 45
)

// measureChanges is how many generated changes the default bytes average:
// the Cycle creates each of measureKeys rows, then updates them.
const (
	measureChanges = 5000
	measureKeys    = 500
)

// measureBytes returns the Pub/Sub billable bytes of the average message
// the generator writes for table in format f, attributes and ordering key
// included, and says what was measured.
func measureBytes(f changegen.Format, table string) (float64, string, error) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := changegen.NewCycle(f.Apply(changegen.Options{Seed: 1, Keys: measureKeys,
		Now: func() time.Time { return at }}), table, 4)
	if err != nil {
		return 0, "", err
	}
	total := 0
	for range measureChanges {
		m := c.Next()
		total += cost.MessageBytes(len(m.Data), m.Attributes, m.OrderingKey)
	}
	avg := float64(total) / measureChanges
	return avg, fmt.Sprintf("measured: the generator's %s events of table %s, %d creates then %d updates",
		f, table, measureKeys, measureChanges-measureKeys), nil
}

// runCost prints the monthly bill for a change rate, from the list prices in
// package cost.
func runCost(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := cost.Inputs{}
	fs.Float64Var(&in.EventsPerHour, "events-per-hour", 0, "change events an hour (required)")
	format := fs.String("format", string(cost.Compact), "message format: full (schema envelopes, ordering on) or compact")
	delivery := fs.String("delivery", string(cost.Push), "delivery: push, pull or kafka")
	table := fs.String("table", "orders", "the generator's table whose events give the default bytes: customers, order_items, all_types or orders")
	fs.Float64Var(&in.AvgBytes, "avg-bytes", 0, "billable Pub/Sub bytes of one message (default: measured from -table's generated events)")
	fs.Float64Var(&in.CPUMicrosPerEvent, "cpu-us-per-event", -1, "CPU per event in µs (default: measured by make bench, 70 full, 45 compact)")
	topics := fs.Float64("topics", 1, "tables the changes spread over evenly (one topic each): fewer messages per publish request")
	billing := fs.String("billing", string(cost.InstanceBilling), "push function's Cloud Run billing: request or instance")
	logs := fs.String("request-logs", "off", "push function's request logs: on, or off (excluded by a sink exclusion)")
	tier := fs.String("redis-tier", string(cost.RedisStandard), "Memorystore tier: basic or standard")
	fs.Float64Var(&in.RedisGB, "redis-gb", 1, "Memorystore size in GB")
	fs.StringVar(&in.VM, "vm", "e2-small", "Debezium VM machine type: e2-small or e2-medium")
	fs.Float64Var(&in.KafkaVCPU, "kafka-vcpu", 0, "Managed Kafka vCPUs (default: the smallest cluster that carries the load, at least 3)")
	fs.Float64Var(&in.KafkaGiB, "kafka-gib", 0, "Managed Kafka RAM in GiB (default: 1 GiB a vCPU)")
	fs.Float64Var(&in.RetentionHours, "retention-hours", 24, "Kafka topic retention")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("cost: unexpected argument %q", fs.Arg(0))
	}
	switch *logs {
	case "on":
		in.RequestLogs = true
	case "off":
	default:
		return fmt.Errorf("cost: -request-logs %q: want on or off", *logs)
	}
	f, err := changegen.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("cost: %w", err)
	}
	in.Format, in.Delivery = cost.Format(f), cost.Delivery(*delivery)
	in.Billing, in.RedisTier = cost.Billing(*billing), cost.RedisTier(*tier)
	in.Publisher = cost.ProfilePublisher(in.Format, *topics)
	if in.CPUMicrosPerEvent < 0 {
		in.CPUMicrosPerEvent = cpuMicrosCompact
		if f == changegen.FormatFull {
			in.CPUMicrosPerEvent = cpuMicrosFull
		}
	}
	in.BytesFrom = "given"
	if in.AvgBytes == 0 {
		if in.AvgBytes, in.BytesFrom, err = measureBytes(f, *table); err != nil {
			return fmt.Errorf("cost: -table: %w", err)
		}
	}
	est, err := cost.Compute(in, cost.ListPrices)
	if err != nil {
		return fmt.Errorf("cost: %w", err)
	}
	return est.WriteTable(stdout, cost.ListPrices)
}
