package cost

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteTable writes the estimate as a Markdown table with a one-line
// heading and a per-million summary; prices marked unconfirmed carry a "*".
func (e Estimate) WriteTable(w io.Writer, p Prices) error {
	in := e.Inputs
	logs := "request logs excluded"
	if in.RequestLogs {
		logs = "request logs on"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s events/hour (%s a month), %s B per message, %s µs CPU per event, %s billing, %s\n",
		num(in.EventsPerHour, 0), num(e.EventsMonth, 0), num(in.AvgBytes, 0), num(in.CPUMicrosPerEvent, 1), in.Billing, logs)
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
