package producer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/source"
)

// peekingSource reads keys and, after each, hands the run's meter reading
// to seen: what a progress bar sees while the source is read.
type peekingSource struct {
	keys  []string
	meter *Meter
	seen  []Progress
}

func (s *peekingSource) Name() string { return "peeking" }
func (s *peekingSource) Kind() string { return "csv" }
func (s *peekingSource) Read(ctx context.Context, emit func(string) error, exclude func(source.Exclusion) error) (source.Stats, error) {
	st := source.Stats{Excluded: map[string]int64{}}
	for i, k := range s.keys {
		st.Rows++
		if k == "" {
			st.Excluded["empty_id"]++
			if err := exclude(source.Exclusion{Row: int64(i + 1), Reason: "empty_id"}); err != nil {
				return st, err
			}
		} else {
			st.Keys++
			if err := emit(k); err != nil {
				return st, err
			}
		}
		s.seen = append(s.seen, s.meter.Read())
	}
	return st, ctx.Err()
}

func TestMeterFollowsTheRun(t *testing.T) {
	cfg, kf := testConfig(t)
	cfg.SendBatch = 2
	ctx := testenv.Context(t, 60*time.Second)
	m := new(Meter)
	if got := m.Read(); got != (Progress{}) {
		t.Fatalf("a new meter reads %+v, want nothing", got)
	}
	src := &peekingSource{keys: []string{"a", "", "b", "c", "d", "e"}, meter: m}
	// A wrapper that sees the meter while the diff is sent and once it is
	// over.
	var atSend, atWait []Progress
	wrap := func(p snapshot.Publisher) snapshot.Publisher {
		return peekingPublisher{Publisher: p, peek: func(wait bool) {
			if wait {
				atWait = append(atWait, m.Read())
			} else {
				atSend = append(atSend, m.Read())
			}
		}}
	}
	sum, err := syncWith(ctx, cfg, kf, SyncRequest{Env: "production", Segment: "s", Input: src, Meter: m}, wrap)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range src.seen {
		if p.Run != sum.Run || !p.Started.Equal(sum.Started) || p.Phase != PhaseReading || p.Done != int64(i+1) || p.Total != 0 {
			t.Fatalf("reading row %d: meter %+v, want run %s reading %d of unknown", i+1, p, sum.Run, i+1)
		}
	}
	if len(atSend) != 3 || len(atWait) != 1 {
		t.Fatalf("%d sends and %d waits seen, want 3 and 1", len(atSend), len(atWait))
	}
	for _, p := range atSend {
		if p.Phase != PhaseDiffing || p.Total != 0 {
			t.Fatalf("while the diff is sent the meter reads %+v, want diffing of unknown total", p)
		}
	}
	if p := atWait[0]; p.Phase != PhasePublishing || p.Total != 5 {
		t.Fatalf("once the diff is over the meter reads %+v, want publishing of 5", p)
	}
	if got := m.Read(); got != (Progress{Run: sum.Run, Started: sum.Started, Phase: PhaseEnded, Done: 5, Total: 5}) {
		t.Fatalf("after the run the meter reads %+v, want ended with 5 of 5 acknowledged", got)
	}
}

func TestMeterEndsOnFailure(t *testing.T) {
	cfg, kf := testConfig(t)
	cfg.SendBatch = 1
	ctx := testenv.Context(t, 60*time.Second)
	// Unwrapped, Done is what Kafka acknowledged.
	m := new(Meter)
	req := csvRequest("a", "b")
	req.Meter = m
	sum, err := Sync(ctx, cfg, kf, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Read(); got != (Progress{Run: sum.Run, Started: sum.Started, Phase: PhaseEnded, Done: 2, Total: 2}) {
		t.Fatalf("after the run the meter reads %+v, want ended with 2 of 2 acknowledged", got)
	}
	m = new(Meter)
	req = csvRequest("a", "b", "c", "d")
	req.Meter = m
	sum, err = syncWith(ctx, cfg, kf, req, failAfter(1))
	if !errors.Is(err, errInjected) {
		t.Fatalf("err = %v, want the injected failure", err)
	}
	if got := m.Read(); got.Run != sum.Run || got.Phase != PhaseEnded || got.Done > 1 {
		t.Fatalf("after a failed run the meter reads %+v, want ended, at most 1 acknowledged", got)
	}
}

// peekingPublisher calls peek before each Send and Wait.
type peekingPublisher struct {
	snapshot.Publisher
	peek func(wait bool)
}

func (p peekingPublisher) Send(ctx context.Context, batch []snapshot.Change) error {
	p.peek(false)
	return p.Publisher.Send(ctx, batch)
}

func (p peekingPublisher) Wait(ctx context.Context) error {
	p.peek(true)
	return p.Publisher.Wait(ctx)
}
