package chaos

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// Each test is a row of RELIABILITY.md; keep the two in step.

// TestConsumerKilled: the consumer is killed with SIGKILL at random points
// while it applies a first sync and then a second one changing a tenth of
// the members; each time a new one takes over. Redis ends exact.
func TestConsumerKilled(t *testing.T) {
	parallelInShortForm(t)
	sz := suiteSize()
	s := newStage(t)
	s.row(fmt.Sprintf("SIGKILL of the consumer %d times at random points while it applies a first sync and a second one (a tenth of the members left, a tenth joined); a new consumer each time", sz.kills))
	first, a, second, b := s.twoCohorts(sz.members, 0)
	s.sync(first)
	s.sync(second)
	for range sz.kills {
		c := s.consumer()
		s.waitApplying(len(a))
		time.Sleep(jitter(0, 300*time.Millisecond))
		c.kill()
	}
	s.faultOver()
	s.consumer()
	s.checkExact("after consumers killed mid-apply", b, minus(a, b))
}

// TestProducerKilled: syncs are killed with SIGKILL at random points while
// they publish; each is run again (recovering the interrupted run) until
// it succeeds. Redis ends exact for the last cohort.
func TestProducerKilled(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	s.row(fmt.Sprintf("SIGKILL of `sync` %d times at random points (50 ms – 1.5 s) while it publishes, then the sync run again, for two cohorts", sz.kills))
	first, a, second, b := s.twoCohorts(sz.members, 7)
	for i, csv := range []string{first, second} {
		for range sz.kills {
			p := s.start(s.syncArgs(csv)...)
			time.Sleep(jitter(50*time.Millisecond, 1500*time.Millisecond))
			p.kill()
		}
		s.faultOver()
		s.sync(csv) // recovers what a killed run left pending
		if i == 0 {
			s.consumer() // the topics exist now
		}
	}
	s.checkExact("after syncs killed mid-publish", b, minus(a, b))
}

// TestRedisRestartedMidApply: Redis stops abruptly (SIGKILL; with fsync'd
// persistence, what it acknowledged survives) and starts again while the
// consumer applies; the consumer retries its batch and Redis ends exact.
func TestRedisRestartedMidApply(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	s.row("SIGKILL of redis-server while the consumer applies, restart on its files (`appendfsync always`), twice")
	first, a := s.cohort("a", 0, sz.members, 0)
	s.sync(first)
	s.consumer()
	s.waitApplying(len(a))
	s.redis.restart(t)
	s.faultOver()
	s.checkExact("after a Redis restart mid-apply", a, nil)
	second, b := s.cohort("b", sz.members/10, sz.members, 0)
	s.sync(second)
	s.waitApplying(len(b))
	s.redis.restart(t)
	s.faultOver()
	s.checkExact("after a second Redis restart mid-apply", b, minus(a, b))
}

// TestSIGTERMMidApply: SIGTERM during a large apply ends the consumer
// within its shutdown timeout (plus a second); the next one finishes and
// Redis ends exact.
func TestSIGTERMMidApply(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	s.row("SIGTERM during a large apply, `--shutdown-timeout 5s`; then a new consumer")
	first, a := s.cohort("a", 0, sz.members, 0)
	s.sync(first)
	const shutdown = 5 * time.Second
	c := s.consumer("--shutdown-timeout", shutdown.String())
	s.waitApplying(len(a))
	begin := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.wait(t, shutdown+30*time.Second); err != nil {
		t.Fatalf("consumer after SIGTERM: %v\n%s", err, c.output())
	}
	took := time.Since(begin)
	s.faultOver()
	s.note("the consumer exited %.1f s after SIGTERM (at most %v allowed)", took.Seconds(), shutdown+time.Second)
	if took > shutdown+time.Second {
		t.Errorf("consumer took %v to stop after SIGTERM, want at most %v", took, shutdown+time.Second)
	}
	s.consumer()
	s.checkExact("after SIGTERM mid-apply", a, nil)
}

// TestPoisonMessages: messages that are no membership event (garbage,
// an unknown schema version, an event with an invalid key) sit among the
// real events; each is dead-lettered, the rest applied: Redis exact.
func TestPoisonMessages(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	s.row("garbage, an unknown schema version and an event with an empty key among the events, twice; the consumer starts after both syncs (recovery counted from its start)")
	first, a := s.cohort("a", 0, sz.members/3, 0)
	s.sync(first) // creates the topics
	poison := []kafka.Message{
		{Key: []byte("x"), Value: []byte("not json")},
		{Key: []byte("y"), Value: []byte(`{"v":99,"env":"chaos"}`)},
		{Key: []byte("z"), Value: []byte(`{"v":1,"env":"chaos","segment":"chaos","generation":1,"context_kind":"user","context_key":"","op":"add","seq":1}`)},
	}
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(s.brokers, ",")...), Topic: s.topic, BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx := testenv.Context(t, time.Minute)
	if err := w.WriteMessages(ctx, poison...); err != nil {
		t.Fatal(err)
	}
	second, b := s.cohort("b", sz.members/30, sz.members/3, 0)
	s.sync(second)
	if err := w.WriteMessages(ctx, poison...); err != nil {
		t.Fatal(err)
	}
	s.faultOver()
	s.consumer()
	s.checkExact("with poison messages among the events", b, minus(a, b))
	n := countMessages(t, ctx, s.brokers, s.topic+".dlq")
	s.note("%d of the %d poison messages on the dead-letter topic", n, 2*len(poison))
	if n != 2*len(poison) {
		t.Fatalf("dead-letter topic holds %d messages, want the %d poison ones", n, 2*len(poison))
	}
}

// countMessages counts the messages of topic (every partition, up to the
// end offsets listed first).
func countMessages(t *testing.T, ctx context.Context, brokers, topic string) int {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...), Timeout: 10 * time.Second}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range lo.Topics[topic] {
		n += int(p.LastOffset - p.FirstOffset)
	}
	return n
}

// TestRebalances: consumers join and leave (SIGTERM) again and again
// while a first sync and a second are applied, moving partitions between
// members at every step. Redis ends exact.
func TestRebalances(t *testing.T) {
	s := newStage(t)
	s.row(fmt.Sprintf("a consumer joins every 0.2–1.5 s and the oldest member leaves (SIGTERM) 0–0.8 s later, into the rebalance, %d times, during two syncs", 2*suiteSize().kills))
	s.rebalances(2*suiteSize().kills, func(leaving *proc) {
		if err := leaving.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := leaving.wait(t, time.Minute); err != nil {
			t.Fatalf("consumer leaving on SIGTERM: %v\n%s", err, leaving.output())
		}
	})
}

// TestRebalancesMemberKilled: as TestRebalances, but the member leaving
// is killed with SIGKILL, mid-rebalance (the one the joining member just
// started): it neither finishes its batch nor leaves the group, which
// waits out its session (30 s) before handing its partitions on; its
// uncommitted batches are applied again by their next owner. Redis ends
// exact.
func TestRebalancesMemberKilled(t *testing.T) {
	parallelInShortForm(t)
	s := newStage(t)
	s.row(fmt.Sprintf("a consumer joins every 0.2–1.5 s and the oldest member is killed (SIGKILL) 0–0.8 s later, into the rebalance, %d times, during two syncs; the group waits out each dead member's 30 s session", suiteSize().kills))
	s.rebalances(2*suiteSize().kills, func(leaving *proc) { leaving.kill() })
}

// rebalances runs the rebalance rows: two consumers apply a first sync,
// then, steps times at random intervals, a consumer joins and the oldest
// member leaves through leave, the second sync published halfway.
func (s *stage) rebalances(steps int, leave func(*proc)) {
	s.t.Helper()
	first, a, second, b := s.twoCohorts(suiteSize().members, 0)
	s.sync(first)
	members := []*proc{s.consumer(), s.consumer()}
	for i := range steps {
		if i == steps/2 {
			s.sync(second)
		}
		time.Sleep(jitter(200*time.Millisecond, 1500*time.Millisecond))
		members = append(members, s.consumer())
		time.Sleep(jitter(0, 800*time.Millisecond)) // into the rebalance the join starts
		leaving := members[0]
		members = members[1:]
		leave(leaving)
	}
	s.faultOver()
	s.checkExact("after repeated rebalances", b, minus(a, b))
}

// TestConcurrentSyncs: two syncs of one segment start at once, again and
// again; they never run together: one is refused (the segment's lock) and
// says so, changing nothing, or (when one was done before the other took
// the lock) they ran one after the other. Redis ends exact for the cohort
// of the last sync that ran.
func TestConcurrentSyncs(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	s.row(fmt.Sprintf("two syncs of one segment (one state directory) started at once, %d times", sz.kills))
	first, a := s.cohort("a", 0, sz.members, 0)
	s.sync(first)
	s.consumer()
	second, b := s.cohort("b", sz.members/10, sz.members, 0)
	third, c := s.cohort("c", sz.members/5, sz.members, 5)
	want, gone := a, map[string]bool{}
	for range sz.kills {
		p1, p2 := s.start(s.syncArgs(second)...), s.start(s.syncArgs(third)...)
		err1, err2 := p1.wait(t, 3*time.Minute), p2.wait(t, 3*time.Minute)
		switch {
		case err1 == nil && err2 == nil: // one after the other: the lock serialised them
			want = b
			if p2.endedAt().After(p1.endedAt()) {
				want = c
			}
		case err1 != nil && err2 != nil:
			t.Fatalf("neither concurrent sync ran:\n%s\n%s", p1.output(), p2.output())
		case err1 == nil:
			want = b
			assertLocked(t, p2)
		default:
			want = c
			assertLocked(t, p1)
		}
	}
	s.faultOver()
	for _, cohort := range []map[string]bool{a, b, c} {
		maps.Copy(gone, minus(cohort, want))
	}
	s.checkExact("after concurrent syncs", want, gone)
}

// assertLocked checks that p was refused because another sync held the
// segment.
func assertLocked(t *testing.T, p *proc) {
	t.Helper()
	if out := p.output(); !strings.Contains(out, "lock") {
		t.Fatalf("the refused sync does not say the segment is locked:\n%s", out)
	}
}
