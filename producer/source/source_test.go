package source_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/producer/source/amplitude"
	"github.com/cohortsync/cohortsync/producer/source/amplitude/amplitudetest"
	"github.com/cohortsync/cohortsync/producer/source/csvfile"
	"github.com/cohortsync/cohortsync/schema"
)

// sources are the implementations the conformance test runs against, each
// made to yield the members alice, bob and carol and one excluded record.
var sources = []struct {
	name string
	new  func(t *testing.T) source.Source
}{
	{"csvfile", func(t *testing.T) source.Source {
		return csvfile.New(strings.NewReader("user_id\nalice\nbob\n\ncarol\n\"\"\n"), "members.csv", csvfile.Options{})
	}},
	{"amplitude", func(t *testing.T) source.Source {
		srv := amplitudetest.New(t, amplitudetest.Config{Pending: 1, Gzip: true, Cohorts: []amplitudetest.Cohort{{ID: "c1", Users: []amplitudetest.User{
			{AmplitudeID: 1, UserID: "alice"}, {AmplitudeID: 2, UserID: "bob"}, {AmplitudeID: 3}, {AmplitudeID: 4, UserID: "carol"},
		}}}})
		c, err := amplitude.New(srv.URL, amplitude.Credentials{APIKey: srv.APIKey(), SecretKey: srv.SecretKey()},
			amplitude.Options{PollInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return c.Source("c1", "")
	}},
}

// TestSourceConformance pins the contract of Source that a sync relies on.
func TestSourceConformance(t *testing.T) {
	errStop := errors.New("stop")
	tests := []struct {
		name string
		run  func(t *testing.T, src source.Source)
	}{
		{"yields every member and every exclusion, and counts them", func(t *testing.T, src source.Source) {
			var keys []string
			var excl []source.Exclusion
			st, err := src.Read(context.Background(),
				func(k string) error { keys = append(keys, k); return nil },
				func(e source.Exclusion) error { excl = append(excl, e); return nil })
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"alice", "bob", "carol"}) || len(excl) != 1 || excl[0].Reason == "" || excl[0].Row < 1 {
				t.Fatalf("keys %v, exclusions %+v", keys, excl)
			}
			var excluded int64
			for _, n := range st.Excluded {
				excluded += n
			}
			if st.Keys != 3 || excluded != 1 || st.Rows < st.Keys+excluded {
				t.Fatalf("stats %+v, want 3 keys and 1 exclusion among the rows", st)
			}
		}},
		{"an error from emit stops reading and is returned wrapped", func(t *testing.T, src source.Source) {
			calls := 0
			_, err := src.Read(context.Background(), func(string) error { calls++; return errStop }, nil)
			if !errors.Is(err, errStop) || calls != 1 {
				t.Fatalf("Read = %v after %d calls, want errStop after 1", err, calls)
			}
		}},
		{"an error from exclude stops reading and is returned wrapped", func(t *testing.T, src source.Source) {
			_, err := src.Read(context.Background(), func(string) error { return nil }, func(source.Exclusion) error { return errStop })
			if !errors.Is(err, errStop) {
				t.Fatalf("Read = %v, want errStop", err)
			}
		}},
		{"a cancelled context yields nothing", func(t *testing.T, src source.Source) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := src.Read(ctx, func(k string) error { t.Errorf("emitted %q", k); return nil }, nil)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Read = %v, want context.Canceled", err)
			}
		}},
		{"it has a name for messages", func(t *testing.T, src source.Source) {
			if src.Name() == "" {
				t.Fatal("empty Name")
			}
		}},
		{"its kind is an event source label", func(t *testing.T, src source.Source) {
			if err := schema.CheckIdentifier(src.Kind()); err != nil {
				t.Fatalf("Kind %q: %v", src.Kind(), err)
			}
		}},
	}
	for _, impl := range sources {
		for _, tt := range tests {
			t.Run(impl.name+"/"+tt.name, func(t *testing.T) { tt.run(t, impl.new(t)) })
		}
	}
}
