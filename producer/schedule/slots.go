package schedule

import (
	"hash/fnv"
	"strconv"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// clock is how slots are placed: the time zone of daily and cron
// schedules and the jitter bound.
type clock struct {
	loc       *time.Location
	maxJitter time.Duration
}

// cronLookback are the windows searched, one after the other, for the
// latest slot of a cron expression before a time: the library only steps
// forward. Five years is as far as its Next looks.
var cronLookback = []time.Duration{2 * time.Hour, 50 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 366 * 24 * time.Hour}

// maxCronSteps bounds the Next calls of one search; the densest schedule
// that has no slot in a shorter window has a few thousand in the next one.
const maxCronSteps = 1 << 16

// prev is the latest slot of sc at or before t; false if there is none (a
// cron expression with no time in the last five years, or a schedule
// without slots).
func (c clock) prev(sc catalog.Schedule, t time.Time) (time.Time, bool) {
	lt := t.In(c.loc)
	switch sc.Kind {
	case catalog.ScheduleHourly:
		// The local top of the hour, as an instant: zones with a half-hour
		// offset have their own.
		return t.Add(-(time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second +
			time.Duration(lt.Nanosecond()))), true
	case catalog.ScheduleDaily:
		p := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, c.loc)
		if p.After(t) { // a midnight skipped by a clock change normalises forward
			p = time.Date(lt.Year(), lt.Month(), lt.Day()-1, 0, 0, 0, 0, c.loc)
		}
		return p, true
	case catalog.ScheduleCron:
		cr := sc.Cron()
		if cr == nil {
			return time.Time{}, false
		}
		steps := 0
		for _, w := range cronLookback {
			var last time.Time
			for n := cr.Next(t.Add(-w).In(c.loc)); !n.IsZero() && !n.After(t) && steps < maxCronSteps; n = cr.Next(n) {
				last = n
				steps++
			}
			if !last.IsZero() {
				return last, true
			}
		}
	}
	return time.Time{}, false
}

// next is the first slot of sc after t; false if there is none.
func (c clock) next(sc catalog.Schedule, t time.Time) (time.Time, bool) {
	switch sc.Kind {
	case catalog.ScheduleHourly:
		p, _ := c.prev(sc, t)
		return p.Add(time.Hour), true
	case catalog.ScheduleDaily:
		p, _ := c.prev(sc, t)
		lp := p.In(c.loc)
		return time.Date(lp.Year(), lp.Month(), lp.Day()+1, 0, 0, 0, 0, c.loc), true
	case catalog.ScheduleCron:
		if cr := sc.Cron(); cr != nil {
			n := cr.Next(t.In(c.loc))
			return n, !n.IsZero()
		}
	}
	return time.Time{}, false
}

// jitter is the delay of slot of the mapping called name: the same on every
// replica, below maxJitter and below half the time to the next slot (so a
// slot is always due before the next one).
func (c clock) jitter(sc catalog.Schedule, name string, slot time.Time) time.Duration {
	bound := c.maxJitter
	if n, ok := c.next(sc, slot); ok && n.Sub(slot)/2 < bound {
		bound = n.Sub(slot) / 2
	}
	if bound <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(name + "\x00" + slotID(slot))) // a hash.Hash never fails
	return time.Duration(h.Sum64() % uint64(bound))
}

// due is the latest slot of sc whose jittered time is at or before now.
func (c clock) due(sc catalog.Schedule, name string, now time.Time) (time.Time, bool) {
	p, ok := c.prev(sc, now)
	if !ok {
		return time.Time{}, false
	}
	if !now.Before(p.Add(c.jitter(sc, name, p))) {
		return p, true
	}
	// The slot before is due: its jitter is below half its interval.
	return c.prev(sc, p.Add(-time.Nanosecond))
}

// slotID is how a periodic slot is recorded: its Unix time in milliseconds,
// so the scripts can compare slots as numbers.
func slotID(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
