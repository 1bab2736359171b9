package snapshot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/schema"
)

var testID = SegmentID{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, ContextKind: "user"}

var errCrash = errors.New("simulated crash")

// event is what the fake topic received.
type event struct {
	op  schema.Op
	key string
	seq uint64
}

// fakePub delivers changes to a shared log, like a Kafka topic that
// acknowledges everything, until failAfter changes have been delivered in
// this run (-1: never); failWait makes the final acknowledgement fail even
// though every change was delivered.
type fakePub struct {
	log       *[]event
	failAfter int
	failWait  bool
	sent      int
	failed    bool
}

func (p *fakePub) Send(_ context.Context, batch []Change) error {
	for _, c := range batch {
		if p.failAfter >= 0 && p.sent >= p.failAfter {
			p.failed = true
			return errCrash
		}
		*p.log = append(*p.log, event{op: c.Op, key: string(c.Key), seq: c.Seq})
		p.sent++
	}
	return nil
}

func (p *fakePub) Wait(context.Context) error {
	if p.failWait || p.failed {
		p.failed = true
		return errCrash
	}
	return nil
}

// crash says where a run dies: at the hook call number hookAt (0: none), or
// in publishing (failAfter >= 0, failWait).
type crash struct {
	hookAt    int
	failAfter int
	failWait  bool
}

func (c crash) String() string {
	switch {
	case c.hookAt > 0:
		return fmt.Sprintf("hook#%d", c.hookAt)
	case c.failWait:
		return "ack-lost"
	case c.failAfter >= 0:
		return fmt.Sprintf("after-%d-events", c.failAfter)
	}
	return "no-crash"
}

var noCrash = crash{failAfter: -1}

// syncRun is one producer run: open, recover, sort, apply, close. It reports
// whether the injected crash fired, and fails the test on any other error.
func syncRun(t *testing.T, stateDir, run string, keys []string, log *[]event, c crash) (crashed bool) {
	t.Helper()
	_, crashed = syncRunWith(t, stateDir, run, keys, log, c, nil)
	return crashed
}

// syncRunWith is syncRun with Open options, and onPhase (unless nil) called
// with each phase before it is published. It returns Sync's result too.
func syncRunWith(t *testing.T, stateDir, run string, keys []string, log *[]event, c crash, onPhase func(*Phase), opts ...Option) (res SyncResult, crashed bool) {
	t.Helper()
	s, err := Open(context.Background(), stateDir, testID, opts...)
	if err != nil {
		t.Fatalf("run %s: open: %v", run, err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}()
	calls := 0
	s.hook = func(point string) error {
		calls++
		if calls == c.hookAt {
			return errCrash
		}
		return nil
	}
	pub := &fakePub{log: log, failAfter: c.failAfter, failWait: c.failWait}
	check := func(err error) bool {
		if err == nil {
			return false
		}
		if !errors.Is(err, errCrash) {
			t.Fatalf("run %s (%v): %v", run, c, err)
		}
		return true
	}
	pubFor := func(ph *Phase) (Publisher, error) {
		if onPhase != nil {
			onPhase(ph)
		}
		return pub, nil
	}
	res, err = s.Sync(context.Background(), run, addAll(keys), pubFor, SyncOptions{SendBatch: 2})
	return res, check(err)
}

// addAll is a Sync fill adding keys.
func addAll(keys ...[]string) func(add func(string) error) error {
	return func(add func(string) error) error {
		for _, ks := range keys {
			for _, k := range ks {
				if err := add(k); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// samePub publishes every phase through pub.
func samePub(pub Publisher) PublisherFor {
	return func(*Phase) (Publisher, error) { return pub, nil }
}

// membership replays the log in order, as the consumer applies it.
func membership(log []event) map[string]bool {
	m := map[string]bool{}
	for _, e := range log {
		if e.op == schema.OpAdd {
			m[e.key] = true
		} else {
			delete(m, e.key)
		}
	}
	return m
}

// membershipBySeq keeps, per key, the event with the highest sequence number,
// as a consumer that orders by seq would.
func membershipBySeq(log []event) map[string]bool {
	last := map[string]event{}
	for _, e := range log {
		if l, ok := last[e.key]; !ok || e.seq > l.seq {
			last[e.key] = e
		}
	}
	m := map[string]bool{}
	for k, e := range last {
		if e.op == schema.OpAdd {
			m[k] = true
		}
	}
	return m
}

func setOf(keys []string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func checkFinal(t *testing.T, stateDir string, log []event, want []string, lastRun string) {
	t.Helper()
	if got := membership(log); !maps.Equal(got, setOf(want)) {
		t.Fatalf("membership %v, want %v\nlog: %v", slices.Sorted(maps.Keys(got)), want, log)
	}
	if got := membershipBySeq(log); !maps.Equal(got, setOf(want)) {
		t.Fatalf("membership by seq %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	for i := 1; i < len(log); i++ {
		if log[i].seq <= log[i-1].seq {
			t.Fatalf("seq %d after %d: sequence numbers reused or going back\nlog: %v", log[i].seq, log[i-1].seq, log)
		}
	}
	s, err := Open(context.Background(), stateDir, testID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.PendingRun() != "" || s.CommittedRun() != lastRun || s.CommittedCount() != int64(len(want)) {
		t.Fatalf("state: pending %q committed %q (%d keys), want committed %q (%d)",
			s.PendingRun(), s.CommittedRun(), s.CommittedCount(), lastRun, len(want))
	}
	entries, _ := os.ReadDir(s.Dir())
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	wantNames := []string{lockFileName, snapPrefix + lastRun + snapSuffix, stateFile, tmpDirName}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("files %v, want %v", names, wantNames)
	}
}

var history = [][]string{
	{"a", "b", "c"},
	{"b", "c", "d", "x"}, // adds d and x, removes a
	{"a", "c", "d"},      // x and b leave, a comes back
	{"c", "e"},
}

// crashes enumerates every crash point of a run: each hook call, each number
// of events delivered before publishing fails, and a lost final ack.
func crashes() []crash {
	var cs []crash
	for k := 1; k <= 12; k++ {
		cs = append(cs, crash{hookAt: k, failAfter: -1})
	}
	for n := 0; n <= 9; n++ {
		cs = append(cs, crash{failAfter: n})
	}
	return append(cs, crash{failAfter: -1, failWait: true})
}

// TestCrashAtEveryStep runs a history of snapshots, crashes one run at every
// possible point, reruns (with the next snapshot, or the same one again) and
// checks that replaying the published events gives exactly the last
// snapshot, with sequence numbers that only grow.
func TestCrashAtEveryStep(t *testing.T) {
	for crashRun := range history {
		for _, sameAgain := range []bool{false, true} {
			for _, c := range crashes() {
				name := fmt.Sprintf("run%d/%v/rerun-same=%v", crashRun, c, sameAgain)
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					var log []event
					// A final snapshot after the history, so a crash of the
					// last history run has a rerun too.
					runs := append(slices.Clone(history), []string{"f", "x"})
					if sameAgain {
						// The rerun after the crash gets the crashed snapshot again.
						runs = slices.Insert(runs, crashRun+1, history[crashRun])
					}
					lastRun := ""
					for i, keys := range runs {
						run := fmt.Sprintf("r%02d", i)
						cr := noCrash
						if i == crashRun {
							cr = c
						}
						crashed := syncRun(t, dir, run, keys, &log, cr)
						if i == crashRun && !crashed && (c.hookAt > 0 || c.failAfter >= 0 || c.failWait) {
							// The run had fewer crash points than this one:
							// it completed, which is also a valid history.
							t.Logf("crash %v did not fire", c)
						}
						if !crashed {
							lastRun = run
						}
					}
					if lastRun != fmt.Sprintf("r%02d", len(runs)-1) {
						t.Fatalf("last run did not complete")
					}
					checkFinal(t, dir, log, runs[len(runs)-1], lastRun)
				})
			}
		}
	}
}

// TestCrashDuringRecovery crashes a run, then crashes its rerun too (during
// the recovery or its own phase), then lets a third run finish.
func TestCrashDuringRecovery(t *testing.T) {
	first := []crash{{hookAt: 4, failAfter: -1}, {failAfter: 1}, {failAfter: -1, failWait: true}}
	for _, c1 := range first {
		for _, c2 := range crashes() {
			t.Run(fmt.Sprintf("%v/then/%v", c1, c2), func(t *testing.T) {
				dir := t.TempDir()
				var log []event
				syncRun(t, dir, "r00", history[0], &log, noCrash)
				if !syncRun(t, dir, "r01", history[1], &log, c1) {
					t.Fatalf("first crash %v did not fire", c1)
				}
				syncRun(t, dir, "r02", history[2], &log, c2)
				syncRun(t, dir, "r03", history[3], &log, noCrash)
				checkFinal(t, dir, log, history[3], "r03")
			})
		}
	}
}

// TestCrashPointsFire makes sure the enumeration above reaches every step:
// a run with a pending snapshot passes all hook points, in this order.
func TestCrashPointsFire(t *testing.T) {
	dir := t.TempDir()
	var log []event
	syncRun(t, dir, "r00", history[0], &log, noCrash)
	syncRun(t, dir, "r01", history[1], &log, crash{failAfter: 0})
	s, err := Open(context.Background(), dir, testID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var points []string
	s.hook = func(p string) error { points = append(points, p); return nil }
	pub := &fakePub{log: &log, failAfter: -1}
	if _, err := s.Sync(context.Background(), "r02", addAll([]string{"z"}), samePub(pub), SyncOptions{SendBatch: 2}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"resume:before-state", "state:temp-written",
		"commit:before-state", "state:temp-written", "commit:after-state",
		"stage:sorted", "stage:renamed", "state:temp-written",
		"commit:before-state", "state:temp-written", "commit:after-state",
	}
	if !slices.Equal(points, want) {
		t.Fatalf("crash points %v, want %v", points, want)
	}
	if len(points) > 12 {
		t.Fatalf("crashes() enumerates 12 hook calls, the protocol has %d", len(points))
	}
}

func TestRecoveryUsesFreshSequenceRange(t *testing.T) {
	dir := t.TempDir()
	var log []event
	syncRun(t, dir, "r00", history[0], &log, noCrash) // seq 1..3, reserved up to 1+0+3=4
	s, _ := Open(context.Background(), dir, testID)
	if s.NextSeq() != 5 {
		t.Fatalf("next seq %d after the first run, want 5", s.NextSeq())
	}
	s.Close()
	syncRun(t, dir, "r01", history[1], &log, crash{failAfter: 1}) // reserves 5..5+3+4=12
	s, _ = Open(context.Background(), dir, testID)
	defer s.Close()
	ph, err := s.resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ph.FirstSeq != 13 || ph.ReservedUpto != 13+3+4 || !ph.Recovery || ph.Run != "r01" {
		t.Fatalf("recovery phase %+v, want seq 13..20 of r01", ph)
	}
}

func TestOpenLock(t *testing.T) {
	dir := t.TempDir()
	s1, err := Open(context.Background(), dir, testID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), dir, testID)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("holder pid %d", os.Getpid())) {
		t.Fatalf("second Open: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	other := testID
	other.Generation = 2
	s2, err := Open(context.Background(), dir, other)
	if err != nil {
		t.Fatalf("another segment is not locked: %v", err)
	}
	s2.Close()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s3, err := Open(context.Background(), dir, testID)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}

func TestOpenRemovesGarbage(t *testing.T) {
	dir := t.TempDir()
	var log []event
	syncRun(t, dir, "r00", history[0], &log, noCrash)
	s, _ := Open(context.Background(), dir, testID)
	sd := s.Dir()
	// A crashed sort leaves runs; a crashed stage an unreferenced snapshot
	// and a temp state file; the producer's own files must survive.
	sorter, _ := NewSorter(SortOptions{ChunkBytes: MinChunkBytes, TempDir: filepath.Join(sd, tmpDirName)})
	for i := range 20000 {
		sorter.Add(fmt.Sprintf("k%06d", i))
	}
	s.Close()
	for _, name := range []string{"snap-r99.keys", stateTmpFile} {
		os.WriteFile(filepath.Join(sd, name), []byte("junk"), 0o644)
	}
	os.WriteFile(filepath.Join(sd, "exclusions-r00.csv"), []byte("row,value,reason\n"), 0o644)
	s, err := Open(context.Background(), dir, testID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tmp, _ := os.ReadDir(filepath.Join(sd, tmpDirName))
	if len(tmp) != 0 {
		t.Fatalf("tmp not emptied: %v", tmp)
	}
	for _, name := range []string{"snap-r99.keys", stateTmpFile} {
		if _, err := os.Stat(filepath.Join(sd, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s not removed: %v", name, err)
		}
	}
	for _, name := range []string{"exclusions-r00.csv", "snap-r00.keys"} {
		if _, err := os.Stat(filepath.Join(sd, name)); err != nil {
			t.Fatalf("%s removed: %v", name, err)
		}
	}
}

func TestCorruptStateIsReported(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"state file not JSON", func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, stateFile), []byte("{"), 0o644)
		}, "snapshot file is corrupt"},
		{"state of another segment", func(t *testing.T, d string) {
			b, _ := os.ReadFile(filepath.Join(d, stateFile))
			os.WriteFile(filepath.Join(d, stateFile), []byte(strings.Replace(string(b), `"production"`, `"staging"`, 1)), 0o644)
		}, `belongs to env "staging"`},
		{"state naming a path outside the directory", func(t *testing.T, d string) {
			b, _ := os.ReadFile(filepath.Join(d, stateFile))
			os.WriteFile(filepath.Join(d, stateFile), []byte(strings.Replace(string(b), `"snap-r00.keys"`, `"../../etc/passwd"`, 1)), 0o644)
		}, "snapshot reference"},
		{"committed snapshot missing", func(t *testing.T, d string) {
			os.Remove(filepath.Join(d, "snap-r00.keys"))
		}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var log []event
			syncRun(t, dir, "r00", history[0], &log, noCrash)
			tt.damage(t, filepath.Join(dir, testID.dirName()))
			_, err := Open(context.Background(), dir, testID)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v, want %q", err, tt.want)
			}
		})
	}
}

// TestCorruptSnapshotStopsBeforePublishing damages the committed snapshot
// and checks that the next run fails with ErrCorrupt having published
// nothing, and leaves nothing pending.
func TestCorruptSnapshotStopsBeforePublishing(t *testing.T) {
	dir := t.TempDir()
	var log []event
	syncRun(t, dir, "r00", history[0], &log, noCrash)
	p := filepath.Join(dir, testID.dirName(), "snap-r00.keys")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)-1], 0o644)
	n := len(log)
	s, err := Open(context.Background(), dir, testID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Sync(context.Background(), "r01", addAll([]string{"q"}), samePub(&fakePub{log: &log, failAfter: -1}), SyncOptions{SendBatch: 2})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "snapshot of run r00") {
		t.Fatalf("Sync: %v, want ErrCorrupt naming run r00", err)
	}
	if len(log) != n || s.PendingRun() != "" {
		t.Fatalf("published %d events / pending %q after detecting corruption", len(log)-n, s.PendingRun())
	}
	// The new snapshot, sorted while the committed one was verified, is gone.
	if left, _ := os.ReadDir(filepath.Join(s.Dir(), tmpDirName)); len(left) != 0 {
		t.Fatalf("files left in tmp: %v", left)
	}
}

func TestSegmentIDValidate(t *testing.T) {
	tests := []struct {
		name string
		id   SegmentID
		want string
	}{
		{"valid", testID, ""},
		{"empty env", SegmentID{Segment: "s", Generation: 1, ContextKind: "user"}, "env: empty"},
		{"unit separator in segment", SegmentID{Env: "e", Segment: "a\x1fb", Generation: 1, ContextKind: "user"}, "segment: contains the unit separator"},
		{"generation 0", SegmentID{Env: "e", Segment: "s", ContextKind: "user"}, "generation: 0 is not >= 1"},
		{"invalid UTF-8 kind", SegmentID{Env: "e", Segment: "s", Generation: 1, ContextKind: "\xff"}, "context kind: not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.id.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDirNameIsSafeAndDistinct(t *testing.T) {
	ids := []SegmentID{
		{Env: "../..", Segment: "/etc/passwd", Generation: 1, ContextKind: "user"},
		{Env: "a b", Segment: "s", Generation: 1, ContextKind: "user"},
		{Env: "a_b", Segment: "s", Generation: 1, ContextKind: "user"},
		{Env: strings.Repeat("é", 500), Segment: strings.Repeat("s", 1024), Generation: 1, ContextKind: "user"},
	}
	seen := map[string]bool{}
	for _, id := range ids {
		n := id.dirName()
		if strings.ContainsAny(n, `/\`) || n == "." || n == ".." || len(n) > 255 || seen[n] {
			t.Fatalf("dir name %q for %v is unsafe or not distinct", n, id)
		}
		seen[n] = true
	}
}

// TestAcceptRefusalLeavesNothingPending: a snapshot refused by the accept
// check (the producer's shrink guard) must not be recovered, i.e. published,
// by the next run.
func TestAcceptRefusalLeavesNothingPending(t *testing.T) {
	dir := t.TempDir()
	var log []event
	syncRun(t, dir, "r00", history[0], &log, noCrash)
	s, err := Open(context.Background(), dir, testID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	refused := errors.New("too small")
	var sawCommitted, sawNext int64
	n := len(log)
	_, err = s.Sync(context.Background(), "r01", addAll([]string{"only-one"}), samePub(&fakePub{log: &log, failAfter: -1}), SyncOptions{
		Accept: func(committed, next int64) error {
			sawCommitted, sawNext = committed, next
			return refused
		},
	})
	if !errors.Is(err, refused) {
		t.Fatalf("Sync = %v, want the accept error", err)
	}
	if sawCommitted != int64(len(history[0])) || sawNext != 1 {
		t.Errorf("accept saw committed %d next %d, want %d and 1", sawCommitted, sawNext, len(history[0]))
	}
	if len(log) != n || s.PendingRun() != "" {
		t.Fatalf("published %d events / pending run %q after a refusal", len(log)-n, s.PendingRun())
	}
	if ph, err := s.resume(context.Background()); err != nil || ph != nil {
		t.Fatalf("resume = %+v, %v; want nothing to recover", ph, err)
	}
	entries, err := os.ReadDir(filepath.Join(s.Dir(), tmpDirName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("temp files left: %v", entries)
	}
}
