package sdkcompat

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/segmentstore"
)

// CaseSegment is the segment key every Case uses.
const CaseSegment = "amplitude-7khm89cz"

// CaseStaleAfter is the staleAfter every Case is evaluated with.
const CaseStaleAfter = time.Minute

// CaseRef is the Big Segments ref of CaseSegment at generation gen.
func CaseRef(gen int) string { return CaseSegment + ".g" + strconv.Itoa(gen) }

// Answer is what an SDK must return for one context key.
type Answer struct {
	Value      bool
	Status     Status
	ReasonKind string // RULE_MATCH when the segment matched, FALLTHROUGH when not
}

// Answers the cases use.
var (
	InHealthy  = Answer{true, StatusHealthy, "RULE_MATCH"}
	OutHealthy = Answer{false, StatusHealthy, "FALLTHROUGH"}
	InStale    = Answer{true, StatusStale, "RULE_MATCH"}
	OutStale   = Answer{false, StatusStale, "FALLTHROUGH"}
)

// Expect is the answer of each SDK for one context key; the SDKs agree except
// where a case says otherwise.
type Expect struct {
	Key  string
	Node Answer
	Go   Answer
}

func same(key string, a Answer) Expect { return Expect{Key: key, Node: a, Go: a} }

// Case is one check of the Redis layout against an SDK: Redis content written
// exactly as docs/bigsegments-redis.md states, and what the SDK must make of it.
// The cases are shared so that every SDK we test answers the same questions.
type Case struct {
	Name       string
	Include    map[string][]string // context key -> refs in its include set
	Exclude    map[string][]string // context key -> refs in its exclude set
	SyncAge    time.Duration       // age of big_segments_synchronized_on
	NoSync     bool                // big_segments_synchronized_on absent
	Generation int
	Kind       string // context kind; "" for user
	Expect     []Expect
}

// Cases returns the layout checks.
func Cases() []Case {
	return []Case{
		{
			Name:       "member is included and non-member is not, store healthy",
			Include:    map[string][]string{"alice@example.com": {CaseRef(1)}},
			Generation: 1,
			Expect:     []Expect{same("alice@example.com", InHealthy), same("bob@example.com", OutHealthy)},
		},
		{
			Name:       "ref in both include and exclude sets is included",
			Include:    map[string][]string{"alice": {CaseRef(1)}},
			Exclude:    map[string][]string{"alice": {CaseRef(1)}, "bob": {CaseRef(1)}},
			Generation: 1,
			Expect:     []Expect{same("alice", InHealthy), same("bob", OutHealthy)},
		},
		{
			Name:       "ref of another generation does not match",
			Include:    map[string][]string{"old": {CaseRef(1)}, "new": {CaseRef(2)}, "both": {CaseRef(1), CaseRef(2)}},
			Generation: 2,
			Expect:     []Expect{same("old", OutHealthy), same("new", InHealthy), same("both", InHealthy)},
		},
		{
			Name:       "refs of other segments in the same set are ignored",
			Include:    map[string][]string{"alice": {"other-segment.g1", CaseRef(1)}, "bob": {"other-segment.g1"}},
			Generation: 1,
			Expect:     []Expect{same("alice", InHealthy), same("bob", OutHealthy)},
		},
		{
			Name:       "synchronized_on older than staleAfter is STALE and membership still comes from Redis",
			Include:    map[string][]string{"alice": {CaseRef(1)}},
			SyncAge:    10 * time.Minute,
			Generation: 1,
			Expect:     []Expect{same("alice", InStale), same("bob", OutStale)},
		},
		{
			Name:       "synchronized_on missing is STALE and membership still comes from Redis",
			Include:    map[string][]string{"alice": {CaseRef(1)}},
			NoSync:     true,
			Generation: 1,
			Expect:     []Expect{same("alice", InStale), same("bob", OutStale)},
		},
		{
			// The JS SDK treats generation 0 like a missing one; the Go SDK
			// reads ref "<key>.g0". Writers must use generations >= 1.
			Name:       "generation 0 is NOT_CONFIGURED in Node and an ordinary ref in Go",
			Include:    map[string][]string{"alice": {CaseRef(0)}},
			Generation: 0,
			Expect: []Expect{{
				Key:  "alice",
				Node: Answer{false, StatusNotConfigured, "FALLTHROUGH"},
				Go:   InHealthy,
			}},
		},
		{
			Name: "keys with unicode, plus, slash, at and spaces hash as raw UTF-8",
			Include: map[string][]string{
				"üser-ñame-用户-😀":   {CaseRef(3)},
				"a+b/c@d.example":  {CaseRef(3)},
				"with inner space": {CaseRef(3)},
				" padded ":         {CaseRef(3)},
				"caf\u00e9":        {CaseRef(3)}, // NFC
			},
			Generation: 3,
			Expect: []Expect{
				same("üser-ñame-用户-😀", InHealthy),
				same("a+b/c@d.example", InHealthy),
				same("with inner space", InHealthy),
				same(" padded ", InHealthy),
				same("padded", OutHealthy),
				same("caf\u00e9", InHealthy),
				same("cafe\u0301", OutHealthy), // NFD of the same text: SDKs do not normalise
			},
		},
		{
			Name:       "another context kind uses the same hash of the key alone",
			Include:    map[string][]string{"device-42": {CaseRef(1)}},
			Generation: 1,
			Kind:       "device",
			Expect:     []Expect{same("device-42", InHealthy), same("device-43", OutHealthy)},
		},
	}
}

// Write stores the case's Redis content under prefix in one pipeline, with
// big_segments_synchronized_on at now minus SyncAge.
func (c Case) Write(ctx context.Context, client redis.UniversalClient, prefix string, now time.Time) error {
	f := segmentstore.Fixture{Include: c.Include, Exclude: c.Exclude}
	if !c.NoSync {
		f.SyncedOn = now.Add(-c.SyncAge)
	}
	if err := segmentstore.WriteFixture(ctx, client, prefix, f); err != nil {
		return fmt.Errorf("case %q: %w", c.Name, err)
	}
	return nil
}

// Request is the evaluation request of the case against the Redis at redisURL.
func (c Case) Request(redisURL, prefix string) Request {
	keys := make([]string, len(c.Expect))
	for i, e := range c.Expect {
		keys[i] = e.Key
	}
	return Request{
		RedisURL:    redisURL,
		Prefix:      prefix,
		SegmentKey:  CaseSegment,
		Generation:  c.Generation,
		ContextKind: c.Kind,
		ContextKeys: keys,
		StaleAfter:  CaseStaleAfter,
	}
}

// Mismatch describes how got differs from want, or returns "" when it does not.
// It checks the status both where the result carries it and in the reason.
func Mismatch(got Result, key string, want Answer) string {
	if got.Key == key && got.Value == want.Value && got.BigSegmentsStatus == want.Status &&
		got.Reason.Kind == want.ReasonKind && got.Reason.BigSegmentsStatus == want.Status {
		return ""
	}
	return fmt.Sprintf("key %q: got key=%q value=%v status=%q reason=%+v, want value=%v status=%q reason.kind=%q",
		key, got.Key, got.Value, got.BigSegmentsStatus, got.Reason, want.Value, want.Status, want.ReasonKind)
}
