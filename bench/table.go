package bench

import (
	"fmt"
	"io"
	"strings"
)

// Unit says how a Row's Figure reads.
type Unit int

// Units of a figure.
const (
	Ratio   Unit = iota // cohortsync over its reference, "0.54×"
	Seconds             // a duration, "12.5 s"
	MiB                 // a memory size, "234 MiB"
)

// Format prints v in u.
func (u Unit) Format(v float64) string {
	switch u {
	case Seconds:
		if v < 1 { // a scaled bound of a small run
			return fmt.Sprintf("%.3f s", v)
		}
		return fmt.Sprintf("%.2f s", v)
	case MiB:
		return fmt.Sprintf("%.0f MiB", v)
	default:
		return fmt.Sprintf("%.2f×", v)
	}
}

// Bound is the target a Row's figure is held to: at most (Max) or at least
// Limit, in the figure's Unit. The zero Bound is no target.
type Bound struct {
	Max   bool
	Limit float64
	// Note says where the limit comes from when it is not issue 12's figure
	// as written, e.g. "8 s at 2,000,000 members, scaled".
	Note string
}

// Set says whether b is a target.
func (b Bound) Set() bool { return b.Limit != 0 }

// Met says whether v meets b; every figure meets the zero Bound.
func (b Bound) Met(v float64) bool {
	switch {
	case !b.Set():
		return true
	case b.Max:
		return v <= b.Limit
	default:
		return v >= b.Limit
	}
}

// Text is b as the table prints it, e.g. "≤ 8.00 s".
func (b Bound) Text(u Unit) string {
	if !b.Set() {
		return "—"
	}
	op := "≥"
	if b.Max {
		op = "≤"
	}
	s := op + " " + u.Format(b.Limit)
	if b.Note != "" {
		s += " (" + b.Note + ")"
	}
	return s
}

// Row is one line of the table: what cohortsync did, what its reference
// did in the same run, and the figure held to the target.
type Row struct {
	Target    string // issue 12's target, e.g. "1a"
	Measure   string // what was measured
	Subject   string // cohortsync's result, as printed
	Reference string // the reference's result in the same run, "" if none
	Figure    float64
	Unit      Unit
	Bound     Bound
	// Err is why the row could not be measured; the table says so in
	// place of a figure, and the row fails.
	Err error
}

// Status is the pass/fail column: "pass", "FAIL", "—" (no target) or
// "error" (not measured).
func (r Row) Status() string {
	switch {
	case r.Err != nil:
		return "error"
	case !r.Bound.Set():
		return "—"
	case r.Bound.Met(r.Figure):
		return "pass"
	default:
		return "FAIL"
	}
}

// Passed says whether every row with a target met it (and every row was
// measured).
func Passed(rows []Row) bool {
	for _, r := range rows {
		if s := r.Status(); s == "FAIL" || s == "error" {
			return false
		}
	}
	return true
}

// WriteTable prints rows as one Markdown table, titled by caption (a line
// above it, e.g. the sizes of the run; "" for none).
func WriteTable(w io.Writer, caption string, rows []Row) error {
	var b strings.Builder
	if caption != "" {
		b.WriteString(caption + "\n\n")
	}
	b.WriteString("| target | measure | cohortsync | reference (same run) | figure | bound | result |\n")
	b.WriteString("|---|---|---|---|---:|---|---|\n")
	for _, r := range rows {
		subject, ref, figure := cell(r.Subject), cell(r.Reference), r.Unit.Format(r.Figure)
		switch {
		case r.Err != nil:
			subject, ref, figure = "not measured: "+cell(r.Err.Error()), "—", "—"
		case r.Figure == 0 && !r.Bound.Set(): // a figure alone, e.g. a rate with no reference
			figure = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n",
			cell(r.Target), cell(r.Measure), subject, ref, figure, cell(r.Bound.Text(r.Unit)), r.Status())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell keeps s on one table line and out of the column separators.
func cell(s string) string {
	if s == "" {
		return "—"
	}
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
