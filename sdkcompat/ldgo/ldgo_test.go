package ldgo

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldtime"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
	"github.com/cohortsync/cohortsync/sdkcompat"
)

// TestEvaluateBigSegmentsLayout runs the cases the Node SDK answers in package
// sdkcompat through the Go SDK.
func TestEvaluateBigSegmentsLayout(t *testing.T) {
	t.Parallel()
	backend := testenv.Redis(t)
	redisURL, err := sdkcompat.ClientURL(backend.Client)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range sdkcompat.Cases() {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			ctx := testenv.Context(t, time.Minute)
			prefix := testenv.Name(t)
			if err := tc.Write(ctx, backend.Client, prefix, time.Now()); err != nil {
				t.Fatal(err)
			}
			res, err := Evaluate(ctx, tc.Request(redisURL, prefix))
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(tc.Expect) {
				t.Fatalf("%d results for %d keys", len(res), len(tc.Expect))
			}
			for i, e := range tc.Expect {
				if m := sdkcompat.Mismatch(res[i], e.Key, e.Go); m != "" {
					t.Error(m)
				}
			}
		})
	}
}

func TestEvaluateStoreError(t *testing.T) {
	t.Parallel()
	addr := testenv.DroppingListener(t)
	res, err := Evaluate(testenv.Context(t, time.Minute), sdkcompat.Request{
		RedisURL:    "redis://" + addr + "/0",
		SegmentKey:  sdkcompat.CaseSegment,
		Generation:  1,
		ContextKeys: []string{"alice"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := sdkcompat.Mismatch(res[0], "alice", sdkcompat.Answer{Value: false, Status: sdkcompat.StatusStoreError, ReasonKind: "FALLTHROUGH"}); m != "" {
		t.Error(m)
	}
}

func TestEvaluateRejectsInvalidRequest(t *testing.T) {
	_, err := Evaluate(testenv.Context(t, time.Minute), sdkcompat.Request{RedisURL: "redis://127.0.0.1:1/0", Generation: 1, ContextKeys: []string{"a"}})
	if err == nil || !strings.Contains(err.Error(), "SegmentKey: required") {
		t.Fatalf("Evaluate error = %v, want SegmentKey: required", err)
	}
}

func TestStoreGetMetadata(t *testing.T) {
	backend := testenv.Redis(t)
	ctx := testenv.Context(t, time.Minute)
	cases := []struct {
		name  string
		value *string // nil: key absent
		want  ldtime.UnixMillisecondTime
		err   string
	}{
		{"absent key is zero metadata", nil, 0, ""},
		{"unix milliseconds", ptr("1700000000123"), 1700000000123, ""},
		{"not a number", ptr("yesterday"), 0, `= "yesterday" is not unix milliseconds`},
		{"negative", ptr("-5"), 0, `= "-5" is not unix milliseconds`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := testenv.Name(t)
			if tc.value != nil {
				if err := backend.Client.Set(ctx, bigsegments.SyncTimeKey(prefix), *tc.value, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			md, err := NewStore(ctx, backend.Client, prefix).GetMetadata()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("GetMetadata error = %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil || md.LastUpToDate != tc.want {
				t.Fatalf("GetMetadata = %v, %v; want %v", md.LastUpToDate, err, tc.want)
			}
		})
	}
}

func TestStoreGetMembership(t *testing.T) {
	backend := testenv.Redis(t)
	ctx := testenv.Context(t, time.Minute)
	prefix := testenv.Name(t)
	c := sdkcompat.Case{
		Include: map[string][]string{"alice": {"s.g1", "t.g1"}},
		Exclude: map[string][]string{"alice": {"s.g1", "u.g1"}},
	}
	if err := c.Write(ctx, backend.Client, prefix, time.Now()); err != nil {
		t.Fatal(err)
	}
	store := NewStore(ctx, backend.Client, prefix)
	cases := []struct {
		name string
		key  string
		ref  string
		want string // "true", "false" or "undefined"
	}{
		{"included and excluded is included", "alice", "s.g1", "true"},
		{"included only", "alice", "t.g1", "true"},
		{"excluded only", "alice", "u.g1", "false"},
		{"neither", "alice", "v.g1", "undefined"},
		{"unknown context", "bob", "s.g1", "undefined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := store.GetMembership(bigsegments.HashContextKey(tc.key))
			if err != nil {
				t.Fatal(err)
			}
			if m == nil {
				t.Fatal("nil membership: the SDK would report HEALTHY even when stale")
			}
			got := "undefined"
			if v, ok := m.CheckMembership(tc.ref).Get(); ok {
				got = map[bool]string{true: "true", false: "false"}[v]
			}
			if got != tc.want {
				t.Errorf("CheckMembership(%q) = %s, want %s", tc.ref, got, tc.want)
			}
		})
	}
}

func TestStoreStopsWithItsContext(t *testing.T) {
	backend := testenv.Redis(t)
	ctx, cancel := context.WithCancel(testenv.Context(t, time.Minute))
	store := NewStore(ctx, backend.Client, testenv.Name(t))
	cancel()
	if _, err := store.GetMembership("x"); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("GetMembership after cancel: %v, want context canceled", err)
	}
	if _, err := store.GetMetadata(); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("GetMetadata after cancel: %v, want context canceled", err)
	}
}

func ptr(s string) *string { return &s }

// BenchmarkEvaluate measures one Evaluate call with the Go SDK (client start
// from a file, Redis reads, close) for a few sizes of key list.
func BenchmarkEvaluate(b *testing.B) {
	backend := testenv.Redis(b)
	redisURL, err := sdkcompat.ClientURL(backend.Client)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 1000} {
		b.Run(strconv.Itoa(n)+"keys", func(b *testing.B) {
			ctx := testenv.Context(b, 10*time.Minute)
			prefix := testenv.Name(b)
			c := sdkcompat.Case{Include: map[string][]string{}}
			keys := make([]string, n)
			for i := range keys {
				keys[i] = "user-" + strconv.Itoa(i)
				if i%2 == 0 {
					c.Include[keys[i]] = []string{sdkcompat.CaseRef(1)}
				}
			}
			if err := c.Write(ctx, backend.Client, prefix, time.Now()); err != nil {
				b.Fatal(err)
			}
			req := sdkcompat.Request{RedisURL: redisURL, Prefix: prefix, SegmentKey: sdkcompat.CaseSegment, Generation: 1, ContextKeys: keys}
			for b.Loop() {
				res, err := Evaluate(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if !res[0].Value {
					b.Fatalf("%s: not a member", res[0].Key)
				}
			}
		})
	}
}
