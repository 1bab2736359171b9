package producer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/schema"
)

// Summary reports a sync run as plain data: what WriteTo prints for people,
// and what a run history stores (the JSON names are that record's).
type Summary struct {
	Run         string `json:"run"`
	Env         string `json:"env"`
	Segment     string `json:"segment"`
	Generation  int    `json:"generation"`
	ContextKind string `json:"context_kind"`
	Topic       string `json:"topic"`
	Input       string `json:"input"`  // the Source's name, e.g. the CSV path
	Source      string `json:"source"` // recorded in every event, e.g. "csv"
	// Outcome says how the run ended; Error is its error, "" on success.
	Outcome Outcome `json:"outcome"`
	Error   string  `json:"error,omitempty"`
	// Rebuilt is set when the segment's last snapshot was read back from
	// the destination because the local state was missing or stale
	// (another replica synced since, or the state directory was lost).
	Rebuilt *RebuildSummary `json:"rebuilt,omitempty"`
	// Recovered is set when the run first republished a snapshot an
	// interrupted run had left pending.
	Recovered *PhaseSummary    `json:"recovered,omitempty"`
	Rows      int64            `json:"rows"`     // records the source read
	Keys      int64            `json:"members"`  // distinct members of the new snapshot
	Excluded  map[string]int64 `json:"excluded"` // records excluded, by the source's reason
	// Duplicates counts rows whose key an earlier row already had; they are
	// counted, not listed in the exclusion report.
	Duplicates int64 `json:"duplicates"`
	Added      int64 `json:"added"`
	Removed    int64 `json:"removed"`
	Unchanged  int64 `json:"unchanged"`
	// Events is the number of events published and acknowledged by this
	// run, the recovery's included.
	Events   int64  `json:"events"`
	FirstSeq uint64 `json:"first_seq"` // of this run's own events (0, 0 if none)
	LastSeq  uint64 `json:"last_seq"`
	// SeqReserved ends the sequence range reserved for this run's own
	// events: the segment's later events all have higher numbers, so it
	// marks the run's place in the segment's history even when the run
	// changed nothing (a rollback's boundary). 0 if the run did not get to
	// publishing.
	SeqReserved uint64 `json:"seq_reserved,omitempty"`
	// Started is when the run began; Duration how long it took.
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	// ExclusionsFile is the exclusion report, "" if no row was excluded.
	ExclusionsFile string `json:"exclusions_file,omitempty"`
}

// Outcome is how a run ended.
type Outcome string

// Outcomes of a run.
const (
	Succeeded Outcome = "succeeded"
	// Refused: the snapshot shrank more than Config.MaxShrink allows
	// (ErrShrink); nothing was staged or published.
	Refused Outcome = "refused"
	// Failed: any other error. What was published is republished by the
	// next sync of the segment.
	Failed Outcome = "failed"
)

// outcome classifies a run's error.
func outcome(err error) Outcome {
	switch {
	case err == nil:
		return Succeeded
	case errors.Is(err, ErrShrink):
		return Refused
	}
	return Failed
}

// RebuildSummary reports a snapshot read back from the destination.
type RebuildSummary struct {
	Reason  string `json:"reason"`
	Members int64  `json:"members"`
	// DroppedPending is the run whose pending snapshot was dropped rather
	// than recovered, "" if none.
	DroppedPending string `json:"dropped_pending,omitempty"`
}

// PhaseSummary reports the republication of an interrupted run.
type PhaseSummary struct {
	Run      string `json:"run"`
	Attempt  int    `json:"attempt"` // 2 for the first recovery of that run, ...
	Added    int64  `json:"added"`
	Removed  int64  `json:"removed"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
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
	if s.Input != "" {
		// What was synced: a file, a URL, a cohort, or which run's
		// membership a rollback restored.
		line("input", "%s (%s)", s.Input, s.Source)
	}
	if r := s.Rebuilt; r != nil {
		dropped := ""
		if r.DroppedPending != "" {
			dropped = "; dropped pending run " + r.DroppedPending
		}
		line("rebuilt", "%d members read back from the destination: %s%s", r.Members, r.Reason, dropped)
	}
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

// excludedDetail lists the counts by reason: cohortcsv's reasons in their
// documented order, then any other source's, sorted.
func (s Summary) excludedDetail() string {
	var parts []string
	for _, r := range cohortcsv.Reasons {
		if c := s.Excluded[r]; c > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", r, c))
		}
	}
	for _, r := range slices.Sorted(maps.Keys(s.Excluded)) {
		if c := s.Excluded[r]; c > 0 && !slices.Contains(cohortcsv.Reasons, r) {
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
