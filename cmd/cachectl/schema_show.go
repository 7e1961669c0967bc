package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/cdc"
)

// runSchemaShow prints the column registry: per table its key, when it was
// read, and every column with its type, marking the types the decoder
// cannot use (their rows are cached as markers).
func runSchemaShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	r, err := parseRegistryRead("schema show", args, getenv, stderr)
	if err != nil {
		return err
	}
	now, err := cliNow(getenv)
	if err != nil {
		return fmt.Errorf("schema show: %w", err)
	}
	names, reg, bad, err := r.load(ctx)
	if err != nil {
		return fmt.Errorf("schema show: %w", err)
	}
	fmt.Fprintf(stdout, "registry %s: %d tables\n", cdc.RegistryKey(r.prefix), len(names))
	for _, n := range names {
		ts := reg.Lookup(n)
		read := time.UnixMilli(ts.ReadAtMs).UTC()
		fmt.Fprintf(stdout, "\n%s  key (%s)  read %s (%s ago)\n", n, strings.Join(ts.Key, ", "),
			read.Format(time.RFC3339), now.Sub(read).Round(time.Second))
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		for _, c := range ts.Columns {
			note := ""
			if _, ok := ts.Type(c.Name); !ok {
				note = "\tnot decodable: rows cached as markers"
			}
			fmt.Fprintf(tw, "  %s\t%s%s\n", c.Name, c.Type, note)
		}
		tw.Flush()
	}
	for _, b := range bad {
		fmt.Fprintf(stdout, "\nbad entry, ignored by decoders: %s\n", b)
	}
	return nil
}
