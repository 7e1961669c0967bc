package main

import (
	"bytes"
	"errors"
)

// Markers around the generated sweep table in docs/performance.md.
const (
	sweepStart = "<!-- bench:sweep:start -->"
	sweepEnd   = "<!-- bench:sweep:end -->"
)

// replaceSweep puts table between the sweep markers of doc. Without the
// markers it appends a "## Performance" section holding them; nothing else
// in the file changes.
func replaceSweep(doc []byte, table string) ([]byte, error) {
	i := bytes.Index(doc, []byte(sweepStart))
	j := bytes.Index(doc, []byte(sweepEnd))
	switch {
	case i < 0 && j < 0:
		var b bytes.Buffer
		b.Write(doc)
		if len(doc) > 0 && !bytes.HasSuffix(doc, []byte("\n")) {
			b.WriteByte('\n')
		}
		b.WriteString("\n## Performance\n\n" + sweepStart + "\n" + table + sweepEnd + "\n")
		return b.Bytes(), nil
	case i < 0 || j < i:
		return nil, errors.New("bench: sweep markers missing or out of order")
	}
	var b bytes.Buffer
	b.Write(doc[:i+len(sweepStart)])
	b.WriteString("\n" + table)
	b.Write(doc[j:])
	return b.Bytes(), nil
}
