package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// size is how large the suite's cohorts are and how often it strikes.
type size struct {
	members int // of the first cohort; the second changes a tenth of them
	kills   int // SIGKILLs per kill scenario
	// outage is how long the broker stays down in the broker rows
	outage time.Duration
}

// The short form (make test) and the long one (COHORTSYNC_CHAOS=full, make
// chaos).
var (
	shortSize = size{members: 30_000, kills: 2, outage: 5 * time.Second}
	fullSize  = size{members: 300_000, kills: 6, outage: 15 * time.Second}
)

func suiteForm() string {
	if os.Getenv("COHORTSYNC_CHAOS") == "full" {
		return "full"
	}
	return "short"
}

// suiteSize is the short form, or the long one with COHORTSYNC_CHAOS=full.
func suiteSize() size {
	if suiteForm() == "full" {
		return fullSize
	}
	return shortSize
}

// parallelInShortForm runs a row whose time goes mostly to waiting (a dead
// member's session, a JVM starting) beside another one in the short form,
// to keep make test short (go test runs -parallel GOMAXPROCS tests at
// once, after the serial ones). The full form runs the rows one at a time:
// its times to recover are each row's own.
func parallelInShortForm(t *testing.T) {
	if suiteForm() == "short" {
		t.Parallel()
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/cohortsync once for the package's tests.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cohortsync-chaos-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cohortsync")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, "../cmd/cohortsync").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// stage is one scenario's world: a topic, a consumer group, a Redis prefix
// and a producer state directory of its own, on the backends under test.
type stage struct {
	t        *testing.T
	ctx      context.Context
	bin      string
	brokers  string
	redis    *redisServer
	rdb      redis.UniversalClient
	topic    string
	group    string
	prefix   string
	stateDir string
	segment  string
	procs    []*proc // started, for their output when a check fails
	// res is the test's row (row); faultEnd when its last fault ended
	// (faultOver), the start of the time to recover.
	res      *result
	faultEnd time.Time
}

func newStage(t *testing.T) *stage {
	t.Helper()
	if !testenv.Integration() {
		// kfake does not hand a SIGKILLed member's partitions to the next
		// one (a real broker does after the session timeout), and the
		// suite is about real servers failing: it runs in make test's
		// second phase and in make chaos.
		t.Skip("the chaos suite runs against the real Kafka broker and redis-server (COHORTSYNC_INTEGRATION=1)")
	}
	brokers, _ := testenv.Kafka(t)
	name := testenv.Name(t)
	rs := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.addr, MaxRetries: 10})
	t.Cleanup(func() { _ = rdb.Close() })
	return &stage{t: t, ctx: testenv.Context(t, 10*time.Minute), bin: binary(t), brokers: strings.Join(brokers, ","),
		redis: rs, rdb: rdb, topic: name, group: name, prefix: name, stateDir: t.TempDir(), segment: "chaos"}
}

// redisServer is a Redis the suite may restart: a redis-server of its own
// with an fsync'd append-only file (a restart is a SIGKILL and a start on
// the same port and files).
type redisServer struct {
	addr string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	addr := testenv.ClosedAddr(t)
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	rs := &redisServer{addr: addr, dir: t.TempDir(), port: port}
	rs.launch(t)
	t.Cleanup(func() {
		if rs.cmd != nil {
			_ = rs.cmd.Process.Kill()
			_ = rs.cmd.Wait()
		}
	})
	return rs
}

func (rs *redisServer) launch(t *testing.T) {
	t.Helper()
	rs.cmd = exec.Command("redis-server", "--port", strconv.Itoa(rs.port), "--bind", "127.0.0.1", "--dir", rs.dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no")
	if err := rs.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: rs.addr})
	defer c.Close()
	testenv.Eventually(t, 30*time.Second, "redis-server answers", func() bool { return c.Ping(context.Background()).Err() == nil })
}

// restart stops Redis abruptly and starts it again on the same address,
// with what it had persisted.
func (rs *redisServer) restart(t *testing.T) {
	t.Helper()
	_ = rs.cmd.Process.Signal(syscall.SIGKILL)
	_ = rs.cmd.Wait()
	time.Sleep(500 * time.Millisecond)
	rs.launch(t)
}

// cohort writes a CSV of keys u<first>..u<first+n-1> except every
// skip-th (skip 0: none), and returns the path and the keys written.
func (s *stage) cohort(name string, first, n, skip int) (string, map[string]bool) {
	s.t.Helper()
	var b bytes.Buffer
	b.WriteString("user_id\n")
	keys := make(map[string]bool, n)
	for i := first; i < first+n; i++ {
		if skip > 0 && i%skip == 0 {
			continue
		}
		k := fmt.Sprintf("u%07d", i)
		keys[k] = true
		b.WriteString(k + "\n")
	}
	path := filepath.Join(s.t.TempDir(), name+".csv")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path, keys
}

// twoCohorts is a first cohort of n members and a second one where a tenth
// left, a tenth joined and, with skip, every skip-th key is dropped.
func (s *stage) twoCohorts(n, skip int) (first string, a map[string]bool, second string, b map[string]bool) {
	s.t.Helper()
	first, a = s.cohort("a", 0, n, 0)
	second, b = s.cohort("b", n/10, n, skip)
	return first, a, second, b
}

// proc is a cohortsync process.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     *sync.Mutex
	done   chan error
	ended  time.Time // when it exited; under mu
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (s *stage) start(args ...string) *proc {
	s.t.Helper()
	p := &proc{stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	p.cmd = exec.Command(s.bin, args...)
	p.cmd.Stdout = lockedWriter{p.mu, p.stderr}
	p.cmd.Stderr = lockedWriter{p.mu, p.stderr}
	if err := p.cmd.Start(); err != nil {
		s.t.Fatalf("start %v: %v", args, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.ended = time.Now()
		p.mu.Unlock()
		p.done <- err
	}()
	s.procs = append(s.procs, p)
	s.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.done <- nil // for a later reader
	})
	return p
}

// endedAt is when the process exited (zero while it runs).
func (p *proc) endedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	err := <-p.done
	p.done <- err
}

// wait returns the process's exit error, bounded by d.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(d):
		t.Fatalf("process did not exit within %v:\n%s", d, p.output())
		return nil
	}
}

func (s *stage) kafkaArgs() []string {
	return []string{"--kafka-brokers", s.brokers, "--topic", s.topic, "--log-level", "warn"}
}

// syncArgs runs a sync of csv into the stage's segment.
func (s *stage) syncArgs(csv string) []string {
	return append([]string{"sync", "--env", "chaos", "--segment", s.segment, "--csv", csv, "--state-dir", s.stateDir,
		"--topic-partitions", "4", "--batch-size", "2000"}, s.kafkaArgs()...)
}

// sync runs a sync to completion, failing the test if it fails.
func (s *stage) sync(csv string) {
	s.t.Helper()
	p := s.start(s.syncArgs(csv)...)
	if err := p.wait(s.t, 3*time.Minute); err != nil {
		s.t.Fatalf("sync %s: %v\n%s", csv, err, p.output())
	}
}

// consumer starts a consumer of the stage's group.
func (s *stage) consumer(extra ...string) *proc {
	s.t.Helper()
	args := append([]string{"consume", "--redis-url", "redis://" + s.redis.addr + "/0", "--redis-prefix", s.prefix,
		"--group-id", s.group, "--sync-interval", "200ms", "--batch-size", "2000"}, s.kafkaArgs()...)
	return s.start(append(args, extra...)...)
}

// members reads the segment's member index (nil while Redis is down).
func (s *stage) members() map[string]bool {
	got := map[string]bool{}
	err := segmentstore.Members(s.ctx, s.rdb, s.prefix, bigsegments.Ref(s.segment, 1), func(k string) error {
		got[k] = true
		return nil
	})
	if err != nil {
		return nil
	}
	return got
}

// waitApplying returns once the consumer has applied some but not all of
// want's members, or all of them (a fast apply), bounded in time.
func (s *stage) waitApplying(want int) {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		n, err := s.memberCount()
		if err == nil && n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("the consumer applied nothing of %d members in 2 minutes", want)
}

// memberCount is the length of the segment's member index (a hash, or a
// set in the form before since-tracking).
func (s *stage) memberCount() (int64, error) {
	info, err := segmentstore.Info(s.ctx, s.rdb, s.prefix, bigsegments.Ref(s.segment, 1))
	return info.Members, err
}

// faultOver marks the end of the test's last fault: the time to recover
// runs from here.
func (s *stage) faultOver() { s.faultEnd = time.Now() }

// lastSyncEnd is when the last sync process the stage ran ended (zero if
// none did).
func (s *stage) lastSyncEnd() time.Time {
	var last time.Time
	for _, p := range s.procs {
		if p.cmd.Args[1] == "sync" {
			if e := p.endedAt(); e.After(last) {
				last = e
			}
		}
	}
	return last
}

// checkExact waits (bounded) until Redis is exact for the oracle and
// caught up: the member index holds exactly want, every member's
// LaunchDarkly include set names the segment and no removed key's (gone)
// does, and big_segments_synchronized_on is past the fault's end and the
// last sync's (everything published is applied and the store is marked
// current again). It records the row's numbers: the time from the fault's
// end to that moment, and, if it never comes, what was lost and doubled.
func (s *stage) checkExact(what string, want, gone map[string]bool) {
	s.t.Helper()
	from := s.faultEnd
	if from.IsZero() {
		from = time.Now()
	}
	current := from
	if e := s.lastSyncEnd(); e.After(current) {
		current = e
	}
	var d diff
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if n, err := s.memberCount(); err != nil || n != int64(len(want)) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		at := time.Now()
		if synced, ok, err := segmentstore.SyncTime(s.ctx, s.rdb, s.prefix); err != nil || !ok || synced.Before(current) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if d = s.compare(want, gone); d.exact() {
			s.measured(d, at.Sub(from))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	d = s.compare(want, gone)
	s.measured(d, -1)
	for i, p := range s.procs {
		out := p.output()
		s.t.Logf("process %d %v, last output:\n%s", i, p.cmd.Args[1:2], out[max(0, len(out)-3000):])
	}
	synced, ok, err := segmentstore.SyncTime(s.ctx, s.rdb, s.prefix)
	s.t.Fatalf("%s: not exact and caught up within 3 minutes: the member index holds %d members, want %d; %d lost, %d doubled "+
		"(index: %d missing, %d left over; include sets: %d missing, %d removed keys still included); "+
		"synchronized_on %v (set %v, err %v), want at least %v",
		what, d.observed, len(want), d.lost(), d.doubled(), d.indexMissing, d.indexExtra, d.includeMissing, d.includeExtra,
		synced.Format(time.RFC3339Nano), ok, err, current.Format(time.RFC3339Nano))
}

// measured records a check's numbers in the row; the time to recover is
// the longest of the test's checks.
func (s *stage) measured(d diff, recovered time.Duration) {
	if s.res == nil {
		return
	}
	s.res.Expected, s.res.Observed, s.res.Lost, s.res.Doubled = d.expected, d.observed, d.lost(), d.doubled()
	if recovered < 0 {
		s.res.RecoverMillis = -1 // and the test fails here
		return
	}
	s.res.RecoverMillis = max(s.res.RecoverMillis, recovered.Milliseconds())
}

// diff is what Redis holds against the oracle.
type diff struct {
	expected, observed int
	// keys missing from, or present in the member index against the
	// oracle; and members whose include set lacks the segment, removed
	// keys whose include set still names it
	indexMissing, indexExtra, includeMissing, includeExtra int
	lostKeys, doubledKeys                                  map[string]bool
}

func (d diff) exact() bool {
	return len(d.lostKeys) == 0 && len(d.doubledKeys) == 0 && d.expected == d.observed
}
func (d diff) lost() int    { return len(d.lostKeys) }
func (d diff) doubled() int { return len(d.doubledKeys) }

// compare reads the whole member index and, for every key of want and
// gone, the include set an SDK reads.
func (s *stage) compare(want, gone map[string]bool) diff {
	s.t.Helper()
	d := diff{expected: len(want), lostKeys: map[string]bool{}, doubledKeys: map[string]bool{}}
	got := s.members()
	d.observed = len(got)
	for k := range want {
		if !got[k] {
			d.indexMissing++
			d.lostKeys[k] = true
		}
	}
	for k := range got {
		if !want[k] {
			d.indexExtra++
			d.doubledKeys[k] = true
		}
	}
	ref := bigsegments.Ref(s.segment, 1)
	check := func(keys map[string]bool, member bool) {
		batch := make([]string, 0, 10_000)
		flush := func() {
			cmds := make([]*redis.BoolCmd, len(batch))
			_, err := s.rdb.Pipelined(s.ctx, func(p redis.Pipeliner) error {
				for i, k := range batch {
					cmds[i] = p.SIsMember(s.ctx, bigsegments.IncludeKey(s.prefix, k), ref)
				}
				return nil
			})
			if err != nil {
				s.t.Fatalf("read the include sets: %v", err)
			}
			for i, c := range cmds {
				switch in := c.Val(); {
				case member && !in:
					d.includeMissing++
					d.lostKeys[batch[i]] = true
				case !member && in:
					d.includeExtra++
					d.doubledKeys[batch[i]] = true
				}
			}
			batch = batch[:0]
		}
		for k := range keys {
			if batch = append(batch, k); len(batch) == cap(batch) {
				flush()
			}
		}
		if len(batch) > 0 {
			flush()
		}
	}
	check(want, true)
	check(gone, false)
	return d
}

func equal(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// minus is a without b.
func minus(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		if !b[k] {
			out[k] = true
		}
	}
	return out
}

// jitter is a random duration in [lo, hi).
func jitter(lo, hi time.Duration) time.Duration { return lo + rand.N(hi-lo) }
