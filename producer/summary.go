package producer

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/schema"
)

// Summary reports a sync run.
type Summary struct {
	Run         string
	Env         string
	Segment     string
	Generation  int
	ContextKind string
	Topic       string
	// Recovered is set when the run first republished a snapshot an
	// interrupted run had left pending.
	Recovered *PhaseSummary
	Rows      int64            // data rows in the CSV
	Keys      int64            // distinct members of the new snapshot
	Excluded  map[string]int64 // rows excluded, by cohortcsv reason
	// Duplicates counts rows whose key an earlier row already had; they are
	// counted, not listed in the exclusion report.
	Duplicates int64
	Added      int64
	Removed    int64
	Unchanged  int64
	// Events is the number of events published and acknowledged by this
	// run, the recovery's included.
	Events            int64
	FirstSeq, LastSeq uint64 // of this run's own events (0, 0 if none)
	Duration          time.Duration
	// ExclusionsFile is the exclusion report, "" if no row was excluded.
	ExclusionsFile string
}

// PhaseSummary reports the republication of an interrupted run.
type PhaseSummary struct {
	Run               string
	Attempt           int // 2 for the first recovery of that run, ...
	Added, Removed    int64
	FirstSeq, LastSeq uint64
}

// ExcludedTotal is the number of excluded rows.
func (s Summary) ExcludedTotal() int64 {
	var n int64
	for _, c := range s.Excluded {
		n += c
	}
	return n
}

// EventsPerSecond is the run's publishing rate over its whole duration.
func (s Summary) EventsPerSecond() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Events) / s.Duration.Seconds()
}

// WriteTo prints the summary for people, one fact a line.
func (s Summary) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	line := func(label, format string, a ...any) {
		fmt.Fprintf(&b, "  %-11s %s\n", label, fmt.Sprintf(format, a...))
	}
	fmt.Fprintf(&b, "sync run %s\n", s.Run)
	line("segment", "%s (env %s, context kind %s)", schema.Ref(s.Segment, s.Generation), s.Env, s.ContextKind)
	line("topic", "%s", s.Topic)
	if r := s.Recovered; r != nil {
		line("recovered", "run %s (attempt %d): +%d -%d, %s", r.Run, r.Attempt, r.Added, r.Removed, seqRange(r.FirstSeq, r.LastSeq))
	}
	line("rows", "%d", s.Rows)
	line("members", "%d", s.Keys)
	line("added", "%d", s.Added)
	line("removed", "%d", s.Removed)
	line("unchanged", "%d", s.Unchanged)
	line("excluded", "%d%s", s.ExcludedTotal(), s.excludedDetail())
	line("duplicates", "%d", s.Duplicates)
	line("events", "%d, %s", s.Events, seqRange(s.FirstSeq, s.LastSeq))
	line("duration", "%v (%.0f events/s)", s.Duration.Round(time.Millisecond), s.EventsPerSecond())
	excl := s.ExclusionsFile
	if excl == "" {
		excl = "none"
	}
	line("exclusions", "%s", excl)
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

func (s Summary) excludedDetail() string {
	var parts []string
	for _, r := range cohortcsv.Reasons {
		if c := s.Excluded[r]; c > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, c))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func seqRange(first, last uint64) string {
	if last == 0 {
		return "no sequence numbers used"
	}
	return fmt.Sprintf("seq %d..%d", first, last)
}
