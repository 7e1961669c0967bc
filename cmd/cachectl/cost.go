package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/cloudsql-cache/cloudsql-cache/cost"
)

// runCost prints the monthly bill for a change rate, from the list prices in
// package cost.
func runCost(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := cost.Inputs{}
	fs.Float64Var(&in.EventsPerHour, "events-per-hour", 0, "change events an hour (required)")
	fs.Float64Var(&in.AvgBytes, "avg-bytes", cost.DefaultAvgBytes, "billable Pub/Sub bytes of one message (default: a schema-enveloped 18-column row)")
	fs.Float64Var(&in.CPUMicrosPerEvent, "cpu-us-per-event", cost.DefaultCPUMicrosPerEvent, "function CPU per event in µs (default: measured by make bench)")
	billing := fs.String("billing", string(cost.InstanceBilling), "Cloud Run billing: request or instance")
	logs := fs.String("request-logs", "off", "Cloud Run request logs: on, or off (excluded by a sink exclusion)")
	tier := fs.String("redis-tier", string(cost.RedisStandard), "Memorystore tier: basic or standard")
	fs.Float64Var(&in.RedisGB, "redis-gb", 1, "Memorystore size in GB")
	fs.StringVar(&in.VM, "vm", "e2-small", "Debezium VM machine type: e2-small or e2-medium")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cost: unexpected argument %q", fs.Arg(0))
	}
	switch *logs {
	case "on":
		in.RequestLogs = true
	case "off":
	default:
		return fmt.Errorf("cost: -request-logs %q: want on or off", *logs)
	}
	in.Billing, in.RedisTier = cost.Billing(*billing), cost.RedisTier(*tier)
	est, err := cost.Compute(in, cost.ListPrices)
	if err != nil {
		return fmt.Errorf("cost: %w", err)
	}
	return est.WriteTable(stdout, cost.ListPrices)
}
