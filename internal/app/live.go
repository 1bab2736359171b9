package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
)

// meterReader is what liveRuns reads of a destination's sync
// (producer.Meter).
type meterReader interface{ Read() producer.Progress }

// liveRuns records a mapping run while it goes: each destination's sync,
// once it has a run id, is written to the history as running, with its
// progress, when its phase changes and at least every
// runstore.ProgressInterval, until stop. The caller then writes the final
// records, which replace these. A process that dies leaves records that
// stop being rewritten: the history reads them interrupted.
type liveRuns struct {
	history *runstore.Store
	log     *slog.Logger
	mapping catalog.Mapping
	trigger string
	// also, unless nil, is told of each destination too (sync's progress
	// bar).
	also mappingrun.Observer
	// poll is how often the meters are read; interval how often an
	// unchanged phase is rewritten. now is the clock.
	poll, interval time.Duration
	now            func() time.Time

	mu     sync.Mutex
	dests  []*liveDest
	cancel context.CancelFunc
	done   chan struct{}
}

type liveDest struct {
	name    string
	meter   meterReader
	phase   string    // last written
	written time.Time // zero: never
}

// startLive starts recording m's run (trigger says why it runs) in h,
// until stop; ctx bounds it.
func startLive(ctx context.Context, h *runstore.Store, log *slog.Logger, m catalog.Mapping, trigger string, also mappingrun.Observer) *liveRuns {
	ctx, cancel := context.WithCancel(ctx)
	l := &liveRuns{history: h, log: log, mapping: m, trigger: trigger, also: also,
		poll: 100 * time.Millisecond, interval: runstore.ProgressInterval, now: time.Now, cancel: cancel, done: make(chan struct{})}
	go l.loop(ctx)
	return l
}

// observe is the run's mappingrun.Observer.
func (l *liveRuns) observe(dest string, m *producer.Meter) {
	l.add(dest, m)
	if l.also != nil {
		l.also(dest, m)
	}
}

func (l *liveRuns) add(dest string, m meterReader) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dests = append(l.dests, &liveDest{name: dest, meter: m})
}

// stop ends the recording and waits for a write in progress: nothing is
// written once it returns, so the final records are not overwritten.
// Idempotent.
func (l *liveRuns) stop() {
	l.cancel()
	<-l.done
}

func (l *liveRuns) loop(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.poll)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		dests := append([]*liveDest(nil), l.dests...)
		l.mu.Unlock()
		for _, d := range dests {
			if err := l.write(ctx, d); err != nil && ctx.Err() == nil {
				// A history that cannot be written does not fail the run;
				// said once per run, the rest at debug level.
				level := slog.LevelDebug
				if !warned {
					level, warned = slog.LevelWarn, true
				}
				l.log.Log(ctx, level, "record a running run's progress", "mapping", l.mapping.Name, "destination", d.name, "error", err)
			}
		}
	}
}

// write records d's progress if its run started and its phase changed or
// interval passed since the last write.
func (l *liveRuns) write(ctx context.Context, d *liveDest) error {
	p := d.meter.Read()
	if p.Run == "" {
		return nil
	}
	phase := string(p.Phase)
	if p.Phase == producer.PhaseEnded {
		phase = runstore.PhaseWaiting // for the mapping's other destinations
	}
	now := l.now()
	if phase == d.phase && now.Sub(d.written) < l.interval {
		return nil
	}
	m := l.mapping
	rec := runstore.Record{ID: p.Run, Mapping: m.Name, Destination: d.name, Trigger: l.trigger,
		Summary:  producer.Summary{Run: p.Run, Started: p.Started, Segment: m.Segment, Generation: m.Generation, ContextKind: m.ContextKind},
		Progress: &runstore.Progress{Phase: phase, Done: p.Done, Total: p.Total, Updated: now}}
	// Not cut short by stop: a write cancelled half-way could still land
	// after the final record.
	if err := l.history.Add(context.WithoutCancel(ctx), rec); err != nil {
		return err
	}
	d.phase, d.written = phase, now
	return nil
}
