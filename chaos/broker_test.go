package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// broker is a Kafka broker of the suite's own (scripts/kafka.sh), started
// once for the broker rows and stopped by TestMain, which the rows take
// down with SIGKILL and start again on its data (kafka.sh resume).
type broker struct {
	dir  string
	addr string
	mu   sync.Mutex
	down bool
}

var (
	brokerOnce sync.Once
	ownBroker  *broker
	brokerErr  error
)

// startBroker starts the suite's broker (once, through brokerOnce).
func startBroker() {
	dir, err := os.MkdirTemp("", "cohortsync-chaos-kafka")
	if err != nil {
		brokerErr = err
		return
	}
	out, err := kafkaScript("start", dir)
	if err != nil {
		brokerErr = err
		return
	}
	ownBroker = &broker{dir: dir, addr: strings.TrimPrefix(strings.Split(out, "\n")[0], "KAFKA_BROKERS=")}
}

// startBrokerEarly starts the suite's broker in the background when the
// short form runs the broker rows, so that its start (a JVM's) overlaps
// the rows before them; the full form starts it when the rows need it,
// leaving the other rows' times alone.
func startBrokerEarly() {
	run := flag.Lookup("test.run").Value.String()
	if !testenv.Integration() || suiteForm() != "short" {
		return
	}
	if matched, err := regexp.MatchString(strings.Split(run, "/")[0], "TestBrokerDown"); run != "" && (err != nil || !matched) {
		return
	}
	go brokerOnce.Do(startBroker)
}

// suiteBroker returns the suite's broker, started on first use. A row
// that ends with it down (a failure mid-outage) starts it again.
func (s *stage) suiteBroker() *broker {
	s.t.Helper()
	brokerOnce.Do(startBroker)
	if brokerErr != nil {
		s.t.Fatal(brokerErr)
	}
	b := ownBroker
	s.t.Cleanup(func() {
		if err := b.start(); err != nil {
			s.t.Error(err)
		}
	})
	s.brokers = b.addr
	return b
}

// stopSuiteBroker stops the suite's broker, if one was started (waiting
// for a start under way), and removes its directory.
func stopSuiteBroker() error {
	brokerOnce.Do(func() {})
	if ownBroker == nil {
		return nil
	}
	_, err := kafkaScript("stop", ownBroker.dir)
	if err == nil {
		err = os.RemoveAll(ownBroker.dir)
	}
	return err
}

func kafkaScript(cmd, dir string) (string, error) {
	out, err := exec.Command("bash", "../scripts/kafka.sh", cmd, dir).Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		return "", fmt.Errorf("kafka.sh %s: %w\n%s%s", cmd, err, out, stderr)
	}
	return string(out), nil
}

// kill takes the broker down at once (SIGKILL: no controlled shutdown)
// and returns when its port is closed.
func (b *broker) kill(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.dir, "kafka.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("broker pid file: %v", err)
	}
	b.mu.Lock()
	b.down = true
	b.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the broker: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the broker's port still open 30 s after SIGKILL")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start starts a killed broker again on its ports and data, and returns
// once it is ready; it does nothing to a broker that is up.
func (b *broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down {
		return nil
	}
	if _, err := kafkaScript("resume", b.dir); err != nil {
		return err
	}
	b.down = false
	return nil
}

// endOffsets sums the end offsets of topic's partitions (the messages
// published so far), -1 while the broker does not answer.
func endOffsets(ctx context.Context, brokers, topic string) int64 {
	c := &kafka.Client{Addr: kafka.TCP(strings.Split(brokers, ",")...), Timeout: 2 * time.Second}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return -1
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	lo, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return -1
	}
	var n int64
	for _, p := range lo.Topics[topic] {
		if p.Error != nil {
			return -1
		}
		n += p.LastOffset
	}
	return n
}

// waitCount waits (bounded) until the segment's member index holds n
// members.
func (s *stage) waitCount(what string, n int) {
	s.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if got, err := s.memberCount(); err == nil && got == int64(n) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("%s: the member index does not hold %d members after 3 minutes", what, n)
}

// TestBrokerDown holds the broker rows, one after the other on the
// suite's broker.
func TestBrokerDown(t *testing.T) {
	parallelInShortForm(t)
	t.Run("DuringPublish", brokerDownDuringPublish)
	t.Run("DuringApply", brokerDownDuringApply)
}

// brokerDownDuringPublish: the broker is killed while a sync
// publishes (paced, so that the outage falls in the middle of it) and
// starts again on its data after the row's outage; the sync carries on
// (its retries outlast the outage) and the consumer, running throughout,
// too. Redis ends exact.
func brokerDownDuringPublish(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	s.row(fmt.Sprintf("the broker SIGKILLed while `sync` publishes a cohort replacing every member "+
		"(paced: `--send-batch %d --in-flight 1 --batch-timeout 200ms`), started again on its data %v later; the consumer runs throughout",
		publishPace(sz), sz.outage))
	b := s.suiteBroker()
	first, a := s.cohort("a", 0, sz.members, 0)
	second, bb := s.cohort("b", sz.members, sz.members, 0) // every member leaves, as many join
	s.sync(first)
	s.consumer()
	s.waitCount("the first cohort applied", len(a))

	before := endOffsets(s.ctx, s.brokers, s.topic)
	if before < 0 {
		t.Fatal("no end offsets for the topic")
	}
	p := s.start(append(s.syncArgs(second), "--send-batch", strconv.Itoa(publishPace(sz)), "--in-flight", "1", "--batch-timeout", "200ms")...)
	deadline := time.Now().Add(2 * time.Minute)
	var published int64
	for published = endOffsets(s.ctx, s.brokers, s.topic); published <= before; published = endOffsets(s.ctx, s.brokers, s.topic) {
		if time.Now().After(deadline) || !p.endedAt().IsZero() {
			t.Fatalf("the sync published nothing in 2 minutes, or ended first:\n%s", p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	down := time.Now()
	b.kill(t)
	if !p.endedAt().IsZero() {
		t.Fatalf("the sync ended before the broker was down: the row did not test publishing (pace it more)\n%s", p.output())
	}
	time.Sleep(sz.outage - time.Since(down))
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	s.faultOver()
	s.note("down %.1f s (kill to ready again), %d of about %d events published when it went down",
		s.faultEnd.Sub(down).Seconds(), published-before, 2*sz.members)
	if err := p.wait(t, 3*time.Minute); err != nil {
		t.Fatalf("the sync gave up during the outage (%v); its retries should outlast it:\n%s", err, p.output())
	}
	s.checkExact("after the broker was down during publish", bb, a)
}

// publishPace is the events per WriteMessages call that spread the
// publish of brokerDownDuringPublish over about 10–20 s: fewer than a
// produce batch per partition, so that each call waits out the batch
// timeout.
func publishPace(sz size) int { return min(sz.members/30, 6000) }

// brokerDownDuringApply: both syncs are published before the consumer
// starts (no producer runs); the broker is killed while the consumer
// applies them in small batches (each committed) and starts again on its
// data after the row's outage. The consumer's fetches and commits fail
// meanwhile; it retries, and batches whose commit was lost are applied
// again. Redis ends exact.
func brokerDownDuringApply(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	s.row(fmt.Sprintf("the broker SIGKILLed while the consumer applies two syncs published before it started "+
		"(`--batch-size 200`: many small batches, each committed), started again on its data %v later; no producer runs", sz.outage))
	b := s.suiteBroker()
	first, a, second, bb := s.twoCohorts(sz.members, 3)
	s.sync(first)
	s.sync(second)
	s.consumer("--batch-size", "200")
	s.waitApplying(len(a))
	down := time.Now()
	b.kill(t)
	n, err := s.memberCount()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.members(); equal(got, bb) {
		t.Fatal("the consumer had applied everything before the broker was down: the row did not test applying")
	}
	time.Sleep(sz.outage - time.Since(down))
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	s.faultOver()
	s.note("down %.1f s (kill to ready again), with %d members in Redis when it went down", s.faultEnd.Sub(down).Seconds(), n)
	s.checkExact("after the broker was down during apply", bb, minus(a, bb))
}
