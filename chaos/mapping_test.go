package chaos

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConcurrentSyncsTwoStateDirs: two `sync --mapping` of one mapping
// from two different state directories (two hosts) start at once, again
// and again, the mapping's cohort changing between rounds. Their local
// locks are different files: only the segment's lease in the control Redis
// keeps them apart, and only the shared state keeps the one whose
// directory missed the other's runs from diffing against its stale
// snapshot (which used to keep the members that left since, for good:
// the union of the cohorts). Each round one run is refused (the lease, or
// the mapping's run in progress) or they run one after the other; last,
// the directory that missed the last run syncs alone and must read the
// segment back. Redis ends exact for the last cohort.
func TestConcurrentSyncsTwoStateDirs(t *testing.T) {
	sz := suiteSize()
	s := newStage(t)
	rounds := sz.kills + 1
	s.row(fmt.Sprintf("two `sync --mapping` of one mapping from two state directories started at once, %d times, "+
		"then one from the directory that missed the last run; the cohort changing every time (a tenth of the members leaving, a tenth joining, every 4th key dropped every other time)", rounds))
	dir := t.TempDir()
	csv := filepath.Join(dir, "cohort.csv")
	control := s.prefix + "-control:"
	catalog := filepath.Join(dir, "mappings.yaml")
	yaml := fmt.Sprintf(`destinations:
  - name: chaos
    redis: {url: %q}
    prefix: %s
mappings:
  - name: cohort
    source: {csv: %q}
    segment: %s
    destinations: [chaos]
    schedule: daily
`, "redis://"+s.redis.addr+"/0", s.prefix, csv, s.segment)
	if err := os.WriteFile(catalog, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	redisArgs := []string{"--redis-url", "redis://" + s.redis.addr + "/0", "--control-prefix", control}
	if p := s.start(append([]string{"mappings", "apply", "-f", catalog}, redisArgs...)...); p.wait(t, time.Minute) != nil {
		t.Fatalf("mappings apply:\n%s", p.output())
	}
	syncArgs := func(stateDir string) []string {
		args := append([]string{"sync", "--mapping", "cohort", "--state-dir", stateDir, "--topic-partitions", "4", "--batch-size", "2000"},
			s.kafkaArgs()...)
		return append(args, redisArgs...)
	}
	stateDirs := [2]string{t.TempDir(), t.TempDir()}

	// The first run alone: it creates the topics the consumer needs (the
	// later runs of a directory that lacks the snapshot wait for the
	// consumer before reading it back).
	first, want := s.cohort("round0", 0, sz.members, 0)
	if err := os.Rename(first, csv); err != nil {
		t.Fatal(err)
	}
	if p := s.start(syncArgs(stateDirs[0])...); p.wait(t, 3*time.Minute) != nil {
		t.Fatalf("first sync --mapping:\n%s", p.output())
	}
	s.consumer()
	gone := map[string]bool{}
	runs, refused, rebuilt := 0, 0, 0
	// next cohort makes round i's cohort the mapping's source and the
	// oracle.
	next := func(i int) {
		path, keys := s.cohort(fmt.Sprintf("round%d", i), i*sz.members/10, sz.members, 4*(i%2))
		if err := os.Rename(path, csv); err != nil {
			t.Fatal(err)
		}
		maps.Copy(gone, minus(want, keys))
		want = keys
		for k := range want {
			delete(gone, k)
		}
	}
	ran := func(p *proc) {
		runs++
		if strings.Contains(p.output(), "rebuilt ") {
			rebuilt++
		}
	}
	behind := 1 // the directory that did not run last
	for i := 1; i <= rounds; i++ {
		next(i)
		// The directory that is behind starts first, the other a moment
		// later: either may take the lease.
		var p [2]*proc
		p[behind] = s.start(syncArgs(stateDirs[behind])...)
		time.Sleep(jitter(0, 100*time.Millisecond))
		p[1-behind] = s.start(syncArgs(stateDirs[1-behind])...)
		var errs [2]error
		for j := range p {
			errs[j] = p[j].wait(t, 5*time.Minute)
		}
		switch {
		case errs[0] != nil && errs[1] != nil:
			t.Fatalf("round %d: neither sync ran:\n%s\n%s", i, p[0].output(), p[1].output())
		case errs[0] != nil || errs[1] != nil:
			won := 0
			if errs[0] != nil {
				won = 1
			}
			if out := p[1-won].output(); !strings.Contains(out, "lock") && !strings.Contains(out, "in progress") {
				t.Fatalf("round %d: the refused sync does not say another holds the segment:\n%s", i, out)
			}
			refused++
			ran(p[won])
			behind = 1 - won
		default: // one after the other
			ran(p[0])
			ran(p[1])
			behind = 0
			if p[0].endedAt().After(p[1].endedAt()) {
				behind = 1
			}
		}
	}
	// Last, the directory that missed the last run syncs alone: its
	// snapshot is behind, and diffing against it would keep the members
	// that left since. It must read the segment back instead.
	next(rounds + 1)
	p := s.start(syncArgs(stateDirs[behind])...)
	if err := p.wait(t, 5*time.Minute); err != nil {
		t.Fatalf("the last sync, from the directory behind: %v\n%s", err, p.output())
	}
	if !strings.Contains(p.output(), "rebuilt ") {
		t.Fatalf("the last sync, from a directory that missed the last run, did not read the segment back:\n%s", p.output())
	}
	ran(p)
	s.faultOver()
	s.note("%d runs, %d refused while the other held the segment, %d read the snapshot back from Redis (their directory was behind)", runs, refused, rebuilt)
	s.checkExact("after concurrent syncs from two state directories", want, gone)
}
