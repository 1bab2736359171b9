package consumer

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/kafkax/kafkaxtest"
	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/schema"
)

// uncomparable is a client the table cannot tell apart from another by
// identity.
type uncomparable struct {
	*redis.Client
	_ []int
}

func TestRouteTableRejectsInvalidRoutes(t *testing.T) {
	rdb := dummyClient(t)
	for _, tc := range []struct {
		name   string
		routes map[string]Route
		want   string // "" valid
	}{
		{"empty table", nil, ""},
		{"routes", map[string]Route{"acc": {Client: rdb, Prefix: "a"}, "prod": {Name: "prod-eu", Client: rdb, Prefix: "b"}}, ""},
		{"missing client", map[string]Route{"acc": {Name: "acc-dest", Prefix: "a"}}, `a Redis client (destination "acc-dest" has none)`},
		{"uncomparable client", map[string]Route{"acc": {Client: uncomparable{Client: rdb.(*redis.Client)}, Prefix: "a"}}, "a comparable Redis client"},
		{"empty prefix", map[string]Route{"acc": {Client: rdb}}, "a prefix that is " + nameForm},
		{"prefix with blanks", map[string]Route{"acc": {Client: rdb, Prefix: " a"}}, "a prefix that is " + nameForm},
		{"empty environment", map[string]Route{"": {Client: rdb, Prefix: "a"}}, "an environment name that is " + nameForm},
		{"control character in environment", map[string]Route{"a\x00": {Client: rdb, Prefix: "a"}}, "an environment name that is " + nameForm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRouteTable(tc.routes, RouteTableOptions{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("NewRouteTable = %v, want valid", err)
				}
				return
			}
			var se *setting.Error
			if err == nil || !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewRouteTable = %v, want a *setting.Error wanting %q", err, tc.want)
			}
			// Set refuses the same routes and keeps the table it had.
			rt, err := NewRouteTable(map[string]Route{"keep": {Client: rdb, Prefix: "k"}}, RouteTableOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := rt.Set(tc.routes); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Set = %v, want %q", err, tc.want)
			}
			if r, ok := rt.Route("keep"); !ok || r.Prefix != "k" || r.Name != "keep" {
				t.Errorf("after a refused Set, Route(keep) = %+v, %v; want the old route", r, ok)
			}
		})
	}
}

// dropLog records the clients a table drops.
type dropLog struct {
	mu      sync.Mutex
	dropped []redis.UniversalClient
}

func (d *dropLog) drop(c redis.UniversalClient) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dropped = append(d.dropped, c)
}

func (d *dropLog) count(c redis.UniversalClient) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, x := range d.dropped {
		if x == c {
			n++
		}
	}
	return n
}

func (d *dropLog) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.dropped)
}

// TestRouteTableDropsClientsAfterLastUse: a client leaves through Dropped,
// once, only when no table still in use names it; one kept across tables
// is never dropped by a swap.
func TestRouteTableDropsClientsAfterLastUse(t *testing.T) {
	x, y, z := dummyClient(t), dummyClient(t), dummyClient(t)
	var log dropLog
	rt, err := NewRouteTable(map[string]Route{"acc": {Client: x, Prefix: "a"}, "prod": {Client: y, Prefix: "p"}}, RouteTableOptions{Dropped: log.drop})
	if err != nil {
		t.Fatal(err)
	}
	held := rt.acquire() // a batch writing through x and y

	if err := rt.Set(map[string]Route{"acc": {Client: x, Prefix: "a"}}); err != nil {
		t.Fatal(err)
	}
	if log.total() != 0 {
		t.Fatalf("dropped %d clients while a batch holds the old table", log.total())
	}
	if _, ok := rt.Route("prod"); ok {
		t.Error("prod still routed after the swap")
	}
	second := rt.acquire() // a batch on the second table (x only)
	if err := rt.Set(map[string]Route{"acc": {Client: x, Prefix: "a2"}, "prod": {Client: z, Prefix: "p"}}); err != nil {
		t.Fatal(err)
	}
	rt.release(second)
	if log.total() != 0 {
		t.Fatalf("dropped %v: x is current and y still held", log.dropped)
	}
	rt.release(held)
	if log.count(y) != 1 || log.total() != 1 {
		t.Fatalf("dropped %v, want y alone once the batch holding it is done", log.dropped)
	}

	third := rt.acquire()
	rt.Close()
	if log.total() != 1 {
		t.Fatalf("Close dropped clients a batch still holds: %v", log.dropped)
	}
	rt.release(third)
	if log.count(x) != 1 || log.count(y) != 1 || log.count(z) != 1 || log.total() != 3 {
		t.Fatalf("dropped %v, want x, y and z once each", log.dropped)
	}
	rt.Close() // idempotent
	if err := rt.Set(map[string]Route{"acc": {Client: dummyClient(t), Prefix: "a"}}); !errors.Is(err, ErrRouteTableClosed) {
		t.Errorf("Set after Close = %v, want ErrRouteTableClosed", err)
	}
	if log.total() != 3 {
		t.Errorf("dropped %v after the second Close", log.dropped)
	}
}

func TestNewWithRoutesRefusesEnvPrefixes(t *testing.T) {
	rt, err := NewRouteTable(nil, RouteTableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewWithRoutes(Config{EnvPrefixes: map[string]string{"acc": "a"}}, rt, kafkaxtest.Factory(t, "127.0.0.1:9"))
	var se *setting.Error
	if !errors.As(err, &se) || se.Name != "env-prefix" {
		t.Fatalf("NewWithRoutes = %v, want a *setting.Error on env-prefix", err)
	}
	if _, err := NewWithRoutes(Config{}, nil, kafkaxtest.Factory(t, "127.0.0.1:9")); err == nil {
		t.Fatal("NewWithRoutes accepted a nil table")
	}
}

// destination is one Redis a routed test writes.
type destination struct {
	name string
	rdb  redis.UniversalClient
}

// twoDestinations returns two Redis deployments: the standalone and the
// Cluster on the real backends, two miniredis servers otherwise.
func twoDestinations(t *testing.T) [2]destination {
	bs := testenv.RedisBackends(t)
	if len(bs) < 2 {
		bs = append(bs, testenv.Redis(t))
		bs[1].Name += "-2"
	}
	return [2]destination{{bs[0].Name, bs[0].Client}, {bs[1].Name, bs[1].Client}}
}

// sortedMembers returns the members of a segment, sorted.
func sortedMembers(t testing.TB, rdb redis.UniversalClient, prefix, ref string) []string {
	t.Helper()
	var out []string
	err := segmentstore.Members(testenv.Context(t, 10*time.Second), rdb, prefix, ref, func(k string) error {
		out = append(out, k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestRoutedProcessSplitsBatchPerDestination drives process directly: one
// batch of three environments goes, per route, to its own Redis and prefix
// (two prefixes sharing one client share its pipeline), the unrouted
// environment's events are dead-lettered with their reason, and the whole
// batch is committed once.
func TestRoutedProcessSplitsBatchPerDestination(t *testing.T) {
	ds := twoDestinations(t)
	pa, pb, pc := testenv.Name(t)+"-a", testenv.Name(t)+"-b", testenv.Name(t)+"-c"
	dropPrefix(t, ds[0].rdb, pa)
	dropPrefix(t, ds[0].rdb, pc)
	dropPrefix(t, ds[1].rdb, pb)
	rt, err := NewRouteTable(map[string]Route{
		"acc":  {Name: "acc-dest", Client: ds[0].rdb, Prefix: pa},
		"prod": {Client: ds[1].rdb, Prefix: pb},
		"qa":   {Client: ds[0].rdb, Prefix: pc},
	}, RouteTableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewWithRoutes(Config{Logger: testLogger(t)}, rt, kafkaxtest.Factory(t, "127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	var batch []item
	for i, e := range []schema.Event{
		ev("acc", "seg", 1, "alice", schema.OpAdd, 1),
		ev("ghost", "seg", 1, "gus", schema.OpAdd, 2),
		ev("prod", "seg", 1, "bob", schema.OpAdd, 3),
		ev("qa", "seg", 1, "carol", schema.OpAdd, 4),
		ev("acc", "seg", 1, "dave", schema.OpAdd, 5),
		ev("ghost", "seg", 1, "gina", schema.OpAdd, 6),
	} {
		m := e.Message()
		m.Topic, m.Partition, m.Offset = "membership", i%2, int64(i/2)
		it := item{msg: m}
		it.ev, it.err = schema.Decode(&m)
		batch = append(batch, it)
	}
	ctx := testenv.Context(t, 20*time.Second)
	cm, dlq := &fakeCommitter{}, &fakeWriter{}
	res, err := c.process(ctx, ctx, c.streams[0], batch, cm, dlq)
	if err != nil {
		t.Fatal(err)
	}
	if res.applied != 4 || res.deadLettered != 2 {
		t.Errorf("result %+v, want 4 applied, 2 dead-lettered", res)
	}
	for _, tc := range []struct {
		d      destination
		prefix string
		want   []string
	}{
		{ds[0], pa, []string{"alice", "dave"}},
		{ds[1], pb, []string{"bob"}},
		{ds[0], pc, []string{"carol"}},
		{ds[1], pa, nil}, // nothing of acc on the other Redis
		{ds[0], pb, nil},
	} {
		if got := sortedMembers(t, tc.d.rdb, tc.prefix, "seg.g1"); !slices.Equal(got, tc.want) {
			t.Errorf("members under %s on %s = %q, want %q", tc.prefix, tc.d.name, got, tc.want)
		}
	}
	if len(dlq.calls) != 1 || len(dlq.calls[0]) != 2 {
		t.Fatalf("dead-letter writes %v, want one of the two ghost events", dlq.calls)
	}
	for i, key := range []string{"gus", "gina"} {
		m := dlq.calls[0][i]
		if got := headerValue(m, schema.HeaderDeadLetterReason); got != ReasonUnknownEnvironment {
			t.Errorf("dead letter %d reason %q, want %q", i, got, ReasonUnknownEnvironment)
		}
		if got := headerValue(m, HeaderDeadLetterError); got != `environment "ghost" has no destination` {
			t.Errorf("dead letter %d error %q", i, got)
		}
		if !strings.Contains(string(m.Value), `"context_key":"`+key+`"`) {
			t.Errorf("dead letter %d value %s, want %s's event", i, m.Value, key)
		}
	}
	topic := c.cfg.Topic
	if want := []string{topic + ":0@3 " + topic + ":1@3"}; !slices.Equal(cm.commits, want) {
		t.Errorf("commits %q, want %q: every message, routed or not", cm.commits, want)
	}
	if s := c.Stats(); s.Applied != 4 || s.DeadLettered != 2 || s.Unrouted != 2 {
		t.Errorf("stats %+v, want 4 applied, 2 dead-lettered, 2 unrouted", s)
	}

	// synchronized_on goes to every prefix of the table, on its own Redis.
	now := testTime.Add(time.Hour)
	if err := (syncTime{routes: rt, ids: newStoreIDs(testLogger(t))}).SetSynchronizedOn(ctx, now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d      destination
		prefix string
		want   bool
	}{{ds[0], pa, true}, {ds[1], pb, true}, {ds[0], pc, true}, {ds[1], pa, false}, {ds[0], pb, false}} {
		ts, ok, err := segmentstore.SyncTime(ctx, tc.d.rdb, tc.prefix)
		if err != nil || ok != tc.want || (ok && !ts.Equal(now)) {
			t.Errorf("synchronized_on under %s on %s = %v, %v, %v; want set: %v", tc.prefix, tc.d.name, ts, ok, err, tc.want)
		}
	}
}

// TestSwapAwayFromDownDestination: a batch retrying against a destination
// that is down picks up a new table on its next attempt and completes
// there; the old client is dropped only once that attempt has let go of it.
func TestSwapAwayFromDownDestination(t *testing.T) {
	good := testenv.Redis(t).Client
	prefix := testenv.Name(t)
	dropPrefix(t, good, prefix)
	down := redis.NewClient(&redis.Options{Addr: testenv.DroppingListener(t), MaxRetries: -1})
	var log dropLog
	closed := make(chan error, 1)
	rt, err := NewRouteTable(map[string]Route{"acc": {Client: down, Prefix: prefix}}, RouteTableOptions{Dropped: func(c redis.UniversalClient) {
		log.drop(c)
		closed <- c.Close()
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewWithRoutes(Config{Logger: testLogger(t), RetryTimeout: 30 * time.Second}, rt, kafkaxtest.Factory(t, "127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	batch := items(0, 0, 1, 2)
	for i := range batch {
		batch[i].ev.Env = "acc"
	}
	ctx := testenv.Context(t, 30*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := c.process(ctx, ctx, c.streams[0], batch, &fakeCommitter{}, &fakeWriter{})
		done <- err
	}()
	testenv.Eventually(t, 10*time.Second, "the batch to retry against the down destination", func() bool { return c.Stats().Retries >= 2 })
	if err := rt.Set(map[string]Route{"acc": {Client: good, Prefix: prefix}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("process = %v, want the batch applied to the new destination", err)
		}
	case <-ctx.Done():
		t.Fatal("the batch did not complete after the swap")
	}
	if got := sortedMembers(t, good, prefix, "seg.g1"); !slices.Equal(got, []string{"user-0", "user-1", "user-2"}) {
		t.Errorf("members on the new destination = %q", got)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("closing the dropped client: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the down client was never dropped")
	}
	if log.count(down) != 1 || log.total() != 1 {
		t.Errorf("dropped %v, want the down client alone", log.dropped)
	}
}

// startRouted runs a routed consumer until stop or the end of the test.
func startRouted(t testing.TB, kf *kafkax.Factory, cfg Config, rt *RouteTable) *running {
	t.Helper()
	c, err := NewWithRoutes(cfg, rt, kf)
	if err != nil {
		t.Fatalf("NewWithRoutes: %v", err)
	}
	return launch(t, c)
}

// TestRoutesPerEnvironment runs a routed consumer on Kafka: two
// environments reach their own Redis (the standalone and the Cluster on the
// real backends) under their own prefixes, an environment without a route
// is dead-lettered without holding up the events after it, and a new table
// set while the consumer runs takes the later events to the new
// destination.
func TestRoutesPerEnvironment(t *testing.T) {
	brokers, onBroker := testenv.Kafka(t)
	ds := twoDestinations(t)
	ke := newKafka(t, brokers, onBroker, 2)
	cfg := testConfig(t, ke)
	cfg.RedisPrefix = "" // not used with routes
	pa, pb, pb2 := testenv.Name(t)+"-acc", testenv.Name(t)+"-prod", testenv.Name(t)+"-prod2"
	dropPrefix(t, ds[0].rdb, pa)
	dropPrefix(t, ds[1].rdb, pb)
	dropPrefix(t, ds[0].rdb, pb2)
	rt, err := NewRouteTable(map[string]Route{
		"acc":  {Client: ds[0].rdb, Prefix: pa},
		"prod": {Client: ds[1].rdb, Prefix: pb},
	}, RouteTableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const seg = "amplitude-7khm89cz"
	ke.produce(t, messages(
		ev("acc", seg, 1, "alice", schema.OpAdd, 1),
		ev("prod", seg, 1, "bob", schema.OpAdd, 2),
		ev("ghost", seg, 1, "gus", schema.OpAdd, 3),
		ev("acc", seg, 1, "carol", schema.OpAdd, 4),
		ev("prod", seg, 1, "dave", schema.OpAdd, 5),
		ev("prod", seg, 1, "bob", schema.OpRemove, 6),
	)...)
	c := startRouted(t, ke.kf, cfg, rt)
	c.waitCaughtUp(t)

	ref := seg + ".g1"
	check := func(when string, want map[string][]string) {
		t.Helper()
		for _, tc := range []struct {
			d      destination
			prefix string
		}{{ds[0], pa}, {ds[1], pb}, {ds[0], pb2}, {ds[1], pa}, {ds[0], pb}, {ds[1], pb2}} {
			key := tc.d.name + " " + tc.prefix
			if got := sortedMembers(t, tc.d.rdb, tc.prefix, ref); !slices.Equal(got, want[key]) {
				t.Errorf("%s: members under %s on %s = %q, want %q", when, tc.prefix, tc.d.name, got, want[key])
			}
		}
	}
	check("first table", map[string][]string{
		ds[0].name + " " + pa: {"alice", "carol"},
		ds[1].name + " " + pb: {"dave"},
	})
	dead := ke.readDLQ(t, 1)
	if got := headerValue(dead[0], schema.HeaderDeadLetterReason); got != ReasonUnknownEnvironment {
		t.Errorf("dead letter reason %q, want %q", got, ReasonUnknownEnvironment)
	}
	ctx := testenv.Context(t, 20*time.Second)
	for _, tc := range []struct {
		d      destination
		prefix string
	}{{ds[0], pa}, {ds[1], pb}} {
		if _, ok, err := segmentstore.SyncTime(ctx, tc.d.rdb, tc.prefix); !ok || err != nil {
			t.Errorf("synchronized_on under %s on %s: set %v, %v", tc.prefix, tc.d.name, ok, err)
		}
	}

	// prod moves to the first Redis under a new prefix; ghost gets a route.
	if err := rt.Set(map[string]Route{
		"acc":   {Client: ds[0].rdb, Prefix: pa},
		"prod":  {Client: ds[0].rdb, Prefix: pb2},
		"ghost": {Client: ds[1].rdb, Prefix: pb},
	}); err != nil {
		t.Fatal(err)
	}
	ke.produce(t, messages(
		ev("prod", seg, 1, "erin", schema.OpAdd, 7),
		ev("acc", seg, 1, "frank", schema.OpAdd, 8),
		ev("ghost", seg, 1, "gina", schema.OpAdd, 9),
	)...)
	c.waitCaughtUp(t)
	check("second table", map[string][]string{
		ds[0].name + " " + pa:  {"alice", "carol", "frank"},
		ds[1].name + " " + pb:  {"dave", "gina"},
		ds[0].name + " " + pb2: {"erin"},
	})
	if s := c.Stats(); s.Applied != 8 || s.DeadLettered != 1 || s.Unrouted != 1 || s.Lag != 0 {
		t.Errorf("stats %+v, want 8 applied, 1 dead-lettered (unrouted), no lag", s)
	}
	if err := c.stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got, want := ke.committed(t, cfg.GroupID), ke.ends(t); !mapsEqual(got, want) {
		t.Errorf("committed offsets %v, want the end offsets %v", got, want)
	}
}

// TestSwappingClientsWhileConsuming replaces the table, with a new client
// each time, while events flow, and closes each client as soon as the
// table drops it: no batch ever uses a closed client (that would stop the
// consumer with a fatal error), and no event is lost.
func TestSwappingClientsWhileConsuming(t *testing.T) {
	brokers, onBroker := testenv.Kafka(t)
	be := testenv.Redis(t)
	ke := newKafka(t, brokers, onBroker, 3)
	cfg := testConfig(t, ke)
	cfg.BatchSize = 50
	prefix := testenv.Name(t)
	dropPrefix(t, be.Client, prefix)
	newClient := func() redis.UniversalClient {
		if be.Miniredis != nil {
			return redis.NewClient(&redis.Options{Addr: be.Miniredis.Addr()})
		}
		opts, err := redis.ParseURL(be.URL)
		if err != nil {
			t.Fatal(err)
		}
		return redis.NewClient(opts)
	}
	var (
		log     dropLog
		closeMu sync.Mutex
		closeEr []error
	)
	first := newClient()
	rt, err := NewRouteTable(map[string]Route{"acc": {Client: first, Prefix: prefix}}, RouteTableOptions{Dropped: func(c redis.UniversalClient) {
		log.drop(c)
		if err := c.Close(); err != nil {
			closeMu.Lock()
			closeEr = append(closeEr, err)
			closeMu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close) // after the consumer's stop (cleanups run last first)
	c := startRouted(t, ke.kf, cfg, rt)

	const rounds, perRound = 20, 100
	var want []string
	for r := range rounds {
		evs := make([]schema.Event, perRound)
		for i := range evs {
			key := "user-" + strconv.Itoa(r*perRound+i)
			want = append(want, key)
			evs[i] = ev("acc", "seg", 1, key, schema.OpAdd, uint64(r*perRound+i+1))
		}
		ke.produce(t, messages(evs...)...)
		if err := rt.Set(map[string]Route{"acc": {Client: newClient(), Prefix: prefix}}); err != nil {
			t.Fatal(err)
		}
	}
	c.waitCaughtUp(t)
	if err := c.stop(); err != nil {
		t.Fatalf("Run = %v, want nil: a batch used a dropped client?", err)
	}
	slices.Sort(want)
	if got := sortedMembers(t, be.Client, prefix, "seg.g1"); !slices.Equal(got, want) {
		t.Errorf("%d members, want %d", len(got), len(want))
	}
	if s := c.Stats(); s.Applied != rounds*perRound || s.DeadLettered != 0 {
		t.Errorf("stats %+v, want %d applied", s, rounds*perRound)
	}
	if log.total() != rounds || log.count(first) != 1 {
		t.Errorf("%d clients dropped, want the %d replaced ones", log.total(), rounds)
	}
	closeMu.Lock()
	defer closeMu.Unlock()
	if len(closeEr) > 0 {
		t.Errorf("closing dropped clients: %v", closeEr)
	}
}

// TestRoutedPreflightChecksEveryDestination: Run pings every route's
// client before consuming, and its error names the destination that does
// not answer, whether it failed for good or for longer than RetryTimeout.
func TestRoutedPreflightChecksEveryDestination(t *testing.T) {
	brokers, onBroker := testenv.Kafka(t)
	ke := newKafka(t, brokers, onBroker, 1)
	good := testenv.Redis(t).Client
	closed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:9"})
	_ = closed.Close()
	broken := redis.NewClient(&redis.Options{Addr: testenv.DroppingListener(t), MaxRetries: -1})
	t.Cleanup(func() { _ = broken.Close() })
	for _, tc := range []struct {
		name string
		bad  redis.UniversalClient
		want string
	}{
		{"closed client", closed, "destination prod-eu: redis: client is closed"},
		{"server dropping connections", broken, "destination prod-eu: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := NewRouteTable(map[string]Route{
				"acc":  {Client: good, Prefix: testenv.Name(t)},
				"prod": {Name: "prod-eu", Client: tc.bad, Prefix: testenv.Name(t)},
			}, RouteTableOptions{})
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, ke)
			cfg.RetryTimeout = 300 * time.Millisecond
			c, err := NewWithRoutes(cfg, rt, ke.kf)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Run(testenv.Context(t, 30*time.Second))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "destination acc") {
				t.Fatalf("Run = %v, want an error naming prod-eu alone (%q)", err, tc.want)
			}
			if c.Ready() == nil {
				t.Error("Ready after a failed preflight")
			}
		})
	}
}

// TestUnknownEnvironmentRefreshesTheTableFirst pins the race TestServeReplicas
// found: a new destination and its mapping were applied together, a
// replica's scheduler ran the mapping at once, and another replica's
// consumer, whose poller had not yet seen the destination, dead-lettered
// its events. The consumer now asks the table's source once before
// dead-lettering; a refresh error is retried, not taken for "unknown".
func TestUnknownEnvironmentRefreshesTheTableFirst(t *testing.T) {
	ds := twoDestinations(t)
	pa, pb := testenv.Name(t)+"-a", testenv.Name(t)+"-b"
	dropPrefix(t, ds[0].rdb, pa)
	dropPrefix(t, ds[0].rdb, pb)
	var rt *RouteTable
	refreshes, failFirst := 0, true
	rt, err := NewRouteTable(map[string]Route{"prod": {Client: ds[0].rdb, Prefix: pa}}, RouteTableOptions{
		Refresh: func(context.Context) error {
			refreshes++
			if failFirst {
				failFirst = false
				return errors.New("catalog unreachable")
			}
			// The source now has the new environment.
			return rt.Set(map[string]Route{"prod": {Client: ds[0].rdb, Prefix: pa}, "staging": {Client: ds[0].rdb, Prefix: pb}})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewWithRoutes(Config{Logger: testLogger(t), RetryTimeout: 10 * time.Second}, rt, kafkaxtest.Factory(t, "127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	batch := batches()
	ctx := testenv.Context(t, 20*time.Second)
	cm, dlq := &fakeCommitter{}, &fakeWriter{}
	res, err := c.process(ctx, ctx, c.streams[0], batch(ev("prod", "seg", 1, "alice", schema.OpAdd, 1), ev("staging", "seg", 1, "bob", schema.OpAdd, 2)), cm, dlq)
	if err != nil {
		t.Fatal(err)
	}
	if res.applied != 2 || res.deadLettered != 0 || refreshes != 2 {
		t.Fatalf("result %+v after %d refreshes, want both applied after a failed then a good refresh", res, refreshes)
	}
	if got := sortedMembers(t, ds[0].rdb, pb, "seg.g1"); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("staging holds %q, want bob", got)
	}

	// An environment the source does not have either is dead-lettered,
	// after one refresh.
	res, err = c.process(ctx, ctx, c.streams[0], batch(ev("ghost", "seg", 1, "gus", schema.OpAdd, 3)), cm, dlq)
	if err != nil || res.deadLettered != 1 || refreshes != 3 {
		t.Fatalf("ghost: result %+v, %v after %d refreshes; want dead-lettered after one more refresh", res, err, refreshes)
	}
}

// TestUnavailableDestinationIsSetAside: with set-aside on, a destination
// whose Redis is down holds up the others' events only for SetAsideAfter;
// its events are then recorded (SetAside) and dead-lettered as
// destination_unavailable, later ones at once, until a PING answers again.
// A failing record keeps the batch retrying: its repair depends on it.
func TestUnavailableDestinationIsSetAside(t *testing.T) {
	good := testenv.Redis(t)
	flaky := miniredis.RunT(t)
	flakyClient := redis.NewClient(&redis.Options{Addr: flaky.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = flakyClient.Close() })
	pa, pb := testenv.Name(t)+"-a", testenv.Name(t)+"-b"
	dropPrefix(t, good.Client, pa)
	var recorded [][]string
	failRecord := 1
	rt, err := NewRouteTable(map[string]Route{
		"prod":    {Name: "production", Client: good.Client, Prefix: pa},
		"staging": {Name: "staging", Client: flakyClient, Prefix: pb},
	}, RouteTableOptions{SetAsideAfter: 200 * time.Millisecond, SetAside: func(_ context.Context, names []string) error {
		if failRecord > 0 {
			failRecord--
			return errors.New("control redis unreachable")
		}
		recorded = append(recorded, names)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewWithRoutes(Config{Logger: testLogger(t), RetryTimeout: 30 * time.Second}, rt, kafkaxtest.Factory(t, "127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	batch := batches()
	ctx := testenv.Context(t, 30*time.Second)
	cm, dlq := &fakeCommitter{}, &fakeWriter{}

	flaky.Close() // staging's Redis goes down
	res, err := c.process(ctx, ctx, c.streams[0], batch(ev("prod", "seg", 1, "alice", schema.OpAdd, 1), ev("staging", "seg", 1, "bob", schema.OpAdd, 2)), cm, dlq)
	if err != nil || res.applied != 1 || res.deadLettered != 1 {
		t.Fatalf("first batch: %+v, %v; want alice applied and bob set aside", res, err)
	}
	if len(recorded) != 1 || !slices.Equal(recorded[0], []string{"staging"}) {
		t.Fatalf("recorded %q, want staging once (after the failed record was retried)", recorded)
	}
	if got := headerValue(dlq.calls[len(dlq.calls)-1][0], schema.HeaderDeadLetterReason); got != ReasonDestinationUnavailable {
		t.Fatalf("dead letter reason %q, want %q", got, ReasonDestinationUnavailable)
	}

	retries := c.Stats().Retries
	res, err = c.process(ctx, ctx, c.streams[0], batch(ev("staging", "seg", 1, "carol", schema.OpAdd, 3), ev("prod", "seg", 1, "dave", schema.OpAdd, 4)), cm, dlq)
	if err != nil || res.applied != 1 || res.deadLettered != 1 || c.Stats().Retries != retries {
		t.Fatalf("second batch: %+v, %v, %d retries; want carol set aside at once, dave applied", res, err, c.Stats().Retries-retries)
	}
	if got := sortedMembers(t, good.Client, pa, "seg.g1"); !slices.Equal(got, []string{"alice", "dave"}) {
		t.Fatalf("production holds %q, want alice and dave", got)
	}

	if err := flaky.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond) // the next probe is due
	res, err = c.process(ctx, ctx, c.streams[0], batch(ev("staging", "seg", 1, "erin", schema.OpAdd, 5)), cm, dlq)
	if err != nil || res.applied != 1 || res.deadLettered != 0 {
		t.Fatalf("after staging came back: %+v, %v; want erin applied", res, err)
	}
	if got := sortedMembers(t, flakyClient, pb, "seg.g1"); !slices.Equal(got, []string{"erin"}) {
		t.Fatalf("staging holds %q, want erin (bob and carol were set aside)", got)
	}
	if s := c.Stats(); s.SetAside != 2 {
		t.Fatalf("stats %+v, want 2 set aside", s)
	}
}

// batches returns a builder of batches of events on partition 0 whose
// offsets follow each other across calls, as one partition's do.
func batches() func(evs ...schema.Event) []item {
	offset := int64(0)
	return func(evs ...schema.Event) []item {
		var out []item
		for _, e := range evs {
			m := e.Message()
			m.Topic, m.Partition, m.Offset = "membership", 0, offset
			offset++
			it := item{msg: m}
			it.ev, it.err = schema.Decode(&m)
			out = append(out, it)
		}
		return out
	}
}
