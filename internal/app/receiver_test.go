package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/runstore"
	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/mappingrun"
)

// TestServeReceiverKeepsMembersExact runs serve's consumer and receiver
// parts. A CSV mapping run fills a segment; partners push adds and
// removes to the same segment (with a retried duplicate); the consumer
// applies them and Redis holds exactly the expected members. A second
// CSV run then diffs against that truth, not against its own last file:
// the pushes moved the shared sequence counter, so it rebuilds its
// snapshot from Redis, and the member set is exactly the new file.
func TestServeReceiverKeepsMembersExact(t *testing.T) {
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	ctx := testenv.Context(t, 3*time.Minute)
	f := newCSVMapping(t, ctx, "rudderstack-c1", "a", "b", "c")
	clientSideID, rc, sc := f.clientSideID, f.rc, f.sc
	writeCSV := func(keys ...string) { f.writeCSV(t, keys...) }
	var token strings.Builder
	if err := DestinationsToken(ctx, rc, sc, "production", &token); err != nil {
		t.Fatal(err)
	}

	cfg := scheduledServe(t, name)
	addr, httpAddr := testenv.ClosedAddr(t), cfg.HTTPAddr
	cfg.Parts, cfg.ReceiverAddr = []string{PartConsumer, PartReceiver}, addr
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	proc := DefaultProcess()
	proc.LogLevel = "error"
	noEnv := func(string) (string, bool) { return "", false }
	kc := kafkax.Config{Brokers: brokers}
	syncNow := func() {
		t.Helper()
		if err := SyncMapping(ctx, proc, noEnv, kc, rc, sc, cfg.Runs, RunOptions{}, "churn", io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	rdb, err := redisx.Open(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	members := func() []string {
		var got []string
		err := segmentstore.Members(ctx, rdb, clientSideID, bigsegments.Ref("rudderstack-c1", 1), func(k string) error {
			got = append(got, k)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	waitMembers := func(what string, want ...string) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, what, func() bool { return slices.Equal(members(), want) })
		// Membership as the SDK reads it, too.
		for _, k := range want {
			in, _, err := segmentstore.Membership(ctx, rdb, clientSideID, k)
			if err != nil || !slices.Contains(in, bigsegments.Ref("rudderstack-c1", 1)) {
				t.Fatalf("%s: %s not included (%v %v)", what, k, in, err)
			}
		}
	}

	stop := runUntilCancelled(t, ctx, "Serve", func(ctx context.Context) error {
		return Serve(ctx, proc, noEnv, kc, rc, sc, cfg, io.Discard)
	})
	defer stop()
	syncNow()
	waitMembers("the first CSV run applied", "a", "b", "c")

	post := func(body, tok string) int {
		t.Helper()
		body = strings.ReplaceAll(body, "ENV", clientSideID)
		var status int
		testenv.Eventually(t, 30*time.Second, "the receiver answers", func() bool {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v2/segment-targets/rudderstack", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false // not listening yet
			}
			_ = resp.Body.Close()
			status = resp.StatusCode
			return true
		})
		return status
	}
	push := func(body string) {
		t.Helper()
		if status := post(body, strings.TrimSpace(token.String())); status != http.StatusNoContent {
			t.Fatalf("push %s: status %d", body, status)
		}
	}
	batch := `{"environmentId": "ENV", "cohortId": "c1", "listData": {"add": [%s], "remove": [%s]}}`
	ids := func(keys ...string) string {
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf(`{"id": %q}`, k))
		}
		return strings.Join(parts, ", ")
	}
	push(fmt.Sprintf(batch, ids("d", "x")+`, {"id": ""}`, ids("a"))) // its third member has no usable key
	push(fmt.Sprintf(batch, ids(), ids("x")))
	push(fmt.Sprintf(batch, ids(), ids("x"))) // a partner's retry of the same batch
	push(fmt.Sprintf(batch, ids("y"), ids()))
	waitMembers("the pushes applied", "b", "c", "d", "y")
	if status := post(fmt.Sprintf(batch, ids("z"), ids()), "cst_wrong"); status != http.StatusUnauthorized {
		t.Fatalf("a wrong token: status %d", status)
	}
	// The receiver's counters on serve's /metrics, beside the consumer's.
	for _, w := range []string{
		"cohortsync_receiver_batches_total 4\n",
		"cohortsync_receiver_members_total 6\n",
		`cohortsync_receiver_refused_total{status="401"} 1` + "\n",
		"cohortsync_receiver_runs_not_recorded_total 0\n",
		"cohortsync_consumer_unrouted_total 0\n",
	} {
		if m := get(t, "http://"+httpAddr+"/metrics"); !strings.Contains(m, w) {
			t.Errorf("/metrics lacks %q:\n%s", w, m)
		}
	}

	// The file no longer has c and newly has e: against its own last file
	// ({a,b,c}) the run would keep d and y.
	writeCSV("b", "d", "e")
	syncNow()
	waitMembers("the second CSV run applied against the pushed truth", "b", "d", "e")
	stop()

	// Each accepted push is a run of the segment (no mapping claims it),
	// the first with its excluded member kept; the refused one is none.
	h, err := runstore.New(rdb, runstore.Config{Prefix: sc.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	pushes, err := h.List(ctx, runstore.Filter{Mapping: "rudderstack-c1"})
	if err != nil || len(pushes) != 4 {
		t.Fatalf("%d push runs, %v; want 4", len(pushes), err)
	}
	first := pushes[len(pushes)-1]
	if first.Trigger != "push" || first.Summary.Input != "rudderstack" || first.Summary.Added != 2 || first.Summary.Removed != 1 ||
		first.Summary.ExcludedTotal() != 1 || first.Exclusions == nil || first.Exclusions.Kept != 1 {
		t.Fatalf("first push run %+v", first)
	}
	var report, notes strings.Builder
	if err := RunsExclusions(ctx, rc, sc, first.ID, "", &report, &notes); err != nil || report.String() != "row,line,value,reason\n3,,,empty_id\n" || notes.Len() > 0 {
		t.Fatalf("runs exclusions %s: %q, %q, %v", first.ID, report.String(), notes.String(), err)
	}
	// The receiver part's run watcher marks the push run applied once the
	// consumer committed past it.
	var show strings.Builder
	testenv.Eventually(t, 30*time.Second, "the push run applied", func() bool {
		show.Reset()
		return RunsShow(ctx, rc, sc, first.ID, &show) == nil && strings.Contains(show.String(), "trigger push, status applied, with exclusions\n")
	})
	if !strings.Contains(show.String(), "after publishing)") ||
		!strings.Contains(show.String(), "kept        1 exclusions: cohortsync runs exclusions "+first.ID+" --destination production") {
		t.Fatalf("runs show %s:\n%s", first.ID, show.String())
	}
}

// TestServeConfigReceiver: the receiver part needs its address; the
// default parts do not include it.
func TestServeConfigReceiver(t *testing.T) {
	valid := func() ServeConfig {
		return ServeConfig{Parts: []string{PartReceiver}, ReceiverAddr: "127.0.0.1:0", Runs: mappingrun.Config{Producer: producer.DefaultConfig()}}
	}
	testenv.RunValidate(t, valid, []testenv.ValidateCase[ServeConfig]{
		{Name: "receiver with address", Change: func(*ServeConfig) {}},
		{Name: "receiver without address", Change: func(c *ServeConfig) { c.ReceiverAddr = "" },
			Want: `--receiver-addr="": want a host:port to listen on, with the receiver part`},
		{Name: "bad address", Change: func(c *ServeConfig) { c.ReceiverAddr = "nocolon" },
			Want: `--receiver-addr="nocolon": want host:port (host may be empty)`},
		{Name: "bad receiver setting", Change: func(c *ServeConfig) { c.Receiver.MaxInFlight = -1 },
			Want: `--receiver-max-in-flight="-1": want an integer between 1 and 1024`},
		{Name: "unknown part", Change: func(c *ServeConfig) { c.Parts = []string{"receivr"} },
			Want: `--parts="receivr": want a comma-separated subset of scheduler, consumer, receiver`},
	})
	if (ServeConfig{}).runs(PartReceiver) {
		t.Error("the default parts include the receiver")
	}
}
