package segmentlease

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		bad  []string // names of the invalid settings, none if valid
	}{
		{"zero value takes the defaults", Config{}, nil},
		{"explicit settings", Config{Prefix: "acme:ctl:", TTL: time.Minute, Timeout: time.Second}, nil},
		{"the shortest TTL", Config{TTL: MinTTL}, nil},
		{"prefix with an opening brace would move the hash tag", Config{Prefix: "a{b:"}, []string{"control-prefix"}},
		{"prefix with a closing brace", Config{Prefix: "a}b:"}, []string{"control-prefix"}},
		{"TTL too short to renew", Config{TTL: time.Millisecond}, []string{"lease-ttl"}},
		{"negative TTL", Config{TTL: -time.Second}, []string{"lease-ttl"}},
		{"negative timeout", Config{Timeout: -time.Second}, []string{"control-timeout"}},
		{"every error is reported", Config{Prefix: "{", TTL: time.Millisecond, Timeout: -1}, []string{"control-prefix", "lease-ttl", "control-timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var se *setting.Error
					if !errors.As(e, &se) {
						t.Fatalf("error %v is not a *setting.Error", e)
					}
					got = append(got, se.Name)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.bad, ",") {
				t.Fatalf("Validate() = %v, want errors for %v", err, tt.bad)
			}
		})
	}
}

// TestKeysShareOneSlotAndNeverCollide: every key of a segment has the same
// hash tag, and identifiers holding the separators or braces map to
// different tags.
func TestKeysShareOneSlotAndNeverCollide(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	tag := func(k string) string { return k[strings.IndexByte(k, '{') : strings.IndexByte(k, '}')+1] }
	ids := []snapshot.SegmentID{
		{Env: "a/b", Segment: "c", Generation: 1, ContextKind: "user"},
		{Env: "a", Segment: "b/c", Generation: 1, ContextKind: "user"},
		{Env: "a}", Segment: "{c", Generation: 1, ContextKind: "user"},
		{Env: "a", Segment: "c", Generation: 1, ContextKind: "user"},
		{Env: "a", Segment: "c", Generation: 2, ContextKind: "user"},
	}
	seen := map[string]snapshot.SegmentID{}
	for _, id := range ids {
		lease, fence, seq := cfg.key(id, "lease"), cfg.key(id, "fence"), cfg.key(id, "seq")
		if !strings.HasPrefix(lease, DefaultPrefix+"{") || tag(lease) != tag(fence) || tag(lease) != tag(seq) {
			t.Fatalf("keys of %v do not share one hash tag: %s %s %s", id, lease, fence, seq)
		}
		if other, ok := seen[tag(lease)]; ok {
			t.Fatalf("%v and %v share the tag %s", id, other, tag(lease))
		}
		seen[tag(lease)] = id
	}
}
