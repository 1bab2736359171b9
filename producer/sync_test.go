package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/telemetry"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/publish/publishtest"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
	"github.com/cohortsync/cohortsync/schema"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testPartitions = 3

// testConfig returns a config for the test's Kafka backend, with a topic and
// state dir of its own, and the backend's client factory.
func testConfig(t testing.TB) (Config, *kafkax.Factory) {
	t.Helper()
	cfg := DefaultConfig()
	var kf *kafkax.Factory
	cfg.Config, kf = publishtest.Config(t)
	cfg.TopicPartitions = testPartitions
	cfg.StateDir = t.TempDir()
	return cfg, kf
}

func request(t testing.TB, csvFile string) SyncRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", csvFile))
	if err != nil {
		t.Fatal(err)
	}
	return SyncRequest{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1,
		Input: csvfile.New(bytes.NewReader(b), csvFile, csvfile.Options{})}
}

func csvRequest(keys ...string) SyncRequest {
	var b strings.Builder
	b.WriteString("amplitude_id,user_id\n")
	for i, k := range keys {
		fmt.Fprintf(&b, "%d,%s\n", i, k)
	}
	return SyncRequest{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1,
		Input: csvfile.New(strings.NewReader(b.String()), "generated.csv", csvfile.Options{})}
}

// readTopic reads every event on the topic, partition by partition (each
// membership lives on one partition, so per-partition order is the order
// that matters), decoding each with schema.Decode.
func readTopic(t *testing.T, cfg Config, kf *kafkax.Factory) []schema.Event {
	t.Helper()
	events, _ := readTopicMessages(t, cfg, kf)
	return events
}

// readTopicMessages reads the whole topic, checking that every message
// decodes and sits on the partition the hash balancer gives its key.
func readTopicMessages(t *testing.T, cfg Config, kf *kafkax.Factory) ([]schema.Event, []kafka.Message) {
	t.Helper()
	msgs := testenv.ReadTopic(t, kf.Brokers(), cfg.Topic, cfg.TopicPartitions)
	events := make([]schema.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := schema.Decode(&m)
		if err != nil {
			t.Fatalf("partition %d offset %d: %v", m.Partition, m.Offset, err)
		}
		if want := (&kafka.Hash{}).Balance(m, partitionsOf(cfg.TopicPartitions)...); want != m.Partition {
			t.Fatalf("event for %q on partition %d, the hash balancer gives %d", ev.ContextKey, m.Partition, want)
		}
		events = append(events, ev)
	}
	return events, msgs
}

func partitionsOf(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// replay applies events per context key in topic order, as the consumer does.
func replay(events []schema.Event) map[string]bool {
	m := map[string]bool{}
	for _, e := range events {
		if e.Op == schema.OpAdd {
			m[e.ContextKey] = true
		} else {
			delete(m, e.ContextKey)
		}
	}
	return m
}

func keysOf(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }

func eventsOfRun(events []schema.Event, run string) []schema.Event {
	var out []schema.Event
	for _, e := range events {
		if e.Run == run {
			out = append(out, e)
		}
	}
	return out
}

func opsByKey(events []schema.Event) map[string]string {
	m := map[string]string{}
	for _, e := range events {
		m[e.ContextKey] = e.Op.String()
	}
	return m
}

func TestSyncEndToEnd(t *testing.T) {
	cfg, kf := testConfig(t)
	ctx := testenv.Context(t, 60*time.Second)

	sum1, err := Sync(ctx, cfg, kf, request(t, "cohort1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if sum1.Added != 5 || sum1.Removed != 0 || sum1.Events != 5 || sum1.Keys != 5 || sum1.FirstSeq != 1 || sum1.LastSeq != 5 ||
		sum1.Outcome != Succeeded || sum1.Error != "" || sum1.Input != "cohort1.csv" || sum1.Source != "csv" || sum1.Started.IsZero() {
		t.Fatalf("first sync summary %+v", sum1)
	}
	events := readTopic(t, cfg, kf)
	if got := opsByKey(events); !maps.Equal(got, map[string]string{"alice": "add", "bob": "add", "carol": "add", "x": "add", "dave": "add"}) {
		t.Fatalf("first sync events %v", got)
	}
	for _, e := range events {
		if e.Run != sum1.Run || e.Env != "production" || e.Segment != "amplitude-7khm89cz" || e.Generation != 1 ||
			e.ContextKind != "user" || e.Source != "csv" || e.Seq < 1 || e.Seq > 5 {
			t.Fatalf("unexpected event %+v", e)
		}
	}

	sum2, err := Sync(ctx, cfg, kf, request(t, "cohort2.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Added != 2 || sum2.Removed != 3 || sum2.Unchanged != 2 || sum2.Events != 5 || sum2.FirstSeq <= sum1.LastSeq {
		t.Fatalf("second sync summary %+v", sum2)
	}
	events = readTopic(t, cfg, kf)
	second := eventsOfRun(events, sum2.Run)
	want := map[string]string{"erin": "add", "frank": "add", "bob": "remove", "x": "remove", "dave": "remove"}
	if got := opsByKey(second); !maps.Equal(got, want) {
		t.Fatalf("second sync published %v, want only the diff %v", got, want)
	}
	if got := keysOf(replay(events)); !slices.Equal(got, []string{"alice", "carol", "erin", "frank"}) {
		t.Fatalf("membership after replay %v", got)
	}

	// The same snapshot again publishes nothing.
	sum3, err := Sync(ctx, cfg, kf, request(t, "cohort2.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if sum3.Events != 0 || sum3.Unchanged != 4 {
		t.Fatalf("unchanged sync summary %+v", sum3)
	}
}

// failingPublisher delivers the first failAfter changes of a run (across
// phases) and then fails, like a producer killed mid-run.
type failingPublisher struct {
	snapshot.Publisher
	left     *int
	failWait bool // all delivered, but the run dies before it commits
}

func (p failingPublisher) Wait(ctx context.Context) error {
	if err := p.Publisher.Wait(ctx); err != nil {
		return err
	}
	if p.failWait {
		return errInjected
	}
	return nil
}

var errInjected = errors.New("injected failure")

func (p failingPublisher) Send(ctx context.Context, batch []snapshot.Change) error {
	if *p.left < len(batch) {
		n := *p.left
		*p.left = 0
		if n > 0 {
			if err := p.Publisher.Send(ctx, batch[:n]); err != nil {
				return err
			}
		}
		// Let what was handed over be acknowledged: those events are out.
		if err := p.Publisher.Wait(ctx); err != nil {
			return err
		}
		return errInjected
	}
	*p.left -= len(batch)
	return p.Publisher.Send(ctx, batch)
}

// failAfter fails a run after n events; n < 0 fails it after every event
// was acknowledged, before the commit.
func failAfter(n int) publisherWrapper {
	left := n
	if n < 0 {
		left = int(^uint(0) >> 1)
	}
	return func(p snapshot.Publisher) snapshot.Publisher {
		return failingPublisher{Publisher: p, left: &left, failWait: n < 0}
	}
}

// TestSyncCrashAndRerun interrupts a sync after N events, reruns with a
// different snapshot, and checks that the topic replays to exactly that
// snapshot: members of the crashed snapshot that the rerun lacks (x) end
// removed, nothing is lost, sequence numbers are never reused.
func TestSyncCrashAndRerun(t *testing.T) {
	s0 := []string{"a", "b", "c"}
	s1 := []string{"b", "c", "d", "x"} // a removed, d and x added
	s2 := []string{"a", "c", "d"}      // x and b gone, a back
	for _, n := range []int{0, 1, 2, -1} {
		name := fmt.Sprintf("crash after %d events", n)
		if n < 0 {
			name = "crash after all 3 events were acknowledged"
		}
		t.Run(name, func(t *testing.T) {
			cfg, kf := testConfig(t)
			cfg.SendBatch = 1 // one event per call, so the failure point is exact
			ctx := testenv.Context(t, 60*time.Second)
			if _, err := Sync(ctx, cfg, kf, csvRequest(s0...)); err != nil {
				t.Fatal(err)
			}
			crashed, err := syncWith(ctx, cfg, kf, csvRequest(s1...), failAfter(n))
			if !errors.Is(err, errInjected) {
				t.Fatalf("crashed run: err = %v, want the injected failure", err)
			}
			if crashed.Outcome != Failed || crashed.Error != err.Error() {
				t.Fatalf("crashed run: outcome %q, error %q; want failed with %q", crashed.Outcome, crashed.Error, err)
			}
			sum, err := Sync(ctx, cfg, kf, csvRequest(s2...))
			if err != nil {
				t.Fatal(err)
			}
			if sum.Recovered == nil || sum.Recovered.Run != crashed.Run || sum.Recovered.Added != 2 || sum.Recovered.Removed != 1 {
				t.Fatalf("rerun did not recover run %s in full: %+v", crashed.Run, sum.Recovered)
			}
			if sum.Recovered.FirstSeq <= crashed.FirstSeq+3+4 {
				t.Fatalf("recovery seq %d inside the crashed run's reserved range", sum.Recovered.FirstSeq)
			}
			events := readTopic(t, cfg, kf)
			if got := keysOf(replay(events)); !slices.Equal(got, s2) {
				t.Fatalf("membership %v, want %v", got, s2)
			}
			seen := map[uint64]bool{}
			for _, e := range events {
				if seen[e.Seq] {
					t.Fatalf("seq %d published twice", e.Seq)
				}
				seen[e.Seq] = true
			}
		})
	}
}

func TestSyncFailsFastWhenLocked(t *testing.T) {
	cfg, kf := testConfig(t)
	req := csvRequest("a")
	held, err := snapshot.Open(context.Background(), cfg.StateDir, snapshot.SegmentID{Env: req.Env, Segment: req.Segment, Generation: 1, ContextKind: "user"})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	start := time.Now()
	_, err = Sync(testenv.Context(t, 30*time.Second), cfg, kf, req)
	if !errors.Is(err, snapshot.ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("locked sync took %v to fail", d)
	}
}

func TestSyncConcurrentSameSegment(t *testing.T) {
	cfg, kf := testConfig(t)
	ctx := testenv.Context(t, 60*time.Second)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Sync(ctx, cfg, kf, csvRequest("a", "b"))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, snapshot.ErrLocked) {
			t.Fatalf("unexpected error %v", err)
		}
	}
	if errs[0] == nil && errs[1] == nil {
		// Both may succeed one after the other; then the second published nothing.
		t.Log("the syncs did not overlap")
	}
	if got := keysOf(replay(readTopic(t, cfg, kf))); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("membership %v", got)
	}
}

func TestSyncExclusions(t *testing.T) {
	cfg, kf := testConfig(t)
	ctx := testenv.Context(t, 60*time.Second)
	req := request(t, "with_exclusions.csv")
	// The hook (a run history's) sees what the local report gets, in order.
	var hooked exclusionReport
	hooked.path = filepath.Join(t.TempDir(), "hooked.csv")
	var runs []string
	req.Exclusions = func(_ context.Context, run string, e source.Exclusion) error {
		if !slices.Contains(runs, run) {
			runs = append(runs, run)
		}
		return hooked.add(e)
	}
	sum, err := Sync(ctx, cfg, kf, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := hooked.close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(runs, []string{sum.Run}) {
		t.Fatalf("the hook was told runs %q, want the run's %q", runs, sum.Run)
	}
	wantExcluded := map[string]int64{"empty_id": 1, "invalid_utf8": 1, "wrong_column_count": 1, "malformed_csv": 1}
	if !maps.Equal(sum.Excluded, wantExcluded) || sum.Duplicates != 1 || sum.Keys != 2 || sum.Rows != 7 {
		t.Fatalf("summary %+v", sum)
	}
	if !strings.HasPrefix(sum.ExclusionsFile, cfg.StateDir) || !strings.HasSuffix(sum.ExclusionsFile, "exclusions-"+sum.Run+".csv") {
		t.Fatalf("exclusions file %q not in the state dir", sum.ExclusionsFile)
	}
	got, err := os.ReadFile(sum.ExclusionsFile)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "with_exclusions.report.golden", got)
	if fromHook, err := os.ReadFile(hooked.path); err != nil || string(fromHook) != string(got) {
		t.Fatalf("the Exclusions hook got %q, %v; want the local report's rows %q", fromHook, err, got)
	}
	if keys := keysOf(replay(readTopic(t, cfg, kf))); !slices.Equal(keys, []string{"alice", "quoted, id"}) {
		t.Fatalf("members %v", keys)
	}
}

func TestSyncBadInputPublishesNothing(t *testing.T) {
	cfg, kf := testConfig(t)
	ctx := testenv.Context(t, 60*time.Second)
	if _, err := Sync(ctx, cfg, kf, csvRequest("a", "b")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, csv, want string
	}{
		{"empty file", "", "read generated.csv: input is empty: no header row"},
		{"wrong id column", "amplitude_id,uid\n1,a\n", `read generated.csv: id column "user_id" is not in the header`},
		{"unclosed quote", "amplitude_id,user_id\n1,\"a\n2,b\n", "read generated.csv: row 1: the quoted field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := csvRequest()
			req.Input = csvfile.New(strings.NewReader(tt.csv), "generated.csv", csvfile.Options{})
			_, err := Sync(ctx, cfg, kf, req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if got := keysOf(replay(readTopic(t, cfg, kf))); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("membership changed by bad input: %v", got)
	}
}

// sampleSummary has every field set.
func sampleSummary() Summary {
	return Summary{
		Run: "20261125T201500Z-1a2b3c4d", Env: "production", Segment: "amplitude-7khm89cz", Generation: 2,
		ContextKind: "user", Topic: DefaultTopic,
		Rebuilt:   &RebuildSummary{Reason: "no local state (the shared counter is at 2099)", Members: 957, DroppedPending: "20261125T200000Z-00000000"},
		Recovered: &PhaseSummary{Run: "20261125T200000Z-00000000", Attempt: 2, Added: 10, Removed: 2, FirstSeq: 120, LastSeq: 131},
		Rows:      1005, Keys: 990, Excluded: map[string]int64{"empty_id": 3, "invalid_utf8": 1}, Duplicates: 11,
		Added: 40, Removed: 7, Unchanged: 950, Events: 59, FirstSeq: 2100, LastSeq: 2146, SeqReserved: 3090,
		Duration: 1500 * time.Millisecond, ExclusionsFile: "/state/x/exclusions-20261125T201500Z-1a2b3c4d.csv",
		Input: "cohort.csv", Source: "csv", Outcome: Succeeded, Started: time.Date(2026, 11, 25, 20, 15, 0, 0, time.UTC),
	}
}

func TestSummaryWriteTo(t *testing.T) {
	s := sampleSummary()
	var b bytes.Buffer
	n, err := s.WriteTo(&b)
	if err != nil || n != int64(b.Len()) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	golden(t, "summary.golden", b.Bytes())
}

// TestSummaryJSON pins the summary's record, which a run history stores,
// and that it reads back unchanged.
func TestSummaryJSON(t *testing.T) {
	s := sampleSummary()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.json.golden", append(b, '\n'))
	var back Summary
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("read back %+v, want %+v", back, s)
	}
}

func TestSummaryOrdersOtherReasonsAfterCSVs(t *testing.T) {
	s := Summary{Excluded: map[string]int64{"zz_api": 1, "invalid_utf8": 2, "aa_api": 3, "empty_id": 4}}
	if got, want := s.excludedDetail(), " (empty_id 4, invalid_utf8 2, aa_api 3, zz_api 1)"; got != want {
		t.Fatalf("excludedDetail() = %q, want %q", got, want)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testenv.Golden(t, *update, filepath.Join("testdata", name), got)
}

func TestSyncCreatesCompactedTopic(t *testing.T) {
	for _, compact := range []bool{true, false} {
		t.Run(fmt.Sprintf("compact=%v", compact), func(t *testing.T) {
			cfg, kf := testConfig(t)
			cfg.TopicCompact = compact
			ctx := testenv.Context(t, 60*time.Second)
			if _, err := Sync(ctx, cfg, kf, csvRequest("a")); err != nil {
				t.Fatal(err)
			}
			client := kf.Client(10 * time.Second)
			meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{cfg.Topic, kafkax.DeadLetterTopic(cfg.Topic)}})
			if err != nil {
				t.Fatal(err)
			}
			if len(meta.Topics) != 2 {
				t.Fatalf("topic metadata %+v, want the topic and its dead-letter topic", meta.Topics)
			}
			for _, tm := range meta.Topics {
				if tm.Error != nil || len(tm.Partitions) != cfg.TopicPartitions {
					t.Fatalf("topic %s: err %v, %d partitions, want %d", tm.Name, tm.Error, len(tm.Partitions), cfg.TopicPartitions)
				}
			}
			resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
				ResourceType: kafka.ResourceTypeTopic, ResourceName: cfg.Topic, ConfigNames: []string{"cleanup.policy"},
			}}})
			if err != nil {
				t.Fatal(err)
			}
			want := "delete"
			if compact {
				want = "compact"
			}
			var got string
			for _, r := range resp.Resources {
				for _, e := range r.ConfigEntries {
					if e.ConfigName == "cleanup.policy" {
						got = e.ConfigValue
					}
				}
			}
			if got != want {
				t.Fatalf("cleanup.policy = %q, want %q", got, want)
			}
		})
	}
}

// TestSyncPropagatesTraceContext: every event carries the W3C trace context
// of the sync that produced it, so the consumer's spans link back to it.
func TestSyncPropagatesTraceContext(t *testing.T) {
	prop := telemetry.NewPropagator(propagation.TraceContext{})
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(testenv.Context(t, 60*time.Second), sc)

	cfg, kf := testConfig(t)
	cfg.Propagator = prop
	if _, err := Sync(ctx, cfg, kf, csvRequest("a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	_, msgs := readTopicMessages(t, cfg, kf)
	if len(msgs) != 3 {
		t.Fatalf("read %d messages, want 3", len(msgs))
	}
	for _, m := range msgs {
		got := prop.Extract(context.Background(), m.Headers)
		if sc2 := trace.SpanContextFromContext(got); sc2.TraceID() != traceID || sc2.SpanID() != spanID {
			t.Errorf("message %q carries trace %v/%v, want %v/%v", m.Key, sc2.TraceID(), sc2.SpanID(), traceID, spanID)
		}
	}
}

// TestExclusionReportsDoNotPileUp pins two review findings: per-run reports
// were never deleted (an hourly sync grew the state dir forever), and a fixed
// --exclusions-file kept an earlier run's report after a clean run.
func TestExclusionReportsDoNotPileUp(t *testing.T) {
	ctx := testenv.Context(t, 60*time.Second)
	t.Run("per-run reports keep the newest", func(t *testing.T) {
		cfg, kf := testConfig(t)
		cfg.ExclusionsKeep = 2
		var last string
		for i := range 4 {
			sum, err := Sync(ctx, cfg, kf, csvRequest("a", "", fmt.Sprintf("k%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			last = sum.ExclusionsFile
		}
		reports, err := filepath.Glob(filepath.Join(filepath.Dir(last), "exclusions-*.csv"))
		if err != nil {
			t.Fatal(err)
		}
		if len(reports) != 2 || !slices.Contains(reports, last) {
			t.Fatalf("reports %v, want 2 including this run's %s", reports, last)
		}
	})
	t.Run("a clean run removes a fixed report", func(t *testing.T) {
		cfg, kf := testConfig(t)
		cfg.ExclusionsFile = filepath.Join(t.TempDir(), "excluded.csv")
		if sum, err := Sync(ctx, cfg, kf, csvRequest("a", "")); err != nil || sum.ExclusionsFile != cfg.ExclusionsFile {
			t.Fatalf("first sync: %v, report %q", err, sum.ExclusionsFile)
		}
		if _, err := os.Stat(cfg.ExclusionsFile); err != nil {
			t.Fatal(err)
		}
		sum, err := Sync(ctx, cfg, kf, csvRequest("a", "b"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(cfg.ExclusionsFile); !errors.Is(err, os.ErrNotExist) || sum.ExclusionsFile != "" {
			t.Fatalf("after a clean run: stat err %v, summary report %q; want the stale report gone", err, sum.ExclusionsFile)
		}
	})
}

// TestMaxShrinkRefusesATruncatedSnapshot: with the guard on, a snapshot that
// lost too many members publishes nothing and leaves nothing pending; the
// next run (guard off) publishes the removals.
func TestMaxShrinkRefusesATruncatedSnapshot(t *testing.T) {
	ctx := testenv.Context(t, 60*time.Second)
	cfg, kf := testConfig(t)
	cfg.MaxShrink = 0.5
	if _, err := Sync(ctx, cfg, kf, csvRequest("a", "b", "c", "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := Sync(ctx, cfg, kf, csvRequest("a", "b", "c")); err != nil {
		t.Fatalf("a 25%% drop is within the limit: %v", err)
	}
	refused, err := Sync(ctx, cfg, kf, csvRequest("a"))
	if refused.Outcome != Refused {
		t.Errorf("outcome %q, want refused", refused.Outcome)
	}
	if !errors.Is(err, ErrShrink) || !strings.Contains(err.Error(), "1 members, 66.7% fewer than the 3 of the last sync (limit 50.0%)") {
		t.Fatalf("Sync = %v, want ErrShrink naming the counts", err)
	}
	if got := keysOf(replay(readTopic(t, cfg, kf))); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("members after the refusal %v, want [a b c]: nothing may be published", got)
	}
	cfg.MaxShrink = 0
	sum, err := Sync(ctx, cfg, kf, csvRequest("a"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Recovered != nil || sum.Removed != 2 {
		t.Fatalf("summary %+v, want 2 removals and no recovery of the refused run", sum)
	}
	if got := keysOf(replay(readTopic(t, cfg, kf))); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("members %v, want [a]", got)
	}
}
