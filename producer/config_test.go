package producer

import (
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
)

// TestConfigValidate covers the producer's own settings; the publishing
// ones have their table in package publish, and are only shown included.
func TestConfigValidate(t *testing.T) {
	testenv.RunValidate(t, DefaultConfig, []testenv.ValidateCase[Config]{
		{Name: "defaults are valid", Change: func(*Config) {}, Want: ""},
		{Name: "publishing settings are validated", Change: func(c *Config) { c.Topic = "" }, Want: `--topic="": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..`},
		{Name: "state dir empty", Change: func(c *Config) { c.StateDir = "" }, Want: "--state-dir: required, want a directory path"},
		{Name: "max shrink of 1 would never refuse", Change: func(c *Config) { c.MaxShrink = 1 }, Want: `--max-shrink="1": want a fraction in [0, 1), 0 for off`},
		{Name: "negative max shrink", Change: func(c *Config) { c.MaxShrink = -0.1 }, Want: `--max-shrink="-0.1": want a fraction in [0, 1), 0 for off`},
		{Name: "no exclusion report kept", Change: func(c *Config) { c.ExclusionsKeep = 0 }, Want: `--exclusions-keep="0": want an integer >= 1`},
		{Name: "sort chunk too small", Change: func(c *Config) { c.SortChunkBytes = 1 }, Want: `--sort-chunk-bytes="1": want an integer between 65536 and 2147483648`},
		{Name: "every problem is reported", Change: func(c *Config) { c.Topic = ""; c.StateDir = "" }, Want: "--topic=\"\": want a topic name of 1 to 249 characters from [a-zA-Z0-9._-], not . or ..\n--state-dir: required, want a directory path"},
	})
}

func TestSyncRequestValidate(t *testing.T) {
	valid := func() SyncRequest {
		return SyncRequest{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1, Input: csvfile.New(strings.NewReader(""), "", csvfile.Options{})}
	}
	testenv.RunValidate(t, valid, []testenv.ValidateCase[SyncRequest]{
		{Name: "valid with defaults", Change: func(r *SyncRequest) {}, Want: ""},
		{Name: "env missing", Change: func(r *SyncRequest) { r.Env = "" }, Want: "--env: required, want non-empty UTF-8 of at most 1024 bytes"},
		{Name: "segment with unit separator", Change: func(r *SyncRequest) { r.Segment = "a\x1fb" }, Want: `--segment="a\x1fb": want no unit separator 0x1f (it separates the message key's parts)`},
		{Name: "segment too long", Change: func(r *SyncRequest) { r.Segment = strings.Repeat("s", 1025) }, Want: `--segment="` + strings.Repeat("s", 128) + `...": want non-empty UTF-8 of at most 1024 bytes (longer than 1024 bytes)`},
		{Name: "kind not UTF-8", Change: func(r *SyncRequest) { r.ContextKind = "\xff" }, Want: `--context-kind="\xff": want non-empty UTF-8 of at most 1024 bytes (not valid UTF-8)`},
		{Name: "generation 0 takes the default", Change: func(r *SyncRequest) { r.Generation = 0 }, Want: ""},
		{Name: "negative generation", Change: func(r *SyncRequest) { r.Generation = -2 }, Want: `--generation="-2": want an integer >= 1`},
		{Name: "no input", Change: func(r *SyncRequest) { r.Input = nil }, Want: "--input: required, want a snapshot source"},
		{Name: "no input and no source: only the input is missing", Change: func(r *SyncRequest) { r.Input, r.Source = nil, "" }, Want: "--input: required, want a snapshot source"},
		{Name: "source defaults to the input's kind, which must be an identifier", Change: func(r *SyncRequest) { r.Input = kindSource{r.Input, "\xff"} },
			Want: `--source="\xff": want non-empty UTF-8 of at most 1024 bytes (not valid UTF-8)`},
		{Name: "an explicit source wins over the input's kind", Change: func(r *SyncRequest) { r.Input, r.Source = kindSource{r.Input, "\xff"}, "amplitude" }, Want: ""},
		{Name: "several problems", Change: func(r *SyncRequest) { r.Env = ""; r.Generation = -1 }, Want: "--env: required, want non-empty UTF-8 of at most 1024 bytes\n--generation=\"-1\": want an integer >= 1"},
	})
}

// kindSource is a Source of another kind.
type kindSource struct {
	source.Source
	kind string
}

func (s kindSource) Kind() string { return s.kind }

// withoutInput validates with ValidateWithoutInput.
type withoutInput struct{ SyncRequest }

func (r withoutInput) Validate() error { return r.ValidateWithoutInput() }

func TestSyncRequestValidateWithoutInput(t *testing.T) {
	valid := func() withoutInput {
		return withoutInput{SyncRequest{Env: "production", Segment: "amplitude-7khm89cz", Generation: 1}}
	}
	testenv.RunValidate(t, valid, []testenv.ValidateCase[withoutInput]{
		{Name: "no input and no source are valid", Change: func(*withoutInput) {}, Want: ""},
		{Name: "an explicit source is validated", Change: func(r *withoutInput) { r.Source = "\xff" },
			Want: `--source="\xff": want non-empty UTF-8 of at most 1024 bytes (not valid UTF-8)`},
		{Name: "the other fields are validated", Change: func(r *withoutInput) { r.Env = ""; r.Generation = -1 },
			Want: "--env: required, want non-empty UTF-8 of at most 1024 bytes\n--generation=\"-1\": want an integer >= 1"},
	})
}

func TestNewRunID(t *testing.T) {
	at := time.Date(2026, 11, 25, 20, 15, 0, 0, time.UTC)
	a, b := NewRunID(at), NewRunID(at)
	if a == b {
		t.Fatalf("two run ids are equal: %s", a)
	}
	if !strings.HasPrefix(a, "20261125T201500Z-") || len(a) != len("20261125T201500Z-1a2b3c4d") {
		t.Fatalf("run id %q not of the form 20261125T201500Z-1a2b3c4d", a)
	}
	if later := NewRunID(at.Add(time.Second)); later <= a || later <= b {
		t.Fatalf("run id %q of a later start does not sort after %q", later, a)
	}
}
