package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// runSchemaYAML prints the registry's facts as the cache config's tables:
// entries (key: and types:), for deployments that prefer a config file to
// the registry. The config then wins over the registry, so it must be
// regenerated after a schema change.
func runSchemaYAML(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	r, err := parseRegistryRead("schema yaml", args, getenv, stderr)
	if err != nil {
		return err
	}
	names, reg, _, err := r.load(ctx)
	if err != nil {
		return fmt.Errorf("schema yaml: %w", err)
	}
	fmt.Fprintln(stdout, "tables:")
	for _, n := range names {
		ts := reg.Lookup(n)
		fmt.Fprintf(stdout, "  %s:\n", scalar(n))
		if len(ts.Key) > 0 {
			keys := make([]string, len(ts.Key))
			for i, k := range ts.Key {
				keys[i] = scalar(k)
			}
			fmt.Fprintf(stdout, "    key: [%s]\n", strings.Join(keys, ", "))
		}
		fmt.Fprintln(stdout, "    types:")
		for _, c := range ts.Columns {
			if _, ok := ts.Type(c.Name); !ok {
				fmt.Fprintf(stdout, "      # %s: %s is not a type the decoder knows\n", c.Name, c.Type)
				continue
			}
			fmt.Fprintf(stdout, "      %s: %s\n", scalar(c.Name), scalar(c.Type))
		}
	}
	return nil
}

// scalar writes s as a YAML scalar, quoted only where YAML needs it
// (enum('a','b') does not, "a: b" does).
func scalar(s string) string {
	b, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	return strings.TrimSuffix(string(b), "\n")
}
