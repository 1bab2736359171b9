package demo

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the whole demo on the embedded Redis and checks what it shows:
// both summaries, and flag values that follow the two snapshots.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	t.Chdir("..") // the defaults' paths, the mapping file's included, are the repo root's (make demo)
	cfg := Config{Redis: "embedded"}
	if err := Run(ctx, cfg, &out); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	got := out.String()
	got, mapping, ok := strings.Cut(got, "=== Mappings: ")
	if !ok {
		t.Fatalf("want the mapping part in the output:\n%s", got)
	}
	syncs := strings.Split(got, "=== Sync ")
	if len(syncs) != 3 {
		t.Fatalf("want two syncs in the output:\n%s", got)
	}
	for _, tc := range []struct {
		name    string
		section string
		want    []string
	}{
		{"first sync adds every member", syncs[1], []string{
			`added\s+11\n`, `removed\s+0\n`, `excluded\s+2 \(empty_id 2\)`, `duplicates\s+1\n`,
			`Segment amplitude-demo.g1: 11 members`,
			`user-001@example.com\s+amplitude-demo.g1\s+true\s+HEALTHY`,
			`user-011@example.com\s+-\s+false\s+HEALTHY`,
			`row,line,value,reason`, `4,5,,empty_id`,
		}},
		{"second sync sends only the difference", syncs[2], []string{
			`added\s+2\n`, `removed\s+3\n`, `unchanged\s+8\n`,
			`Segment amplitude-demo.g1: 10 members`,
			`user-001@example.com\s+-\s+false\s+HEALTHY`,
			`user-011@example.com\s+amplitude-demo.g1\s+true\s+HEALTHY`,
			`user-quoted, with comma\s+amplitude-demo.g1\s+true\s+HEALTHY`,
			`nobody@example.com\s+-\s+false\s+HEALTHY`,
			`Consumer: 16 events applied`,
		}},
		{"the mapping file is applied and serve's scheduler runs each mapping once, one pulled from Amplitude", mapping, []string{
			`created destination production\n`, `created amplitude_project demo\n`, `created mapping power-users\n`,
			`scheduled run of power-users from csv \(catch-up, slot [0-9T:-]+Z\): done in `,
			`scheduled run of amplitude-trial-users from amplitude \(catch-up, slot [0-9T:-]+Z\): done in `,
			`Segment amplitude-trial-users.g1: 3 members`,
			`user-001@example.com\s+amplitude-trial-users.g1\s+true\s+HEALTHY`,
			`Segment power-users.g1: 10 members`,
			`user-001@example.com\s+amplitude-trial-users.g1\s+false\s+HEALTHY`,
			`user-011@example.com\s+amplitude-demo.g1,amplitude-trial-users.g1,power-users.g1\s+true\s+HEALTHY`,
		}},
	} {
		for _, w := range tc.want {
			if !regexp.MustCompile(w).MatchString(tc.section) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, tc.section)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown redis mode", Config{Redis: "cloud", Snapshots: []string{"../testdata/cohort-day1.csv"}}, `--redis: "cloud" is not auto, server or embedded`},
		{"missing snapshot", Config{Snapshots: []string{"nope.csv"}}, "--snapshots: stat nope.csv: no such file or directory"},
		{"missing mapping file", Config{Snapshots: []string{"../testdata/cohort-day1.csv"}, Mappings: "nope.yaml"}, "--mappings: stat nope.yaml: no such file or directory"},
		{"no mapping file", Config{Snapshots: []string{"../testdata/cohort-day1.csv"}, Mappings: "none"}, ""},
		{"the mapping file of make demo", Config{Snapshots: []string{"../testdata/cohort-day1.csv"}, Mappings: "testdata/mappings.yaml"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

// brokenOutput accepts limit bytes, then fails every write, counting them.
type brokenOutput struct {
	limit, written, failed int
}

var errBrokenOutput = errors.New("broken pipe")

func (b *brokenOutput) Write(p []byte) (int, error) {
	if b.written+len(p) > b.limit {
		b.failed++
		return 0, errBrokenOutput
	}
	b.written += len(p)
	return len(p), nil
}

// TestDemoReportsItsOutputFailing: a demo whose output is lost must not
// claim success, and stops writing after the first failure.
func TestDemoReportsItsOutputFailing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &brokenOutput{limit: 100} // past the Kafka line, inside the Redis one
	cfg := Config{Snapshots: []string{"../testdata/cohort-day1.csv"}, Redis: "embedded", Mappings: "none"}
	err := Run(ctx, cfg, out)
	if !errors.Is(err, errBrokenOutput) {
		t.Fatalf("Run = %v, want the output's error", err)
	}
	if out.failed != 1 {
		t.Fatalf("%d writes failed, want 1: nothing is written after the first failure", out.failed)
	}
}
