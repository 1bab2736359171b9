package e2e

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
	"github.com/cohortsync/cohortsync/schema"
	"github.com/cohortsync/cohortsync/sdkcompat"
	"github.com/cohortsync/cohortsync/sdkcompat/ldgo"
)

const segment = "amplitude-7khm89cz"

var (
	day1Members = []string{"user-001@example.com", "user-002@example.com", "user-003@example.com",
		"user-004@example.com", "user-005@example.com", "user-006@example.com", "user-007@example.com",
		"user-008@example.com", "user-009@example.com", "user-010@example.com", "user-quoted, with comma"}
	day2Members = []string{"user-002@example.com", "user-003@example.com", "user-005@example.com",
		"user-006@example.com", "user-008@example.com", "user-009@example.com", "user-010@example.com",
		"user-011@example.com", "user-012@example.com", "user-quoted, with comma"}
	// probe holds members of either day, and keys that never were members.
	probe = []string{"user-001@example.com", "user-002@example.com", "user-007@example.com",
		"user-011@example.com", "user-quoted, with comma", "nobody@example.com"}
)

// TestSyncToLaunchDarklySDK is the acceptance test of the whole path: two
// snapshots synced through Kafka into Redis, then LaunchDarkly's Node.js SDK
// (with its own Redis Big Segments store) and Go SDK evaluate a flag that
// targets the segment: true for members, false for removed contexts and
// non-members, HEALTHY while the consumer runs, STALE once it has stopped for
// longer than staleAfter.
func TestSyncToLaunchDarklySDK(t *testing.T) {
	kf := kafkaxtest.Kafka(t)
	for _, rb := range testenv.RedisBackends(t) {
		t.Run(rb.Name, func(t *testing.T) {
			ctx := testenv.Context(t, 3*time.Minute)
			topic, prefix := testenv.Name(t), testenv.Name(t)
			testenv.DropPrefix(t, rb.Client, prefix)

			pcfg := producer.DefaultConfig()
			pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = topic, t.TempDir(), 4
			if err := publish.EnsureTopics(ctx, pcfg.Config, kf); err != nil {
				t.Fatal(err)
			}
			cons, err := consumer.New(consumer.Config{
				Topic: topic, GroupID: testenv.Name(t),
				EnvPrefixes:  map[string]string{"production": prefix},
				SyncInterval: 200 * time.Millisecond,
				Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
			}, rb.Client, kf)
			if err != nil {
				t.Fatal(err)
			}
			cctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			var runErr error
			wg.Add(1)
			go func() { defer wg.Done(); runErr = cons.Run(cctx) }()
			stopConsumer := sync.OnceFunc(func() {
				stop()
				wg.Wait()
				if runErr != nil {
					t.Errorf("consumer.Run: %v", runErr)
				}
			})
			t.Cleanup(stopConsumer)

			evaluate := func(t *testing.T, staleAfter time.Duration) []sdkcompat.Result {
				t.Helper()
				req := sdkcompat.Request{Prefix: prefix, SegmentKey: segment, Generation: 1,
					ContextKeys: probe, StaleAfter: staleAfter}
				if rb.URL == "" {
					// The Node SDK's store speaks to one server; on the
					// Cluster our Go SDK adapter reads through the cluster client.
					res, err := ldgo.EvaluateClient(ctx, rb.Client, req)
					if err != nil {
						t.Fatal(err)
					}
					return res
				}
				req.RedisURL = rb.URL
				node, err := sdkcompat.Evaluate(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				goRes, err := ldgo.Evaluate(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				for i := range node {
					if node[i].Value != goRes[i].Value || node[i].BigSegmentsStatus != goRes[i].BigSegmentsStatus {
						t.Errorf("SDKs disagree on %q: node %v/%s, go %v/%s", node[i].Key,
							node[i].Value, node[i].BigSegmentsStatus, goRes[i].Value, goRes[i].BigSegmentsStatus)
					}
				}
				return node
			}

			for i, snap := range []struct {
				file    string
				members []string
				added   int64
				removed int64
			}{
				{"../testdata/cohort-day1.csv", day1Members, 11, 0},
				{"../testdata/cohort-day2.csv", day2Members, 2, 3},
			} {
				src, err := csvfile.Open(snap.file, csvfile.Options{})
				if err != nil {
					t.Fatal(err)
				}
				sum, err := producer.Sync(ctx, pcfg, kf, producer.SyncRequest{Env: "production", Segment: segment, Generation: 1, Input: src})
				src.Close()
				if err != nil {
					t.Fatalf("sync %d: %v", i+1, err)
				}
				if sum.Added != snap.added || sum.Removed != snap.removed {
					t.Fatalf("sync %d: added %d removed %d, want %d and %d", i+1, sum.Added, sum.Removed, snap.added, snap.removed)
				}
				if err := cons.WaitCaughtUp(ctx); err != nil {
					t.Fatalf("sync %d: consumer did not catch up: %v", i+1, err)
				}
				assertSegment(t, ctx, rb, prefix, snap.members)
				for _, r := range evaluate(t, 120*time.Second) {
					want := slices.Contains(snap.members, r.Key)
					if r.Value != want || r.BigSegmentsStatus != sdkcompat.StatusHealthy {
						t.Errorf("after sync %d, %q: got %v/%s, want %v/HEALTHY", i+1, r.Key, r.Value, r.BigSegmentsStatus, want)
					}
				}
			}

			// A stopped consumer must make evaluators report STALE (data
			// still served) once staleAfter has passed: synchronized_on stops.
			stopConsumer()
			synced, ok, err := segmentstore.SyncTime(ctx, rb.Client, prefix)
			if err != nil || !ok {
				t.Fatalf("synchronized_on after stop: %v %v", ok, err)
			}
			const staleAfter = time.Second
			if wait := time.Until(synced.Add(staleAfter + 100*time.Millisecond)); wait > 0 {
				time.Sleep(wait) // the SDK compares wall-clock time with synchronized_on
			}
			for _, r := range evaluate(t, staleAfter) {
				want := slices.Contains(day2Members, r.Key)
				if r.Value != want || r.BigSegmentsStatus != sdkcompat.StatusStale {
					t.Errorf("consumer stopped, %q: got %v/%s, want %v/STALE", r.Key, r.Value, r.BigSegmentsStatus, want)
				}
			}
			after, _, err := segmentstore.SyncTime(ctx, rb.Client, prefix)
			if err != nil {
				t.Fatal(err)
			}
			if !after.Equal(synced) {
				t.Errorf("synchronized_on moved from %v to %v with no consumer running", synced, after)
			}
		})
	}
}

// assertSegment checks the raw Redis state: each member's include set holds
// the ref, and the member index lists exactly the members.
func assertSegment(t *testing.T, ctx context.Context, rb testenv.RedisBackend, prefix string, members []string) {
	t.Helper()
	ref := schema.Ref(segment, 1)
	var listed []string
	if err := segmentstore.Members(ctx, rb.Client, prefix, ref, func(k string) error { listed = append(listed, k); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(listed)
	want := slices.Sorted(slices.Values(members))
	if !slices.Equal(listed, want) {
		t.Errorf("member index:\n got %q\nwant %q", listed, want)
	}
	info, err := segmentstore.Info(ctx, rb.Client, prefix, ref)
	if err != nil {
		t.Fatal(err)
	}
	if info.Members != int64(len(members)) {
		t.Errorf("member count %d, want %d", info.Members, len(members))
	}
	for _, k := range members {
		inc, err := rb.Client.SMembers(ctx, bigsegments.IncludeKey(prefix, k)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(inc, []string{ref}) {
			t.Errorf("include set of %q = %q, want [%s]", k, inc, ref)
		}
	}
}
