package cost

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteTable writes the estimate as a Markdown table with a heading, a
// per-million summary and one line for scripts:
//
//	cost: events_per_hour=N format=F delivery=D avg_bytes=B variable_usd_per_million=V monthly_usd=M
//
// Prices marked unconfirmed carry a "*".
func (e Estimate) WriteTable(w io.Writer, p Prices) error {
	in := e.Inputs
	var b strings.Builder
	fmt.Fprintf(&b, "%s events/hour (%s a month), %s format, %s delivery, %s µs CPU per event\n",
		num(in.EventsPerHour, 0), num(e.EventsMonth, 0), in.Format, in.Delivery, num(in.CPUMicrosPerEvent, 1))
	fmt.Fprintf(&b, "%s B billed per message (%s)\n", num(in.AvgBytes, 0), in.BytesFrom)
	if in.Delivery == Push {
		logs := "request logs excluded"
		if in.RequestLogs {
			logs = "request logs on"
		}
		fmt.Fprintf(&b, "push function: %s billing, %s\n", in.Billing, logs)
	}
	fmt.Fprintf(&b, "us-central1 list prices read %s (cost/prices.go); * = price unconfirmed\n\n", p.ReadOn)
	b.WriteString("| line item | billable a month | USD a month | USD per million events (variable) |\n")
	b.WriteString("|---|---|---:|---:|\n")
	for _, li := range e.Items {
		mark := ""
		if li.Unconfirmed {
			mark = " *"
		}
		fmt.Fprintf(&b, "| %s%s | %s | %s | %s |\n", li.Name, mark, li.Quantity, num(li.Monthly, 2), num(li.PerMillion, 4))
	}
	fmt.Fprintf(&b, "| **total** | | **%s** | **%s** |\n\n", num(e.Monthly, 2), num(e.VariablePerM, 4))
	fmt.Fprintf(&b, "per million events: all-in $%s, variable $%s\n", num(e.PerMillion, 4), num(e.VariablePerM, 4))
	fmt.Fprintf(&b, "cost: events_per_hour=%s format=%s delivery=%s avg_bytes=%s variable_usd_per_million=%s monthly_usd=%s\n",
		strconv.FormatFloat(in.EventsPerHour, 'f', -1, 64), in.Format, in.Delivery,
		strconv.FormatFloat(math.Round(in.AvgBytes), 'f', -1, 64),
		strconv.FormatFloat(e.VariablePerM, 'f', 4, 64), strconv.FormatFloat(e.Monthly, 'f', 2, 64))
	_, err := io.WriteString(w, b.String())
	return err
}

// num formats v with dec decimals and thousands separators.
func num(v float64, dec int) string {
	s := strconv.FormatFloat(v, 'f', dec, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}
