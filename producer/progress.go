package producer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// Phase is what a run is doing, as its Meter reports it.
type Phase string

// Phases of a run, in the order a run goes through them.
const (
	// PhaseStarting: the run opens the segment's state, takes its lease and
	// checks the shared state (a rebuild from the destination happens here).
	PhaseStarting Phase = "starting"
	// PhaseRecovering: the snapshot an interrupted run left pending is
	// republished; Done counts its acknowledged events, Total is known once
	// its diff has been enumerated.
	PhaseRecovering Phase = "recovering"
	// PhaseReading: the source is read; Done counts its rows (kept and
	// excluded), Total is unknown.
	PhaseReading Phase = "reading"
	// PhaseSorting: the rows read are sorted into the new snapshot.
	PhaseSorting Phase = "sorting"
	// PhaseDiffing: the new snapshot is compared with the last one and each
	// change is sent as it is found; Done counts the acknowledged events,
	// Total is not known yet.
	PhaseDiffing Phase = "diffing"
	// PhasePublishing: the diff is over, the run waits for Kafka to
	// acknowledge the rest of its events; Total is the run's events.
	PhasePublishing Phase = "publishing"
	// PhaseEnded: Sync returned (whatever its outcome).
	PhaseEnded Phase = "ended"
)

// Progress is a Meter's reading.
type Progress struct {
	// Run is the run's id, "" until the run has started; Started is when
	// it did.
	Run     string
	Started time.Time
	Phase   Phase
	// Done counts what the phase did (see the phases); Total is what it
	// has to do, 0 when unknown.
	Done, Total int64
}

// Meter is kept up to date by the Sync it is given (SyncRequest.Meter):
// the run's phase and counts, at the run's edges (the rows the source
// yields, the events Kafka acknowledges). It costs the run an atomic add
// per row; whoever wants to show it (a progress bar, a run history) reads
// it at its own pace. Safe for concurrent use; the zero value is ready.
type Meter struct {
	done atomic.Int64 // read under mu with the rest, added to without it

	mu      sync.Mutex
	run     string
	started time.Time
	phase   Phase
	total   int64
	// acked, when set, counts Done instead of done: the events the phase's
	// stream has had acknowledged.
	acked func() int64
	// sent counts the events of the phase sent so far (its Total once the
	// diff ends).
	sent int64
}

// Read returns the meter's current reading.
func (m *Meter) Read() Progress {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := Progress{Run: m.run, Started: m.started, Phase: m.phase, Total: m.total, Done: m.done.Load()}
	if m.acked != nil {
		p.Done = m.acked()
	}
	return p
}

// start records the run's id and start; the run is starting.
func (m *Meter) start(run string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.run, m.started = run, at
	m.enter(PhaseStarting)
}

// set moves to phase, its counts at zero.
func (m *Meter) set(phase Phase) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enter(phase)
}

func (m *Meter) enter(phase Phase) {
	m.phase, m.total, m.acked, m.sent = phase, 0, nil, 0
	m.done.Store(0)
}

// row counts a row read.
func (m *Meter) row() { m.done.Add(1) }

// end marks the run over; the counts of its last phase stay as they were.
func (m *Meter) end() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.acked != nil {
		m.done.Store(m.acked())
		m.acked = nil
	}
	m.phase = PhaseEnded
}

// acker is what a phase's publisher counts its acknowledgements with
// (publish.Stream does).
type acker interface{ Acked() int64 }

// publisher returns pub metered: the phase is recovering or diffing,
// Done what pub has had acknowledged (when it counts them), and Wait,
// called once the diff has been enumerated, makes Total the events sent.
func (m *Meter) publisher(ph *snapshot.Phase, pub snapshot.Publisher) snapshot.Publisher {
	m.mu.Lock()
	defer m.mu.Unlock()
	phase := PhaseDiffing
	if ph.Recovery {
		phase = PhaseRecovering
	}
	m.enter(phase)
	if a, ok := pub.(acker); ok {
		m.acked = a.Acked
	}
	return &meteredPublisher{Publisher: pub, m: m}
}

type meteredPublisher struct {
	snapshot.Publisher
	m *Meter
}

func (p *meteredPublisher) Send(ctx context.Context, batch []snapshot.Change) error {
	if err := p.Publisher.Send(ctx, batch); err != nil {
		return err
	}
	p.m.mu.Lock()
	p.m.sent += int64(len(batch))
	p.m.mu.Unlock()
	return nil
}

func (p *meteredPublisher) Wait(ctx context.Context) error {
	p.m.mu.Lock()
	p.m.total = p.m.sent
	if p.m.phase == PhaseDiffing {
		p.m.phase = PhasePublishing
	}
	counts := p.m.acked != nil
	p.m.mu.Unlock()
	err := p.Publisher.Wait(ctx)
	if err == nil && !counts {
		// A publisher that does not count its acknowledgements: once Wait
		// returns, what was sent is done.
		p.m.mu.Lock()
		p.m.done.Store(p.m.sent)
		p.m.mu.Unlock()
	}
	return err
}
