package progress

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cohortsync/cohortsync/producer"
)

// sample is one reading of a sync, as shown.
type sample struct {
	what, name string
	p          producer.Progress
	elapsed    time.Duration // in the phase
	// perSecond is the count's rate over the last seconds, 0 when unknown
	// (see window).
	perSecond float64
}

// unit is what the phase counts.
func (s sample) unit() string {
	switch s.p.Phase {
	case producer.PhaseReading:
		return "rows"
	case producer.PhaseStarting, producer.PhaseSorting:
		return ""
	}
	return "events"
}

// rate is the count's rate, 0 when unknown or over.
func (s sample) rate() float64 {
	if s.p.Phase == producer.PhaseEnded {
		return 0
	}
	return s.perSecond
}

// eta is the time left at the current rate, -1 when unknown (no total or
// no rate).
func (s sample) eta() time.Duration {
	r := s.rate()
	if s.p.Total <= 0 || r <= 0 || s.p.Phase == producer.PhaseEnded {
		return -1
	}
	left := max(s.p.Total-s.p.Done, 0)
	return time.Duration(float64(left) / r * float64(time.Second)).Round(time.Second)
}

// bar is the line drawn on a terminal, e.g.
//
//	production publishing [########------------]  40%  4,000/10,000 events  1,000/s  ETA 6s
func (s sample) bar(width int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-10s", s.name, s.p.Phase)
	unit := s.unit()
	switch {
	case s.p.Total > 0:
		frac := min(float64(s.p.Done)/float64(s.p.Total), 1)
		full := int(frac * float64(width))
		fmt.Fprintf(&b, " [%s%s] %3.0f%%  %s/%s %s", strings.Repeat("#", full), strings.Repeat("-", width-full), 100*frac,
			count(s.p.Done), count(s.p.Total), unit)
	case unit != "":
		fmt.Fprintf(&b, " %s %s", count(s.p.Done), unit)
	}
	if r := s.rate(); r > 0 {
		fmt.Fprintf(&b, "  %s/s", count(int64(r)))
	}
	if eta := s.eta(); eta >= 0 {
		fmt.Fprintf(&b, "  ETA %v", eta)
	} else if s.p.Phase != producer.PhaseEnded {
		fmt.Fprintf(&b, "  %v", s.elapsed.Round(time.Second))
	}
	return b.String()
}

// attrs are the log line's attributes.
func (s sample) attrs() []any {
	a := []any{s.what, s.name, "run", s.p.Run, "phase", string(s.p.Phase), "done", s.p.Done}
	if s.p.Total > 0 {
		a = append(a, "total", s.p.Total)
	}
	if r := s.rate(); r > 0 {
		a = append(a, "per_second", int64(r))
	}
	if eta := s.eta(); eta >= 0 {
		a = append(a, "eta", eta)
	}
	return a
}

// count writes n with thousands separators: 1,234,567.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// window is the recent readings of a count, for its rate.
type window struct {
	pts []point
}

type point struct {
	t    time.Time
	done int64
}

// windowSpan is how far back the rate looks; minSpan how much it needs.
const (
	windowSpan = 5 * time.Second
	minSpan    = time.Second / 2
)

// add records a reading; continued says whether its count goes on from
// the last one's (the same phase, or diffing into publishing: both count
// acknowledged events), else the window starts again.
func (w *window) add(t time.Time, done int64, continued bool) {
	if !continued || (len(w.pts) > 0 && done < w.pts[len(w.pts)-1].done) {
		w.pts = w.pts[:0]
	}
	w.pts = append(w.pts, point{t, done})
	// Keep one reading at or before the span's start.
	i := 0
	for i+1 < len(w.pts) && t.Sub(w.pts[i+1].t) >= windowSpan {
		i++
	}
	w.pts = w.pts[i:]
}

// rate is the count per second across the window, 0 until it spans
// minSpan.
func (w *window) rate() float64 {
	if len(w.pts) < 2 {
		return 0
	}
	first, last := w.pts[0], w.pts[len(w.pts)-1]
	span := last.t.Sub(first.t)
	if span < minSpan {
		return 0
	}
	return float64(last.done-first.done) / span.Seconds()
}

// continues tells whether phase next counts on from prev's count.
func continues(prev, next producer.Phase) bool {
	return prev == next || (prev == producer.PhaseDiffing && next == producer.PhasePublishing)
}
