package rollback

import (
	"errors"
	"fmt"
	"time"
)

// ErrHistoryIncomplete is wrapped by Source.Read's error when the topic no
// longer holds every event of the segment after the run (compaction or
// retention removed some): the membership cannot be restored exactly.
var ErrHistoryIncomplete = errors.New("the topic no longer holds the segment's history since the run")

// hole is a range of offsets [from, to) a partition no longer holds, and
// the timestamp of the record that follows it (zero when none does): the
// hole's records were appended before that one.
type hole struct {
	from, to int64
	before   time.Time
}

// partition follows one partition's offsets through a scan: where its log
// started and ended when the scan began, which offsets were missing, and
// the last event of the segment at or below the boundary.
type partition struct {
	id         int
	first, end int64
	next       int64 // the offset expected next
	holes      []hole
	// lastBefore is the offset of the partition's last event of the
	// segment numbered at or below the boundary, -1 if none: an event after
	// the boundary was published after it was acknowledged, so it lies
	// beyond.
	lastBefore int64
}

func newPartition(id int, first, end int64) *partition {
	p := &partition{id: id, first: first, end: end, next: first, lastBefore: -1}
	if first > 0 {
		// Retention (or a deletion) removed the log's head.
		p.holes = append(p.holes, hole{from: 0, to: first})
	}
	return p
}

// skipTo starts the scan at offset start when it lies beyond the log's
// first: every record before it was produced before the run started, so
// neither they nor the holes among them can hold a later event.
func (p *partition) skipTo(start int64) {
	if start <= p.first {
		return
	}
	p.first, p.next, p.holes = start, start, nil
}

// saw records the message at offset, in offset order, and its timestamp.
func (p *partition) saw(offset int64, at time.Time) {
	if offset > p.next {
		p.holes = append(p.holes, hole{from: p.next, to: offset})
	}
	for i := len(p.holes) - 1; i >= 0 && p.holes[i].before.IsZero(); i-- {
		p.holes[i].before = at
	}
	p.next = max(p.next, offset+1)
}

// finish records the offsets up to end that the scan never got.
func (p *partition) finish() {
	if p.next < p.end {
		p.holes = append(p.holes, hole{from: p.next, to: p.end})
		p.next = p.end
	}
}

// check fails if a hole may have held an event after the boundary: one
// that ends beyond lastBefore, unless the record after it was produced
// before since (the run's start, less the clocks' skew): the run's later
// events were all produced after it started.
func (p *partition) check(topic string, since time.Time) error {
	for _, h := range p.holes {
		if h.to <= p.lastBefore+1 || (!h.before.IsZero() && h.before.Before(since)) {
			continue
		}
		return fmt.Errorf("%w: partition %d of %s no longer holds offsets %d to %d (removed by compaction or retention), after its last event of the segment up to the run (%s); a membership cannot be restored without them",
			ErrHistoryIncomplete, p.id, topic, h.from, h.to-1, p.lastBeforeText())
	}
	return nil
}

func (p *partition) lastBeforeText() string {
	if p.lastBefore < 0 {
		return "none there"
	}
	return fmt.Sprintf("offset %d", p.lastBefore)
}
