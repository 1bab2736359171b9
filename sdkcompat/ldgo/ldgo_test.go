package ldgo

import (
	"strconv"
	"strings"
	"testing"
	"time"

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
