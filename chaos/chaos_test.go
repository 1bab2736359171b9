package chaos

import (
	"context"
	"os/exec"
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
	sz := suiteSize()
	s := newStage(t)
	first, a, second, b := s.twoCohorts(sz.members, 0)
	s.sync(first)
	s.sync(second)
	for range sz.kills {
		c := s.consumer()
		s.waitApplying(len(a))
		time.Sleep(jitter(0, 300*time.Millisecond))
		c.kill()
	}
	s.consumer()
	s.checkExact("after consumers killed mid-apply", b, minus(a, b))
}

// TestProducerKilled: syncs are killed with SIGKILL at random points while
// they publish; each is run again (recovering the interrupted run) until
// it succeeds. Redis ends exact for the last cohort.
func TestProducerKilled(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	first, a, second, b := s.twoCohorts(sz.members, 7)
	for i, csv := range []string{first, second} {
		for range sz.kills {
			p := s.start(s.syncArgs(csv)...)
			time.Sleep(jitter(50*time.Millisecond, 1500*time.Millisecond))
			p.kill()
		}
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
	first, a := s.cohort("a", 0, sz.members, 0)
	s.sync(first)
	s.consumer()
	s.waitApplying(len(a))
	s.redis.restart(t)
	s.checkExact("after a Redis restart mid-apply", a, nil)
	second, b := s.cohort("b", sz.members/10, sz.members, 0)
	s.sync(second)
	s.waitApplying(len(b))
	s.redis.restart(t)
	s.checkExact("after a second Redis restart mid-apply", b, minus(a, b))
}

// TestSIGTERMMidApply: SIGTERM during a large apply ends the consumer
// within its shutdown timeout (plus a second); the next one finishes and
// Redis ends exact.
func TestSIGTERMMidApply(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
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
	if took := time.Since(begin); took > shutdown+time.Second {
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
	s.consumer()
	s.checkExact("with poison messages among the events", b, minus(a, b))
	if n := countMessages(t, ctx, s.brokers, s.topic+".dlq"); n != 2*len(poison) {
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
	sz := suiteSize()
	s := newStage(t)
	first, a, second, b := s.twoCohorts(sz.members, 0)
	s.sync(first)
	members := []*proc{s.consumer(), s.consumer()}
	for i := range 2 * sz.kills {
		if i == sz.kills {
			s.sync(second)
		}
		time.Sleep(jitter(200*time.Millisecond, 1500*time.Millisecond))
		members = append(members, s.consumer())
		leaving := members[0]
		members = members[1:]
		if err := leaving.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := leaving.wait(t, time.Minute); err != nil {
			t.Fatalf("consumer leaving on SIGTERM: %v\n%s", err, leaving.output())
		}
	}
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
			if p2.ended.After(p1.ended) {
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
	for k := range a {
		if !want[k] {
			gone[k] = true
		}
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

// TestBrokerOutage: the broker (one of the suite's own) stops while the
// consumer applies and a sync publishes, and comes back on its data a few
// seconds later; the consumer and the sync (run again if it gave up)
// carry on. Redis ends exact.
func TestBrokerOutage(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	dir := t.TempDir()
	kafka := func(cmd string) string {
		t.Helper()
		out, err := exec.Command("bash", "../scripts/kafka.sh", cmd, dir).Output()
		if err != nil {
			t.Fatalf("kafka.sh %s: %v\n%s", cmd, err, out)
		}
		return string(out)
	}
	out := kafka("start")
	t.Cleanup(func() { _ = exec.Command("bash", "../scripts/kafka.sh", "stop", dir).Run() })
	s.brokers = strings.TrimSpace(strings.TrimPrefix(strings.Split(out, "\n")[0], "KAFKA_BROKERS="))

	first, a, second, b := s.twoCohorts(sz.members, 3)
	s.sync(first)
	s.consumer()
	s.waitApplying(len(a))
	kafka("stop")
	p := s.start(s.syncArgs(second)...) // publishes into the outage
	time.Sleep(jitter(2*time.Second, 5*time.Second))
	kafka("resume")
	if err := p.wait(t, 3*time.Minute); err != nil {
		t.Logf("the sync during the outage gave up (%v); running it again", err)
		s.sync(second)
	}
	s.checkExact("after a broker outage", b, minus(a, b))
}
