package metrics

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// PromWriter writes the Prometheus text exposition format (version 0.0.4).
// Write a family header with Family, then its samples; labels are given as
// name, value pairs (a trailing unpaired name is dropped). Writes are
// buffered; the first write error is kept and returned by Flush.
type PromWriter struct {
	w   *bufio.Writer
	buf []byte // scratch for number formatting; reused across samples
}

// ContentType is the HTTP Content-Type of the exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// NewPromWriter returns a writer to w.
func NewPromWriter(w io.Writer) *PromWriter {
	return &PromWriter{w: bufio.NewWriter(w), buf: make([]byte, 0, 32)}
}

// Family writes the HELP and TYPE lines of a family; typ is "counter",
// "gauge" or "histogram". Write each family's header once, before its samples.
func (p *PromWriter) Family(name, typ, help string) {
	p.w.WriteString("# HELP ")
	p.w.WriteString(name)
	p.w.WriteByte(' ')
	p.w.WriteString(helpEscaper.Replace(help))
	p.w.WriteString("\n# TYPE ")
	p.w.WriteString(name)
	p.w.WriteByte(' ')
	p.w.WriteString(typ)
	p.w.WriteByte('\n')
}

// Counter writes one counter sample.
func (p *PromWriter) Counter(name string, v uint64, labels ...string) {
	p.sampleStart(name, "", labels, "", "")
	p.buf = strconv.AppendUint(p.buf[:0], v, 10)
	p.sampleEnd()
}

// Gauge writes one gauge sample.
func (p *PromWriter) Gauge(name string, v float64, labels ...string) {
	p.sampleStart(name, "", labels, "", "")
	p.buf = strconv.AppendFloat(p.buf[:0], v, 'g', -1, 64)
	p.sampleEnd()
}

// ExposeEvery thins the buckets /metrics publishes: every ExposeEvery-th
// bound of the layout (and the last one), 38 finite buckets 1.73x apart
// from 10µs to 1h instead of 110 1.2x apart. Each bucket is a series a
// Prometheus backend stores and bills (Managed Service for Prometheus bills
// per sample), per table and instance; 1.73x is still finer than
// Prometheus's default buckets (2-2.5x), and the bounds published are bounds
// of the layout, so their cumulative counts are exact. The in-process
// summaries keep every bucket.
const ExposeEvery = 3

// Exposed reports whether finite bucket i's upper bound is published on
// /metrics (see ExposeEvery).
func Exposed(i int) bool { return i%ExposeEvery == 0 || i == NumBuckets-1 }

// Histogram writes the cumulative _bucket series (le in seconds, the bounds
// that Exposed selects), _sum (in seconds) and _count of a snapshot.
func (p *PromWriter) Histogram(name string, s *HistogramSnapshot, labels ...string) {
	var cum uint64
	for i := range NumBuckets {
		cum += s.Buckets[i]
		if !Exposed(i) {
			continue
		}
		le := strconv.FormatFloat(bounds[i].Seconds(), 'g', -1, 64)
		p.sampleStart(name, "_bucket", labels, "le", le)
		p.buf = strconv.AppendUint(p.buf[:0], cum, 10)
		p.sampleEnd()
	}
	cum += s.Buckets[NumBuckets]
	p.sampleStart(name, "_bucket", labels, "le", "+Inf")
	p.buf = strconv.AppendUint(p.buf[:0], cum, 10)
	p.sampleEnd()
	p.sampleStart(name, "_sum", labels, "", "")
	p.buf = strconv.AppendFloat(p.buf[:0], s.Sum.Seconds(), 'g', -1, 64)
	p.sampleEnd()
	// _count must equal the +Inf bucket, so it is the bucket total, not s.Count.
	p.sampleStart(name, "_count", labels, "", "")
	p.buf = strconv.AppendUint(p.buf[:0], cum, 10)
	p.sampleEnd()
}

// Flush writes out what is buffered and returns the first error met.
func (p *PromWriter) Flush() error { return p.w.Flush() }

func (p *PromWriter) sampleStart(name, suffix string, labels []string, extraName, extraValue string) {
	p.w.WriteString(name)
	p.w.WriteString(suffix)
	if len(labels) == 0 && extraName == "" {
		p.w.WriteByte(' ')
		return
	}
	p.w.WriteByte('{')
	sep := false
	for i := 0; i+1 < len(labels); i += 2 {
		p.label(sep, labels[i], labels[i+1])
		sep = true
	}
	if extraName != "" {
		p.label(sep, extraName, extraValue)
	}
	p.w.WriteString("} ")
}

func (p *PromWriter) label(sep bool, name, value string) {
	if sep {
		p.w.WriteByte(',')
	}
	p.w.WriteString(name)
	p.w.WriteString(`="`)
	p.w.WriteString(labelEscaper.Replace(value))
	p.w.WriteByte('"')
}

func (p *PromWriter) sampleEnd() {
	p.w.Write(p.buf)
	p.w.WriteByte('\n')
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)
