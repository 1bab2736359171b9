package ldstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/launchdarkly/go-sdk-common/v3/ldtime"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

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
	f := segmentstore.Fixture{
		Include: map[string][]string{"alice": {"s.g1", "t.g1"}},
		Exclude: map[string][]string{"alice": {"s.g1", "u.g1"}},
	}
	if err := segmentstore.WriteFixture(ctx, backend.Client, prefix, f); err != nil {
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
