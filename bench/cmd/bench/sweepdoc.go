package main

import (
	"bytes"
	"errors"
)

// README markers around the generated sweep table.
const (
	sweepStart = "<!-- bench:sweep:start -->"
	sweepEnd   = "<!-- bench:sweep:end -->"
)

// replaceSweep puts table between the sweep markers of readme. Without the
// markers it appends a "## Performance" section holding them; nothing else
// in the file changes.
func replaceSweep(readme []byte, table string) ([]byte, error) {
	i := bytes.Index(readme, []byte(sweepStart))
	j := bytes.Index(readme, []byte(sweepEnd))
	switch {
	case i < 0 && j < 0:
		var b bytes.Buffer
		b.Write(readme)
		if len(readme) > 0 && !bytes.HasSuffix(readme, []byte("\n")) {
			b.WriteByte('\n')
		}
		b.WriteString("\n## Performance\n\n" + sweepStart + "\n" + table + sweepEnd + "\n")
		return b.Bytes(), nil
	case i < 0 || j < i:
		return nil, errors.New("README: sweep markers missing or out of order")
	}
	var b bytes.Buffer
	b.Write(readme[:i+len(sweepStart)])
	b.WriteString("\n" + table)
	b.Write(readme[j:])
	return b.Bytes(), nil
}
