package receiver

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
)

// recorded waits until n batches were recorded and returns the history's
// runs, newest first.
func (f *fixture) recorded(t *testing.T, n int64, filter runstore.Filter) []runstore.Record {
	t.Helper()
	s := f.rcv.Stats()
	testenv.Eventually(t, 10*time.Second, fmt.Sprintf("%d push runs recorded", n), func() bool {
		return s.Recorded.Load()+s.HistoryFailures.Load() >= n
	})
	if s.HistoryFailures.Load() > 0 {
		t.Fatalf("%d push runs not recorded", s.HistoryFailures.Load())
	}
	rs, err := f.history.List(t.Context(), filter)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestPushRunRecorded: an accepted batch is a run of the history (trigger
// push, filed under its segment when no mapping claims it, its events
// naming the run) with its counts and its exclusions, downloadable in the
// report's CSV; refused requests are not runs.
func TestPushRunRecorded(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	ctx := t.Context()
	tok := f.tokens["production"]
	// Refused: not runs.
	if a := f.push(t, "amplitude", tok, `{"environmentId": "`+prodID+`", "batch": 7}`); a.status != http.StatusBadRequest {
		t.Fatalf("a batch that is not an array: %d %+v", a.status, a.body)
	}
	if a := f.push(t, "amplitude", f.tokens["staging"], request(t, "requests/amplitude.json")); a.status != http.StatusForbidden {
		t.Fatalf("another destination's token: %d %+v", a.status, a.body)
	}
	body := `{"environmentId": "` + prodID + `", "batch": [
  {"userId": "user-1234", "cohortId": "7khm89cz", "value": true},
  {"userId": "user-5678", "cohortId": "7khm89cz", "value": false},
  {"userId": "", "cohortId": "7khm89cz", "value": true},
  {"cohortId": "7khm89cz", "value": true},
  {"userId": "user-9", "cohortId": "7khm89cz", "value": "yes"},
  {"userId": 4242, "cohortId": "7khm89cz", "value": true},
  {"userId": "user-1234", "cohortId": "7khm89cz", "value": true},
  {"userId": {"id": "x"}, "cohortId": "7khm89cz", "value": true}]}`
	if a := f.push(t, "amplitude", tok, body); a.status != http.StatusNoContent {
		t.Fatalf("status %d %+v", a.status, a.body)
	}
	rs := f.recorded(t, 1, runstore.Filter{})
	if len(rs) != 1 {
		t.Fatalf("%d runs recorded, want the accepted batch's only: %+v", len(rs), rs)
	}
	r := rs[0]
	s := r.Summary
	wantExcluded := map[string]int64{ReasonEmptyID: 1, ReasonMissingID: 1, ReasonBadMember: 1, ReasonIDNotString: 1}
	if r.Trigger != Trigger || r.Mapping != "amplitude-7khm89cz" || r.Destination != "production" || s.Run != r.ID ||
		s.Input != "amplitude" || s.Topic != f.pcfg.Topic || s.Source != Source || s.Env != "production" || s.Segment != "amplitude-7khm89cz" ||
		s.Generation != 1 || s.ContextKind != "user" || s.Outcome != producer.Succeeded ||
		s.Rows != 8 || s.Keys != 3 || s.Duplicates != 1 || s.Added != 2 || s.Removed != 1 || s.Events != 3 ||
		!maps.Equal(s.Excluded, wantExcluded) || s.LastSeq != s.FirstSeq+2 || s.FirstSeq == 0 || s.Started.IsZero() || s.Duration <= 0 {
		t.Fatalf("run %+v\nsummary %+v", r, s)
	}
	if r.Published.IsZero() || r.Barrier != nil || r.Status() != "published, not applied, with exclusions" {
		t.Fatalf("published %v, barrier %v, status %q: want published and, without Barriers, never claimed applied", r.Published, r.Barrier, r.Status())
	}
	if r.Exclusions == nil || *r.Exclusions != (runstore.ExclusionsKept{Kept: 4}) {
		t.Fatalf("exclusions kept %+v, want 4", r.Exclusions)
	}
	for _, ev := range f.events(t) {
		if ev.Run != r.ID {
			t.Fatalf("event of run %q, want the recorded run %q", ev.Run, r.ID)
		}
	}
	if got, err := f.history.Get(ctx, r.ID); err != nil || len(got) != 1 {
		t.Fatalf("Get(%s) = %+v, %v", r.ID, got, err)
	}
	var csv bytes.Buffer
	if err := f.history.WriteExclusions(ctx, r.ID, r.Destination, &csv); err != nil {
		t.Fatal(err)
	}
	testenv.Golden(t, *update, "testdata/golden/push-exclusions.csv", csv.Bytes())
}

// TestPushRunPositions: an excluded member's row counts the add array
// before the remove array, so that each names one member of the batch.
func TestPushRunPositions(t *testing.T) {
	ps := builtin(t)
	b, err := ps.Parse("rudderstack", []byte(`{"environmentId": "e", "cohortId": "c1",
	  "listData": {"add": [{"id": "u1"}, {"id": ""}], "remove": [{"id": "u2"}, {}, {"id": "u3"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, e := range b.Exclusions {
		rows = append(rows, fmt.Sprintf("%d %s", e.Row, e.Reason))
	}
	if fmt.Sprint(rows) != "[2 empty_id 4 missing_id]" || b.Received != 5 {
		t.Fatalf("exclusions %q of %d members, want [2 empty_id 4 missing_id] of 5", rows, b.Received)
	}
}

// TestPushRunHistoryDown: a history that cannot be written does not fail
// the batch: 204, and the failure counted (and logged).
func TestPushRunHistoryDown(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	down := redis.NewClient(&redis.Options{Addr: testenv.ClosedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	h, err := runstore.New(down, runstore.Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.rcv.history = h
	if a := f.push(t, "amplitude", f.tokens["production"], request(t, "requests/amplitude.json")); a.status != http.StatusNoContent {
		t.Fatalf("status %d %+v", a.status, a.body)
	}
	s := f.rcv.Stats()
	testenv.Eventually(t, 10*time.Second, "the failed recording", func() bool { return s.HistoryFailures.Load() == 1 })
	if s.Batches.Load() != 1 || s.Recorded.Load() != 0 {
		t.Fatalf("batches %d recorded %d", s.Batches.Load(), s.Recorded.Load())
	}
}
