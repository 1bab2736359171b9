package ldstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/ldfiledata"
	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/ldstore"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
)

// flagData is a flag that serves true to members of the synced segment
// "vip" (an unbounded segment: Redis decides who is in it).
const flagData = `{
  "flags": {"vip-banner": {"key": "vip-banner", "version": 1, "on": true, "salt": "s",
    "variations": [false, true], "offVariation": 0, "fallthrough": {"variation": 0},
    "rules": [{"id": "in-vip", "variation": 1,
      "clauses": [{"attribute": "key", "op": "segmentMatch", "values": ["vip"]}]}]}},
  "segments": {"vip": {"key": "vip", "version": 1, "salt": "s",
    "unbounded": true, "generation": 1, "unboundedContextKind": "user"}}
}`

// Example plugs the store into the Go SDK's configuration with a go-redis
// client. A Redis Cluster works the same way with a *redis.ClusterClient.
// Here miniredis stands in for Redis, cohortsync's writer fills it, and a
// file data source stands in for LaunchDarkly.
func Example() {
	srv, err := miniredis.Run()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()

	// What the consumer does: apply a membership change and mark the
	// store current.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := segmentstore.NewWriter(rdb, nil)
	change := segmentstore.Change{Prefix: "launchdarkly", Segment: "vip", Generation: 1,
		ContextKind: "user", ContextKey: "alice", Seq: 1, Run: "example"}
	if _, err := w.Apply(ctx, []segmentstore.Change{change}); err != nil {
		fmt.Println(err)
		return
	}
	if err := w.SetSynchronizedOn(ctx, []string{"launchdarkly"}, time.Now()); err != nil {
		fmt.Println(err)
		return
	}

	dir, err := os.MkdirTemp("", "ldstore-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	flags := filepath.Join(dir, "flags.json")
	if err := os.WriteFile(flags, []byte(flagData), 0o600); err != nil {
		fmt.Println(err)
		return
	}

	// What an application does: hand the SDK the store.
	store := ldstore.NewStore(ctx, rdb, "launchdarkly")
	config := ld.Config{
		BigSegments:      ldcomponents.BigSegments(store.Configurer()),
		DataSource:       ldfiledata.DataSource().FilePaths(flags),
		Events:           ldcomponents.NoEvents(),
		DiagnosticOptOut: true,
		Logging:          ldcomponents.NoLogging(),
	}
	client, err := ld.MakeCustomClient("sdk-key", config, 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	for _, key := range []string{"alice", "bob"} {
		v, detail, _ := client.BoolVariationDetail("vip-banner", ldcontext.New(key), false)
		fmt.Println(key, v, detail.Reason.GetBigSegmentsStatus())
	}
	// Output:
	// alice true HEALTHY
	// bob false HEALTHY
}
