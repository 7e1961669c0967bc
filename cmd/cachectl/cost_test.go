package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// costCases are golden: testdata/cost/<name>/stdout. Review a diff by eye
// before accepting it with -update.
var costCases = []struct {
	name string
	args []string
}{
	{"1m", []string{"--events-per-hour", "1000000"}},
	{"10m", []string{"--events-per-hour", "10000000"}},
	{"100m", []string{"--events-per-hour", "100000000"}},
	{"10m-customers", []string{"--events-per-hour", "1e7", "--table", "customers"}},
	{"10m-pull", []string{"--events-per-hour", "1e7", "--delivery", "pull"}},
	{"10m-pull-customers", []string{"--events-per-hour", "1e7", "--delivery", "pull", "--table", "customers"}},
	{"1m-kafka", []string{"--events-per-hour", "1e6", "--delivery", "kafka"}},
	{"10m-kafka", []string{"--events-per-hour", "1e7", "--delivery", "kafka"}},
	{"100m-kafka", []string{"--events-per-hour", "1e8", "--delivery", "kafka"}},
	{"10m-kafka-sized", []string{"--events-per-hour", "1e7", "--delivery", "kafka", "--kafka-vcpu", "6", "--kafka-gib", "24", "--retention-hours", "168"}},
	{"10m-full", []string{"--events-per-hour", "1e7", "--format", "full"}},
	{"10m-full-pull", []string{"--events-per-hour", "1e7", "--format", "full", "--delivery", "pull"}},
	{"10m-topics", []string{"--events-per-hour", "1e7", "--topics", "50", "--table", "customers"}},
	{"1m-full-request-billing-logs-on", []string{"--events-per-hour", "1000000", "--format", "full", "--billing", "request", "--request-logs", "on"}},
	{"100m-given-bytes", []string{"--events-per-hour", "100000000", "--avg-bytes", "1200", "--cpu-us-per-event", "46"}},
	{"10m-basic-medium", []string{"--events-per-hour", "1e7", "--redis-tier", "basic", "--redis-gb", "5", "--vm", "e2-medium"}},
}

func TestCostGolden(t *testing.T) {
	for _, c := range costCases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), append([]string{"cost"}, c.args...), func(string) string { return "" }, &out, &errOut); err != nil {
				t.Fatalf("%v: %s", err, errOut.String())
			}
			path := filepath.Join("testdata", "cost", c.name, "stdout")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Fatalf("output differs from %s:\n%s", path, out.String())
			}
		})
	}
}

func TestCostRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"cost"}, // no events per hour
		{"cost", "--events-per-hour", "1e6", "--billing", "cpu"},
		{"cost", "--events-per-hour", "1e6", "--request-logs", "maybe"},
		{"cost", "--events-per-hour", "1e6", "--vm", "n2-standard-2"},
		{"cost", "--events-per-hour", "-5"},
		{"cost", "--events-per-hour", "1e6", "extra"},
		{"cost", "--events-per-hour", "1e6", "--format", "avro"},
		{"cost", "--events-per-hour", "1e6", "--delivery", "email"},
		{"cost", "--events-per-hour", "1e6", "--table", "nope"},
		{"cost", "--events-per-hour", "1e6", "--topics", "0"},
		{"cost", "--events-per-hour", "1e6", "--delivery", "kafka", "--kafka-vcpu", "2"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
		if err == nil {
			t.Errorf("%v accepted", args)
		}
		if out.Len() != 0 {
			t.Errorf("%v printed a table on error", args)
		}
		if err != nil && !strings.Contains(err.Error(), "cost") {
			t.Errorf("%v: error %q does not say where", args, err)
		}
	}
}
