package bigsegments

import "testing"

// The expected hashes are computed the way the SDKs do; the first is the
// example in the layout documentation.
func TestKeys(t *testing.T) {
	for _, tc := range []struct{ name, got, want string }{
		{"documented hash example", HashContextKey("alice@example.com"), "/42YGfwOEr8NJIkuRZh+JJoo3Og2qFytYOKOqqjG2XY="},
		{"include key", IncludeKey("launchdarkly", "alice@example.com"), "launchdarkly:big_segment_include:/42YGfwOEr8NJIkuRZh+JJoo3Og2qFytYOKOqqjG2XY="},
		{"append include key matches", string(AppendIncludeKey([]byte("x"), "p", "alice@example.com")), "xp:big_segment_include:/42YGfwOEr8NJIkuRZh+JJoo3Og2qFytYOKOqqjG2XY="},
		{"exclude key", ExcludeKey("p", "alice@example.com"), "p:big_segment_exclude:/42YGfwOEr8NJIkuRZh+JJoo3Og2qFytYOKOqqjG2XY="},
		{"sync time key", SyncTimeKey("launchdarkly"), "launchdarkly:big_segments_synchronized_on"},
		{"members key shares a slot with meta", MembersKey("p", "seg.g1"), "p:cohortsync:{seg.g1}:members"},
		{"meta key", MetaKey("p", "seg.g1"), "p:cohortsync:{seg.g1}:meta"},
		{"segments index", SegmentsKey("p"), "p:cohortsync:segments"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		ref     string
		segment string
		gen     int
		ok      bool
	}{
		{"seg.g1", "seg", 1, true},
		{"a.g2.g17", "a.g2", 17, true},
		{"amplitude-7khm89cz.g3", "amplitude-7khm89cz", 3, true},
		{"seg", "", 0, false},
		{".g1", "", 0, false},
		{"seg.g0", "", 0, false},
		{"seg.g01", "", 0, false},
		{"seg.g-1", "", 0, false},
		{"seg.gx", "", 0, false},
	} {
		seg, gen, ok := ParseRef(tc.ref)
		if seg != tc.segment || gen != tc.gen || ok != tc.ok {
			t.Errorf("ParseRef(%q) = %q, %d, %t; want %q, %d, %t", tc.ref, seg, gen, ok, tc.segment, tc.gen, tc.ok)
		}
		if ok && Ref(seg, gen) != tc.ref {
			t.Errorf("Ref(ParseRef(%q)) = %q", tc.ref, Ref(seg, gen))
		}
	}
}

// TestAppendIncludeKeyDoesNotAllocate pins the consumer's per-event cost:
// the []byte conversion of the context key escaped into the hash and cost
// an allocation per event; a long key (more than the prefix and hash) must
// not make the result wrong either.
func TestAppendIncludeKeyDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 512)
	long := string(make([]byte, 300))
	if got, want := string(AppendIncludeKey(buf, "p", long)), IncludeKey("p", long); got != want {
		t.Fatalf("AppendIncludeKey of a 300-byte key = %q, want %q", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { buf = AppendIncludeKey(buf[:0], "launchdarkly", "alice@example.com") }); n != 0 {
		t.Errorf("AppendIncludeKey allocates %.0f times per call, want 0", n)
	}
}
