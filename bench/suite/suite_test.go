package suite

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/bench"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{Brokers: []string{"127.0.0.1:9092"}, RedisURL: "redis://127.0.0.1:6379/0", Cohortsync: "/bin/cohortsync"}.WithDefaults()
	}
	testenv.RunValidate(t, valid, []testenv.ValidateCase[Config]{
		{Name: "valid", Change: func(*Config) {}, Want: ""},
		{Name: "no brokers", Change: func(c *Config) { c.Brokers = nil }, Want: "--kafka-brokers: required, want real Kafka brokers, host:port"},
		{Name: "no redis", Change: func(c *Config) { c.RedisURL = "" },
			Want: "--redis-url: required, want a standalone redis-server (the redis-cli --pipe reference speaks to one server)"},
		{Name: "no binary", Change: func(c *Config) { c.Cohortsync = "" },
			Want: "--cohortsync-bin: required, want the cohortsync binary (the producer runs as its own process, so that its peak RSS is its own)"},
		{Name: "few members", Change: func(c *Config) { c.Members = 999 }, Want: `--members="999": want at least 1000`},
		{Name: "few large", Change: func(c *Config) { c.Large = 10 }, Want: `--large="10": want at least 1000`},
		{Name: "no lookups", Change: func(c *Config) { c.Lookups = -1 }, Want: `--lookups="-1": want a positive number of lookups`},
		{Name: "negative batch", Change: func(c *Config) { c.ConsumerBatch = -1 }, Want: `--consumer-batch="-1": want 0 (the consumer's default) or more`},
		{Name: "too many pipelines", Change: func(c *Config) { c.ConsumerPipelines = 17 }, Want: `--consumer-pipelines="17": want 0 (the consumer's default) to 16`},
		{Name: "too many appliers", Change: func(c *Config) { c.ConsumerAppliers = 17 }, Want: `--consumer-appliers="17": want 0 (the consumer's default) to 16`},
		{Name: "unknown target", Change: func(c *Config) { c.Targets = []string{"1", "6"} }, Want: `--targets="6": want targets 1 to 5, comma-separated`},
		{Name: "no timeout", Change: func(c *Config) { c.PhaseTimeout = -time.Second }, Want: `--phase-timeout="-1s": want a positive duration`},
		{Name: "two at once", Change: func(c *Config) { c.Brokers, c.Lookups = nil, -1 },
			Want: "--kafka-brokers: required, want real Kafka brokers, host:port\n--lookups=\"-1\": want a positive number of lookups"},
	})
}

func TestScaled(t *testing.T) {
	if b := scaled(8, targetMembers, targetMembers); b.Limit != 8 || b.Note != "" || !b.Max {
		t.Errorf("at the target size: %+v, want ≤ 8 without a note", b)
	}
	if b := scaled(40, targetLarge, 1_000_000); b.Limit != 4 || b.Note != "40 s at 10,000,000, scaled" {
		t.Errorf("at a tenth: %+v, want ≤ 4 noted as scaled", b)
	}
}

func TestPercentile(t *testing.T) {
	ds := make([]time.Duration, 0, 200)
	for i := 200; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	if got := p99(ds); got != 198 {
		t.Errorf("p99 of 1..200 = %d, want 198", got)
	}
	if got := p50(ds); got != 100 {
		t.Errorf("p50 of 1..200 = %d, want 100", got)
	}
	if got := p99(nil); got != 0 {
		t.Errorf("p99 of none = %d, want 0", got)
	}
}

// TestRunTiny runs make bench at its smallest sizes, so that the command
// behind BENCHMARKS.md cannot rot between measurements: every row is
// measured, on the fast backends too, except Redis memory, which only a
// real redis-server reports (and the test checks it says so).
func TestRunTiny(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli, the reference of make bench, is needed: %v", err)
	}
	brokers, _ := testenv.Kafka(t)
	rb := testenv.Redis(t)
	bin := filepath.Join(t.TempDir(), "cohortsync")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/cohortsync").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	cfg := Config{Brokers: brokers, RedisURL: rb.URL, Cohortsync: bin, Members: MinMembers, Large: MinMembers, Lookups: 200,
		PhaseTimeout: time.Minute, Dir: t.TempDir()}
	rows, err := Run(testenv.Context(t, 2*time.Minute), cfg, &progress)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var targets []string
	for _, r := range rows {
		targets = append(targets, r.Target)
		if r.Target == "3" && rb.Miniredis != nil {
			if r.Err == nil || !strings.Contains(r.Err.Error(), "a real redis-server is needed") {
				t.Errorf("memory on miniredis: %v, want an error saying a real redis-server is needed", r.Err)
			}
			continue
		}
		if strings.HasPrefix(r.Target, "1") && rb.Miniredis != nil {
			// redis-cli --pipe needs a real server (miniredis does not
			// answer its closing ECHO): the drain is measured, the ratio not.
			if r.Err == nil || !strings.Contains(r.Err.Error(), "events/s") || !strings.Contains(r.Err.Error(), "redis-cli --pipe") {
				t.Errorf("%s on miniredis: %v, want the drain's rate and the reference's error", r.Target, r.Err)
			}
			continue
		}
		if r.Err != nil {
			t.Errorf("%s %s: not measured: %v", r.Target, r.Measure, r.Err)
		} else if r.Figure <= 0 {
			t.Errorf("%s %s: figure %v, want > 0", r.Target, r.Measure, r.Figure)
		}
	}
	if got := strings.Join(targets, " "); got != "1a 1b 2a 2b 2c 2d 3 4 5" {
		t.Errorf("rows %s, want issue 12's targets in order", got)
	}
	var table bytes.Buffer
	if err := bench.WriteTable(&table, Caption(cfg), rows); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.Logf("progress:\n%s\ntable:\n%s", progress.String(), table.String())
	}
}

// TestVMHWM: the peak RSS of a sync is read from /proc/PID/status's VmHWM
// line (ru_maxrss would carry the bench process's own, see run.sync).
func TestVMHWM(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, status string
		kb           int64
		ok           bool
	}{
		{"kernel layout", "Name:\tcohortsync\nVmPeak:\t  812344 kB\nVmHWM:\t  171624 kB\nVmRSS:\t  150000 kB\n", 171624, true},
		{"no VmHWM line (a kernel thread)", "Name:\tkthreadd\nState:\tS (sleeping)\n", 0, false},
		{"garbled value", "VmHWM:\t  many kB\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tc.status), 0o600); err != nil {
				t.Fatal(err)
			}
			kb, ok := vmHWM(path)
			if kb != tc.kb || ok != tc.ok {
				t.Errorf("vmHWM = %d, %v; want %d, %v", kb, ok, tc.kb, tc.ok)
			}
		})
	}
	if kb, ok := vmHWM("/proc/self/status"); !ok || kb <= 0 {
		t.Errorf("this process's VmHWM = %d, %v; want a positive size", kb, ok)
	}
	if _, ok := vmHWM(filepath.Join(dir, "gone")); ok {
		t.Error("a process that is gone has a VmHWM")
	}
}
