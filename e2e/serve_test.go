package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer"
	"github.com/cohortsync/cohortsync/producer/publish"
)

// buildCLI builds the cohortsync binary once for the test.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cohortsync")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/cohortsync")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// replica is one cohortsync serve process.
type replica struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

// syncBuffer is the stderr of a replica, read while it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logRecords are the JSON log records of a replica with msg.
func (r *replica) logRecords(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(r.stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// TestServeReplicas is issue 7's acceptance test of serve with replicas:
// three cohortsync serve processes (and a fourth running the consumer)
// share one Redis and one Kafka. Each
// scheduled run happens once; the replica running the slow mapping is
// killed with SIGKILL mid-run, and another replica takes the run over once
// its claim and lease expire; a destination added to the catalog while
// they run is written without a restart.
func TestServeReplicas(t *testing.T) {
	bin := buildCLI(t)
	brokers, _ := testenv.Kafka(t)
	redisURL := redisForProcesses(t)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts) // the server of redisURL, the replicas' one
	t.Cleanup(func() { _ = rdb.Close() })
	name := testenv.Name(t)
	ctx := testenv.Context(t, 3*time.Minute)
	dir := t.TempDir()

	// The slow mapping's cohort: the first request stalls until the test
	// has killed the replica making it, later ones get the whole file.
	started := make(chan struct{})
	release := make(chan struct{})
	var requests sync.Mutex
	first := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Lock()
		stall := first
		first = false
		requests.Unlock()
		if stall {
			_, _ = io.WriteString(w, "user_id\nslow-1\n")
			w.(http.Flusher).Flush()
			close(started)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return // cut short: the replica is dead by now anyway
		}
		_, _ = io.WriteString(w, "user_id\nslow-1\nslow-2\nslow-3\n")
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	fast := filepath.Join(dir, "fast.csv")
	if err := os.WriteFile(fast, []byte("user_id\nfast-1\nfast-2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prod, staging := name+"-prod", name+"-staging"
	for _, p := range []string{prod, staging, name} { // name: the control keys
		testenv.DropPrefix(t, rdb, p)
	}
	catalogFile := func(withStaging bool) string {
		s := fmt.Sprintf(`destinations:
  - name: production
    redis: {url: %q}
    prefix: %s
`, redisURL, prod)
		if withStaging {
			s += fmt.Sprintf(`  - name: staging
    redis: {url: %q}
    prefix: %s
`, redisURL, staging)
		}
		s += fmt.Sprintf(`mappings:
  - name: slow
    source: {csv: %q}
    segment: slow
    destinations: [production]
    schedule: one-time
  - name: fast
    source: {csv: %q}
    segment: fast
    destinations: [production]
    schedule: one-time
  - name: broken
    source: {csv: %q}
    segment: broken
    destinations: [production]
    schedule: one-time
`, srv.URL+"/slow.csv", fast, filepath.Join(dir, "missing.csv"))
		if withStaging {
			s += fmt.Sprintf(`  - name: staged
    source: {csv: %q}
    segment: staged
    destinations: [staging]
    schedule: one-time
`, fast)
		}
		path := filepath.Join(dir, fmt.Sprintf("mappings-%t.yaml", withStaging))
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	env := []string{"KAFKA_BROKERS=" + strings.Join(brokers, ","), "TOPIC=" + name, "REDIS_URL=" + redisURL,
		"CONTROL_PREFIX=" + name + ":", "LOG_FORMAT=json", "PATH=" + os.Getenv("PATH")}
	apply := func(path string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, "mappings", "apply", "-f", path)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mappings apply: %v\n%s", err, out)
		}
	}
	apply(catalogFile(false))

	// Three scheduler replicas, and the consumer in a fourth process that
	// is never killed: a consumer group member killed with SIGKILL holds
	// its partitions for the group's session timeout (30s), which the
	// consumer's own tests cover; here it would only slow the test down.
	pcfg := producer.DefaultConfig()
	pcfg.Topic, pcfg.TopicPartitions = name, 3
	kf, err := kafkax.New(kafkax.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	if err := publish.EnsureTopics(ctx, pcfg.Config, kf); err != nil {
		t.Fatal(err)
	}
	var replicas []*replica
	for i := range 4 {
		parts := "scheduler"
		if i == 3 {
			parts = "consumer"
		}
		cmd := exec.Command(bin, "serve", "--parts", parts, "--group-id", name, "--topic-partitions", "3",
			"--schedule-tick", "100ms", "--schedule-max-jitter", "0", "--schedule-claim-ttl", "2s", "--lease-ttl", "2s",
			"--sync-interval", "200ms", "--catalog-poll", "200ms", "--rebuild-wait", "30s")
		cmd.Env = append(slices.Clone(env), "PRODUCER_STATE_DIR="+filepath.Join(dir, "state-"+strconv.Itoa(i)))
		r := &replica{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
		cmd.Stderr = r.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { r.done <- cmd.Wait() }()
		replicas = append(replicas, r)
	}
	t.Cleanup(func() {
		for _, r := range replicas {
			_ = r.cmd.Process.Kill()
		}
	})
	logs := func() string {
		var b strings.Builder
		for i, r := range replicas {
			fmt.Fprintf(&b, "--- replica %d (pid %d)\n%s", i, r.cmd.Process.Pid, r.stderr.String())
		}
		return b.String()
	}

	// Kill the replica that claimed the slow mapping, mid-run.
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatalf("no replica started the slow mapping\n%s", logs())
	}
	claim, err := rdb.Get(ctx, name+":{mapping:slow}:claim").Result()
	if err != nil {
		t.Fatalf("claim of the slow mapping: %v", err)
	}
	victim := -1
	for i, r := range replicas {
		owner, _, _ := strings.Cut(claim, " ")
		if strings.HasSuffix(owner, ":"+strconv.Itoa(r.cmd.Process.Pid)) {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("claim %q names none of the replicas", claim)
	}
	if err := replicas[victim].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-replicas[victim].done
	close(release)

	wantMembers := func(prefix, segment string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := members(ctx, t, rdb, prefix, segment)
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s of %s holds %q after 60s, want %q\n%s", segment, prefix, got, want, logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wantMembers(prod, "slow", "slow-1", "slow-2", "slow-3")
	wantMembers(prod, "fast", "fast-1", "fast-2")

	// Each one-time run happened once: one successful run log per mapping
	// across the replicas, and the slow one by a survivor.
	// The killed replica may have claimed the fast mapping too and died
	// after publishing it but before logging its end: a survivor then runs
	// it again once the claim expires (a CI flake before this wait).
	var runs map[string][]int
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		runs = map[string][]int{}
		for i, r := range replicas {
			for _, rec := range r.logRecords("mapping run") {
				if rec["outcome"] == "succeeded" {
					m, _ := rec["mapping"].(string)
					runs[m] = append(runs[m], i)
				}
			}
		}
		if len(runs["fast"]) == 1 || time.Now().After(deadline) {
			break
		}
	}
	if len(runs["fast"]) != 1 || len(runs["slow"]) != 1 || runs["slow"][0] == victim || len(runs["broken"]) != 0 {
		t.Fatalf("successful runs by replica %v, want fast and slow once each, slow not by the killed replica %d\n%s", runs, victim, logs())
	}
	// The mapping whose source fails is reported, with the cause, and
	// kept the others from nothing. (The killed replica may have claimed
	// it too and died before reporting: a survivor then retries it once
	// the claim expires, hence the wait.)
	reported := func() bool {
		for _, r := range replicas {
			for _, rec := range r.logRecords("schedule: run ended") {
				msg, _ := rec["err"].(string)
				if rec["mapping"] == "broken" && strings.Contains(msg, "missing.csv: no such file or directory") {
					return true
				}
			}
		}
		return false
	}
	for deadline := time.Now().Add(60 * time.Second); !reported(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no replica reported the broken mapping's missing file within 60s\n%s", logs())
		}
	}

	// A destination added while the replicas run is followed without a
	// restart: its mapping runs and the consumer writes its prefix.
	apply(catalogFile(true))
	wantMembers(staging, "staged", "fast-1", "fast-2")

	for i, r := range replicas {
		if i == victim {
			continue
		}
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("replica %d exited with %v after SIGTERM\n%s", i, err, logs())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("replica %d did not stop within 30s of SIGTERM", i)
		}
	}
}

// redisForProcesses is the Redis the replicas share: the real one of an
// integration run, else a miniredis whose clock follows the wall clock.
// miniredis expires keys only when its clock is moved, and this test is
// about leases and claims expiring when their holder is killed.
func redisForProcesses(t *testing.T) string {
	t.Helper()
	if testenv.Integration() {
		return testenv.RedisURL(t)
	}
	m := miniredis.RunT(t)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		last := time.Now()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return "redis://" + m.Addr() + "/0"
}

// members is what the member index of segment (generation 1) holds under
// prefix, sorted.
func members(ctx context.Context, t *testing.T, c redis.UniversalClient, prefix, segment string) []string {
	t.Helper()
	var got []string
	if err := segmentstore.Members(ctx, c, prefix, bigsegments.Ref(segment, 1), func(k string) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return slices.Compact(got)
}
