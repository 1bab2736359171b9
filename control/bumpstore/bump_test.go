package bumpstore

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/control/catalog"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

var now = time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)

func mappingAt(gen int) catalog.Mapping {
	return catalog.Mapping{Name: "beta", Segment: "beta-users", Generation: gen, Source: catalog.Source{Kind: catalog.SourceCSV, Location: "a.csv"}}
}

func TestBegin(t *testing.T) {
	fresh := Bump{Mapping: "beta", Segment: "beta-users", From: 2, To: 3, Phase: Building, Started: now}
	for _, tc := range []struct {
		name    string
		last    *Bump
		m       catalog.Mapping
		want    Bump
		wantErr error // nil: no error; errAny: some error
	}{
		{name: "a first bump starts from the mapping's generation", m: mappingAt(2), want: fresh},
		{name: "after a finished bump a new one starts", last: &Bump{From: 1, To: 2, Phase: Finished}, m: mappingAt(2), want: fresh},
		{name: "a bump interrupted while building resumes", last: &Bump{Mapping: "beta", From: 2, To: 3, Phase: Building, Started: now.Add(-time.Hour)}, m: mappingAt(2),
			want: Bump{Mapping: "beta", From: 2, To: 3, Phase: Building, Started: now.Add(-time.Hour)}},
		{name: "a bump interrupted after moving the mapping resumes", last: &Bump{Mapping: "beta", From: 1, To: 2, Phase: Building, Started: now.Add(-time.Hour)}, m: mappingAt(2),
			want: Bump{Mapping: "beta", From: 1, To: 2, Phase: Building, Started: now.Add(-time.Hour)}},
		{name: "a built bump waits for its finish", last: &Bump{From: 1, To: 2, Phase: Built}, m: mappingAt(2), wantErr: ErrInProgress},
		{name: "a bump the mapping left behind is replaced", last: &Bump{From: 5, To: 6, Phase: Built}, m: mappingAt(2), want: fresh},
		{name: "a push mapping has no source to build from", m: catalog.Mapping{Name: "p", Generation: 1, Source: catalog.Source{Kind: catalog.SourcePush}}, wantErr: errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Begin(tc.last, tc.m, now)
			switch {
			case tc.wantErr == errAny && err != nil:
			case tc.wantErr != nil && errors.Is(err, tc.wantErr):
			case tc.wantErr == nil && err == nil && reflect.DeepEqual(got, tc.want):
			default:
				t.Fatalf("Begin = %+v, %v; want %+v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestFinish(t *testing.T) {
	built := &Bump{From: 1, To: 2, Phase: Built}
	for _, tc := range []struct {
		name      string
		b         *Bump
		m         catalog.Mapping
		confirmed bool
		wantErr   error
	}{
		{name: "a built bump confirmed finishes", b: built, m: mappingAt(2), confirmed: true},
		{name: "without the confirmation it is refused", b: built, m: mappingAt(2), wantErr: ErrNotConfirmed},
		{name: "no bump", m: mappingAt(2), confirmed: true, wantErr: errAny},
		{name: "a bump still building", b: &Bump{From: 1, To: 2, Phase: Building}, m: mappingAt(1), confirmed: true, wantErr: errAny},
		{name: "a finished bump", b: &Bump{From: 1, To: 2, Phase: Finished}, m: mappingAt(2), confirmed: true, wantErr: errAny},
		{name: "a mapping set back to the old generation", b: built, m: mappingAt(1), confirmed: true, wantErr: errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Finish(tc.b, tc.m, tc.confirmed)
			switch {
			case tc.wantErr == nil && err == nil:
			case tc.wantErr == errAny && err != nil && !errors.Is(err, ErrNotConfirmed):
			case tc.wantErr != nil && tc.wantErr != errAny && errors.Is(err, tc.wantErr):
			default:
				t.Fatalf("Finish = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestStoreKeepsTheLastBumpAndExpiresFinishedOnes(t *testing.T) {
	for _, rb := range testenv.RedisBackends(t) {
		t.Run(rb.Name, func(t *testing.T) {
			ctx := t.Context()
			prefix := testenv.Name(t) + ":"
			s, err := New(rb.Client, Config{Prefix: prefix, Keep: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { testenv.DropPrefix(t, rb.Client, prefix[:len(prefix)-1]) })
			if b, err := s.Last(ctx, "beta"); b != nil || err != nil {
				t.Fatalf("Last of a mapping never bumped = %+v, %v", b, err)
			}
			b := Bump{Mapping: "beta", Segment: "beta-users", From: 1, To: 2, Phase: Built, Started: now,
				Built: map[string]Build{"production": {Run: "r1", Members: 3, Published: now}}}
			if err := s.Put(ctx, b); err != nil {
				t.Fatal(err)
			}
			got, err := s.Last(ctx, "beta")
			if err != nil || !reflect.DeepEqual(*got, b) {
				t.Fatalf("Last = %+v, %v; want %+v", got, err, b)
			}
			if ttl := rb.Client.TTL(ctx, s.key("beta")).Val(); ttl >= 0 {
				t.Errorf("an active bump has TTL %v, want none", ttl)
			}
			b.Phase, b.Finished = Finished, now
			if err := s.Put(ctx, b); err != nil {
				t.Fatal(err)
			}
			if ttl := rb.Client.TTL(ctx, s.key("beta")).Val(); ttl <= 0 || ttl > time.Hour {
				t.Errorf("a finished bump has TTL %v, want up to 1h", ttl)
			}
		})
	}
}
