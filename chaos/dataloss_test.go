package chaos

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestRedisDataLoss: the destination's redis-server loses everything
// (FLUSHALL) under a running consumer. The loss must be detected, not
// reported as a current store: /readyz fails naming it,
// cohortsync_consumer_stores_lost is 1, the lost mark is written and
// big_segments_synchronized_on is deleted (SDKs see STALE), and it stays
// so while a second sync is applied. Then the rebuild README documents
// ("Redis lost its data", its runbook): the consumer stopped, `cohortsync
// rebuild`, a consumer started. Redis ends exact and current; the
// time to recover runs from the FLUSHALL and includes the detection and
// the rebuild's steps, run at once.
func TestRedisDataLoss(t *testing.T) {
	parallelInShortForm(t)
	sz := suiteSize()
	s := newStage(t)
	s.row("FLUSHALL of the destination's redis-server under a running consumer, a second sync published during the loss; " +
		"then the documented rebuild: the consumer stopped (SIGTERM), `cohortsync rebuild`, a consumer started")
	first, a, second, b := s.twoCohorts(sz.members, 3)
	s.sync(first)
	httpAddr := testenv.ClosedAddr(t)
	c := s.consumer("--http-addr", httpAddr)
	s.waitCount("the first cohort applied", len(a))
	testenv.Eventually(t, time.Minute, "/readyz 200 before the loss", func() bool {
		code, _ := get(httpAddr, "/readyz")
		return code == http.StatusOK
	})
	// The loss is detectable once the consumer has marked the store
	// current: it writes its store id with the first synchronized_on. A
	// FLUSHALL before that (members applied and committed, no stamp yet)
	// is not seen: the consumer then claims the emptied store as new (a
	// short form run in parallel found that window).
	testenv.Eventually(t, time.Minute, "the store marked current, with its store id", func() bool {
		return s.rdb.Exists(s.ctx, bigsegments.SyncTimeKey(s.prefix), bigsegments.StoreIDKey(s.prefix)).Val() == 2
	})

	if err := s.rdb.FlushAll(s.ctx).Err(); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	s.faultEnd = lost // an instant fault: recovery runs from here
	var readyz string
	testenv.Eventually(t, time.Minute, "/readyz failing, naming the lost store", func() bool {
		code, body := get(httpAddr, "/readyz")
		readyz = body
		return code == http.StatusServiceUnavailable && strings.Contains(body, "lost its data") && strings.Contains(body, s.prefix)
	})
	detected := time.Since(lost)
	testenv.Eventually(t, 30*time.Second, "cohortsync_consumer_stores_lost 1", func() bool {
		_, body := get(httpAddr, "/metrics")
		return strings.Contains(body, "\ncohortsync_consumer_stores_lost 1\n")
	})
	s.waitNotCurrent("after the loss")
	s.note("detected %.2f s after the FLUSHALL: /readyz 503 (%q), `cohortsync_consumer_stores_lost` 1, the lost mark written, synchronized_on deleted",
		detected.Seconds(), strings.TrimSpace(readyz))

	// New events are applied to the emptied store, which is still not
	// claimed current.
	s.sync(second)
	for range 20 { // several of the consumer's checks (--sync-interval 200ms)
		if s.rdb.Exists(s.ctx, bigsegments.SyncTimeKey(s.prefix)).Val() != 0 {
			t.Fatal("synchronized_on written again over the emptied store after a sync")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.waitNotCurrent("after a sync during the loss")

	// The rebuild, as README's runbook documents it: the group stopped,
	// `cohortsync rebuild`, the consumers started again.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(t, time.Minute); err != nil {
		t.Fatalf("consumer after SIGTERM: %v\n%s", err, c.output())
	}
	rebuild := []string{"rebuild", "--env", "chaos", "--group-id", s.group,
		"--redis-url", "redis://" + s.redis.addr + "/0", "--redis-prefix", s.prefix, "--kafka-brokers", s.brokers, "--topic", s.topic}
	// The group may still list the stopped member for a moment: rebuild
	// refuses until it is empty.
	var out []byte
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		var err error
		if out, err = exec.Command(s.bin, rebuild...).CombinedOutput(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cohortsync rebuild: %v\n%s", err, out)
		}
	}
	t.Logf("cohortsync rebuild:\n%s", out)
	if n := s.rdb.Exists(s.ctx, bigsegments.StoreLostKey(s.prefix)).Val(); n != 0 {
		t.Fatalf("the lost mark %s is still there after cohortsync rebuild", bigsegments.StoreLostKey(s.prefix))
	}
	s.consumer()
	s.checkExact("after the rebuild", b, minus(a, b))
}

// waitNotCurrent checks that the store is not marked current: the
// synchronized_on key gone (within a few seconds: a stamp racing the loss
// is taken back at the consumer's next check) and the lost mark present.
func (s *stage) waitNotCurrent(when string) {
	s.t.Helper()
	testenv.Eventually(s.t, 10*time.Second, "synchronized_on deleted "+when, func() bool {
		return s.rdb.Exists(s.ctx, bigsegments.SyncTimeKey(s.prefix)).Val() == 0
	})
	if n := s.rdb.Exists(s.ctx, bigsegments.StoreLostKey(s.prefix)).Val(); n != 1 {
		s.t.Fatalf("%s: no lost mark %s", when, bigsegments.StoreLostKey(s.prefix))
	}
}

// get returns the status and body of http://addr+path (0 when it fails).
func get(addr, path string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s%s", addr, path))
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
