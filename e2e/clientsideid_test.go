package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/consumer"
	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/segmentlease"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
	"github.com/cohortsync/cohortsync/producer/publish"
	"github.com/cohortsync/cohortsync/sdkcompat"
	"github.com/cohortsync/cohortsync/sdkcompat/ldgo"
)

// TestClientSideIDPrefixReadBySDKs is issue 7's acceptance test of a
// destination keyed by an environment's client-side ID. One mapping, declared
// in a mapping file, fans a cohort out to two destinations: one under a custom
// prefix, one under a client-side ID. It runs through the stored catalog, the
// mapping runner (leases and sequence numbers in the shared Redis) and Kafka
// into a consumer routing each environment to its destination; then
// LaunchDarkly's Node and Go SDKs, each configured with nothing but the prefix
// its destination uses, evaluate a flag targeting the segment: members true,
// non-members and members removed by a second, smaller cohort false, Big
// Segments HEALTHY.
//
// The client-side-ID destination stands for an environment whose SDKs were set
// up for LaunchDarkly's own persistent store integration. LaunchDarkly's Redis
// documentation ("How the SDKs store data in Redis",
// https://docs.launchdarkly.com/sdk/features/storing-data/redis) states that
// with a persistent store integration the prefix has to be the environment's
// client-side ID, and that every server-side SDK joins that prefix to its keys
// with ':' (PREFIX:TYPE). The Node SDK's Redis store does exactly that for Big
// Segments: RedisClientState.prefixedKey returns `${prefix}:${key}` with key
// big_segment_include:<hash>, big_segment_exclude:<hash> or
// big_segments_synchronized_on (@launchdarkly/node-server-sdk-redis, the
// version pinned by sdkcompat/node/package-lock.json). So such an SDK is
// configured below with prefix = the client-side ID, nothing added. The Go
// SDK reads through pkg/ldstore (go-redis, so that it also reaches a
// Cluster), which is given the same prefix and builds the same keys.
func TestClientSideIDPrefixReadBySDKs(t *testing.T) {
	kf := kafkaxtest.Kafka(t)
	for _, rb := range testenv.RedisBackends(t) {
		t.Run(rb.Name, func(t *testing.T) {
			ctx := testenv.Context(t, 3*time.Minute)
			name := testenv.Name(t)
			custom, clientSideID, control := name+"-prod", clientSideIDFor(t), name+":control:"
			for _, p := range []string{custom, clientSideID, strings.TrimSuffix(control, ":")} {
				testenv.DropPrefix(t, rb.Client, p) // a cleanup: runs after the consumer has stopped
			}

			// The file a team would apply with `cohortsync mappings apply -f`.
			cohort := filepath.Join(t.TempDir(), "power-users.csv")
			copyFile(t, "../testdata/cohort-day1.csv", cohort)
			file := fmt.Sprintf(`destinations:
  - name: production
    redis: %[1]s
    prefix: %[2]s
  - name: staging
    redis: %[1]s
    client_side_id: %[3]s
mappings:
  - name: power-users
    source:
      csv: %[4]s
    segment: %[5]s
    destinations: [production, staging]
    schedule: hourly
`, redisYAML(rb), custom, clientSideID, cohort, segment)
			cat, err := catalog.Decode("mappings.yaml", []byte(file))
			if err != nil {
				t.Fatal(err)
			}
			store, err := catalogstore.New(rb.Client, catalogstore.Config{Prefix: control})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Apply(ctx, cat); err != nil {
				t.Fatal(err)
			}
			dests, err := store.Destinations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The prefix each environment's SDKs are configured with, by
			// destination: what the team has (its own prefix, the client-side
			// ID LaunchDarkly shows), not what Destination.Prefix computes.
			sdkPrefix := map[string]string{"production": custom, "staging": clientSideID}
			written := map[string]string{}
			for _, d := range dests {
				written[d.Name] = d.Prefix()
			}
			if !maps.Equal(written, sdkPrefix) {
				t.Errorf("stored destinations write under %v, want %v", written, sdkPrefix)
			}

			// Each destination gets a client from its stored settings; the
			// runner and the consumer's routes share it.
			clients := map[string]redis.UniversalClient{}
			routes := map[string]consumer.Route{}
			for _, d := range dests {
				cfg, err := d.RedisConfig(os.LookupEnv, os.ReadFile)
				if err != nil {
					t.Fatal(err)
				}
				c, err := redisx.Open(cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() }) // after the consumer's cleanup below
				clients[d.Name] = c
				routes[d.Environment] = consumer.Route{Name: d.Name, Client: c, Prefix: d.Prefix()}
			}
			connect := func(_ context.Context, d catalog.Destination) (redis.UniversalClient, error) {
				c, ok := clients[d.Name]
				if !ok {
					return nil, fmt.Errorf("destination %q: not opened by the test", d.Name)
				}
				return c, nil
			}

			pcfg := producer.DefaultConfig()
			pcfg.Topic, pcfg.StateDir, pcfg.TopicPartitions = name, t.TempDir(), 4
			if err := publish.EnsureTopics(ctx, pcfg.Config, kf); err != nil {
				t.Fatal(err)
			}
			discard := slog.New(slog.NewTextHandler(io.Discard, nil))
			runner, err := mappingrun.New(mappingrun.Config{Producer: pcfg, Lease: segmentlease.Config{Prefix: control}, RebuildWait: 30 * time.Second},
				kf, rb.Client, store, connect, nil, discard)
			if err != nil {
				t.Fatal(err)
			}
			table, err := consumer.NewRouteTable(routes, consumer.RouteTableOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cons, err := consumer.NewWithRoutes(consumer.Config{Topic: name, GroupID: name, SyncInterval: 200 * time.Millisecond, Logger: discard}, table, kf)
			if err != nil {
				t.Fatal(err)
			}
			cctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Go(func() {
				if err := cons.Run(cctx); err != nil {
					t.Errorf("consumer.Run: %v", err)
				}
			})
			t.Cleanup(func() { stop(); wg.Wait(); table.Close() })

			for i, snap := range []struct {
				file           string
				members        []string
				added, removed int64
			}{
				{"../testdata/cohort-day1.csv", day1Members, 11, 0},
				{"../testdata/cohort-day2.csv", day2Members, 2, 3}, // one fewer: three removed, two added
			} {
				copyFile(t, snap.file, cohort) // the export refreshed in place, as a scheduled run finds it
				m, err := store.Get(ctx, "power-users")
				if err != nil {
					t.Fatal(err)
				}
				res, err := runner.Run(ctx, m)
				if err != nil {
					t.Fatalf("run %d: %v", i+1, err)
				}
				if len(res) != 2 {
					t.Fatalf("run %d: %d results, want one per destination: %+v", i+1, len(res), res)
				}
				for _, r := range res {
					if r.Summary.Added != snap.added || r.Summary.Removed != snap.removed {
						t.Fatalf("run %d, %s: added %d removed %d, want %d and %d", i+1, r.Destination, r.Summary.Added, r.Summary.Removed, snap.added, snap.removed)
					}
				}
				if err := cons.WaitCaughtUp(ctx); err != nil {
					t.Fatalf("run %d: consumer did not catch up: %v", i+1, err)
				}
				for _, dest := range []string{"production", "staging"} {
					assertSegment(t, ctx, rb, sdkPrefix[dest], snap.members)
					for sdk, results := range evaluateBoth(t, ctx, rb, sdkPrefix[dest]) {
						for _, r := range results {
							want := slices.Contains(snap.members, r.Key)
							if r.Value != want || r.BigSegmentsStatus != sdkcompat.StatusHealthy {
								t.Errorf("run %d, %s (prefix %s), %s SDK, %q: got %v/%s, want %v/HEALTHY",
									i+1, dest, sdkPrefix[dest], sdk, r.Key, r.Value, r.BigSegmentsStatus, want)
							}
						}
					}
				}
			}

			// The SDKs select membership by the prefix alone: configured with
			// another environment's client-side ID, nobody is a member, and
			// the store is STALE (no synchronized_on under it). So the answers
			// above came from the keys under this destination's ID.
			for sdk, results := range evaluateBoth(t, ctx, rb, clientSideIDFor(t)) {
				for _, r := range results {
					if r.Value || r.BigSegmentsStatus != sdkcompat.StatusStale {
						t.Errorf("%s SDK under an unwritten client-side ID, %q: got %v/%s, want false/STALE",
							sdk, r.Key, r.Value, r.BigSegmentsStatus)
					}
				}
			}
		})
	}
}

// evaluateBoth evaluates the probe keys with every LaunchDarkly SDK that can
// reach rb, configured with prefix: Node and Go on a single server, Go alone
// through the Cluster client (the Node SDK's store speaks to one server).
func evaluateBoth(t *testing.T, ctx context.Context, rb testenv.RedisBackend, prefix string) map[string][]sdkcompat.Result {
	t.Helper()
	req := sdkcompat.Request{Prefix: prefix, SegmentKey: segment, Generation: 1, ContextKeys: probe}
	if rb.URL == "" {
		goRes, err := ldgo.EvaluateClient(ctx, rb.Client, req)
		if err != nil {
			t.Fatal(err)
		}
		return map[string][]sdkcompat.Result{"Go": goRes}
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
	if len(node) != len(probe) || len(goRes) != len(probe) {
		t.Fatalf("prefix %s: %d Node and %d Go results for %d keys", prefix, len(node), len(goRes), len(probe))
	}
	return map[string][]sdkcompat.Result{"Node": node, "Go": goRes}
}

// clientSideIDFor returns a new client-side ID, 24 hexadecimal digits as
// LaunchDarkly's, so runs on a shared Redis never read each other's keys.
func clientSideIDFor(t *testing.T) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// redisYAML is a destination's redis settings reaching rb.
func redisYAML(rb testenv.RedisBackend) string {
	if rb.URL != "" {
		return fmt.Sprintf("{url: %q}", rb.URL)
	}
	return fmt.Sprintf("{cluster_addrs: [%s]}", strings.Join(rb.Addrs, ", "))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
