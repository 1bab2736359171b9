package setting

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

type cfg struct {
	Batch    int
	Bytes    int64
	Shrink   float64
	Timeout  time.Duration
	Compact  bool
	Name     string
	Brokers  []string
	Prefixes map[string]string
}

func newSet(c *cfg) (*pflag.FlagSet, *Set) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	s := NewSet(fs)
	s.Int(&c.Batch, "batch-size", "CONSUMER_BATCH_SIZE", "events per batch", NonZero)
	s.Int64(&c.Bytes, "batch-bytes", "PRODUCER_BATCH_BYTES", "bytes per batch")
	s.Float64(&c.Shrink, "max-shrink", "PRODUCER_MAX_SHRINK", "guard")
	s.Duration(&c.Timeout, "batch-timeout", "PRODUCER_BATCH_TIMEOUT", "wait", NonZero)
	s.Bool(&c.Compact, "topic-compact", "PRODUCER_TOPIC_COMPACT", "compact")
	s.String(&c.Name, "group-id", "CONSUMER_GROUP_ID", "group")
	s.StringList(&c.Brokers, "kafka-brokers", "KAFKA_BROKERS", "brokers")
	s.StringMap(&c.Prefixes, "env-prefix", "", "prefixes")
	return fs, s
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestParseAndEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    cfg
		wantErr string
	}{
		{name: "defaults stay when nothing is given", want: cfg{Batch: 7, Timeout: time.Second, Compact: true}},
		{name: "flags set every type",
			args: []string{"--batch-size", "5", "--batch-bytes=1048576", "--max-shrink", "0.5", "--batch-timeout", "5ms",
				"--topic-compact=false", "--group-id", "g", "--kafka-brokers", " a:1, ,b:2 ", "--env-prefix", "prod=p1,stg=p2"},
			want: cfg{Batch: 5, Bytes: 1 << 20, Shrink: 0.5, Timeout: 5 * time.Millisecond, Compact: false, Name: "g",
				Brokers: []string{"a:1", "b:2"}, Prefixes: map[string]string{"prod": "p1", "stg": "p2"}}},
		{name: "environment fills what the command line left unset",
			args: []string{"--batch-size", "9"},
			env:  map[string]string{"CONSUMER_BATCH_SIZE": "3", "KAFKA_BROKERS": "k:9092", "PRODUCER_TOPIC_COMPACT": "false"},
			want: cfg{Batch: 9, Timeout: time.Second, Brokers: []string{"k:9092"}}},
		{name: "a bad environment value names the variable, the value and the form",
			env:     map[string]string{"PRODUCER_BATCH_TIMEOUT": "5"},
			wantErr: `PRODUCER_BATCH_TIMEOUT="5": want a duration with a unit, such as 500ms, 5s or 2m`},
		{name: "every bad environment value is reported",
			env: map[string]string{"CONSUMER_BATCH_SIZE": "abc", "PRODUCER_MAX_SHRINK": "half"},
			wantErr: `CONSUMER_BATCH_SIZE="abc": want an integer` + "\n" +
				`PRODUCER_MAX_SHRINK="half": want a decimal number such as 0.5`},
		{name: "an explicit zero of a zero-means-default setting is refused",
			args:    []string{"--batch-size", "0"},
			env:     map[string]string{"PRODUCER_BATCH_TIMEOUT": "0s"},
			wantErr: `--batch-size="0": want a value other than zero (leave it unset for the default 7)` + "\n" + `PRODUCER_BATCH_TIMEOUT="0s": want a value other than zero (leave it unset for the default 1s)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg{Batch: 7, Timeout: time.Second, Compact: true}
			fs, s := newSet(&c)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := s.ApplyEnv(lookupIn(tc.env))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c, tc.want; got.Batch != want.Batch || got.Bytes != want.Bytes || got.Shrink != want.Shrink ||
				got.Timeout != want.Timeout || got.Compact != want.Compact || got.Name != want.Name ||
				strings.Join(got.Brokers, "|") != strings.Join(want.Brokers, "|") || len(got.Prefixes) != len(want.Prefixes) {
				t.Fatalf("config = %+v, want %+v", got, want)
			}
			for k, v := range tc.want.Prefixes {
				if c.Prefixes[k] != v {
					t.Fatalf("prefix %s = %q, want %q", k, c.Prefixes[k], v)
				}
			}
		})
	}
}

func TestFlagParseErrorIsTyped(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch-size", "many"}, `--batch-size="many": want an integer`},
		{[]string{"--topic-compact=maybe"}, `--topic-compact="maybe": want true or false`},
		{[]string{"--env-prefix", "prod"}, `--env-prefix="prod": want comma-separated key=value pairs with distinct keys`},
		{[]string{"--env-prefix", "a=1,a=2"}, `--env-prefix="a=1,a=2": want comma-separated key=value pairs with distinct keys`},
	} {
		var c cfg
		fs, _ := newSet(&c)
		err := FlagError(fs.Parse(tc.args))
		var se *Error
		if !errors.As(err, &se) || err.Error() != tc.want {
			t.Errorf("%v: err = %v (%T), want %s", tc.args, err, err, tc.want)
		}
	}
}

func TestExplainNamesWhatTheUserSet(t *testing.T) {
	var c cfg
	fs, s := newSet(&c)
	if err := fs.Parse([]string{"--batch-size", "200000"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyEnv(lookupIn(map[string]string{"CONSUMER_GROUP_ID": " g"})); err != nil {
		t.Fatal(err)
	}
	// What a component's Validate returns: names only, wrapped and joined.
	verr := errors.Join(
		Invalid("batch-size", 200000, "an integer between 1 and %d", 100000),
		errors.Join(Invalid("group-id", " g", "no leading or trailing blanks"), Missing("kafka-brokers", "host:port,...")),
		Missing("env-prefix", "env=prefix pairs"),
		errors.New("an error that is not a setting's"),
	)
	want := `--batch-size="200000": want an integer between 1 and 100000` + "\n" +
		`CONSUMER_GROUP_ID=" g": want no leading or trailing blanks` + "\n" +
		`--kafka-brokers or KAFKA_BROKERS: required, want host:port,...` + "\n" +
		`--env-prefix: required, want env=prefix pairs` + "\n" +
		`an error that is not a setting's`
	got := s.Explain(verr)
	if got.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", got, want)
	}
	if n := len(Errors(got)); n != 4 {
		t.Fatalf("Errors found %d setting errors, want 4", n)
	}
	if !s.Given("group-id") || s.Given("kafka-brokers") {
		t.Fatal("Given disagrees with what was set")
	}
	if s.Explain(nil) != nil {
		t.Fatal("Explain(nil) != nil")
	}
}

func TestHelpShowsEnvTwinAndDefault(t *testing.T) {
	c := cfg{Batch: 20000}
	fs, _ := newSet(&c)
	u := fs.FlagUsages()
	for _, want := range []string{"--batch-size int", "events per batch [env CONSUMER_BATCH_SIZE] (default 20000)", "--kafka-brokers list"} {
		if !strings.Contains(u, want) {
			t.Errorf("usage lacks %q:\n%s", want, u)
		}
	}
}
