package schema

import (
	"errors"
	"strings"
	"testing"
)

// TestEncoderMatchesEvent: an Encoder's key and value are Event.AppendKey's
// and Event.AppendValue's for every key, op and seq, whatever the shared
// fields hold (escapes, fields too long for the Encoder's first array),
// and appending leaves what dst held.
func TestEncoderMatchesEvent(t *testing.T) {
	long := sample()
	long.Segment, long.Run, long.Source = strings.Repeat("s", 600), strings.Repeat("r", 300), strings.Repeat("c", 300)
	escaped := sample()
	escaped.Env, escaped.Run, escaped.Source, escaped.ContextKind = `pr"od`, "run<1>\u2028", "tab\tsrc", "ü&ser"
	for _, tc := range []struct {
		name     string
		template Event
	}{
		{"a plain template", sample()},
		{"a template of long fields", long},
		{"a template of escaped fields", escaped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := NewEncoder(&tc.template)
			for _, k := range testKeys {
				for _, ev := range []struct {
					op  Op
					seq uint64
				}{{OpAdd, 1}, {OpRemove, 1<<64 - 1}, {Op(7), 0}} {
					want := tc.template
					want.ContextKey, want.Op, want.Seq = k, ev.op, ev.seq
					dst := []byte("before")
					if got := enc.AppendKey(dst, []byte(k)); string(got) != "before"+string(want.AppendKey(nil)) {
						t.Fatalf("key %q: %q, want %q", k, got, want.AppendKey(nil))
					}
					if got := enc.AppendValue(dst, []byte(k), ev.op, ev.seq); string(got) != "before"+string(want.AppendValue(nil)) {
						t.Fatalf("key %q, op %v, seq %d:\n got %s\nwant %s", k, ev.op, ev.seq, got, want.AppendValue(nil))
					}
				}
			}
		})
	}
}

// TestCheckIdentifierOfBytes: the bytes of an identifier are judged as the
// string.
func TestCheckIdentifierOfBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		want error
	}{
		{"a valid key", "alice@example.com", nil},
		{"a key of MaxKeyBytes", strings.Repeat("k", MaxKeyBytes), nil},
		{"an empty key", "", ErrEmpty},
		{"a key over MaxKeyBytes", strings.Repeat("k", MaxKeyBytes+1), ErrTooLong},
		{"a key of invalid UTF-8", "a\xffb", ErrInvalidUTF8},
		{"a key of a cut rune", "\u2028"[:2], ErrInvalidUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckIdentifier(tc.s); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("string: %v, want %v", err, tc.want)
			}
			if err := CheckIdentifier([]byte(tc.s)); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("bytes: %v, want %v", err, tc.want)
			}
		})
	}
}

func BenchmarkEncoderAppendValue(b *testing.B) {
	ev := sample()
	enc := NewEncoder(&ev)
	key := []byte(ev.ContextKey)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.AppendValue(buf[:0], key, ev.Op, ev.Seq)
	}
}
