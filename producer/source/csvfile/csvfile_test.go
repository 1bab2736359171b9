package csvfile

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/producer/source"
)

func readAll(t *testing.T, s *Source) ([]string, []source.Exclusion, source.Stats, error) {
	t.Helper()
	var keys []string
	var excl []source.Exclusion
	st, err := s.Read(context.Background(),
		func(k string) error { keys = append(keys, k); return nil },
		func(e source.Exclusion) error { excl = append(excl, e); return nil })
	return keys, excl, st, err
}

func TestReadPassesOnKeysExclusionsAndStats(t *testing.T) {
	in := "amplitude_id,uid\n1,alice\n2,\n3,bob,extra\n4,carol\n"
	s := New(strings.NewReader(in), "cohort.csv", Options{IDColumn: "uid"})
	keys, excl, st, err := readAll(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"alice", "carol"}) {
		t.Fatalf("keys %v", keys)
	}
	want := []source.Exclusion{{Row: 2, Line: 3, Value: "", Reason: "empty_id"}, {Row: 3, Line: 4, Value: "bob", Reason: "wrong_column_count", Detail: "3 fields, the header has 2"}}
	if !slices.Equal(excl, want) {
		t.Fatalf("exclusions %+v, want %+v", excl, want)
	}
	if st.Rows != 4 || st.Keys != 2 || !maps.Equal(st.Excluded, map[string]int64{"empty_id": 1, "wrong_column_count": 1}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestDefaultIDColumn(t *testing.T) {
	keys, _, _, err := readAll(t, New(strings.NewReader("user_id,x\na,1\n"), "", Options{}))
	if err != nil || !slices.Equal(keys, []string{"a"}) {
		t.Fatalf("keys %v, err %v; want [a] from the user_id column", keys, err)
	}
}

func TestReadOnce(t *testing.T) {
	s := New(strings.NewReader("user_id\na\n"), "", Options{})
	if _, _, _, err := readAll(t, s); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := readAll(t, s); err == nil || !strings.Contains(err.Error(), "already read") {
		t.Fatalf("second Read = %v, want an error: a reader cannot be read again", err)
	}
}

func TestName(t *testing.T) {
	if n := New(strings.NewReader(""), "", Options{}).Name(); n != "input" {
		t.Fatalf("Name() = %q, want input", n)
	}
	if n := New(strings.NewReader(""), "a.csv", Options{}).Name(); n != "a.csv" {
		t.Fatalf("Name() = %q, want a.csv", n)
	}
}

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cohort.csv")
	if err := os.WriteFile(path, []byte("user_id\nalice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, _, _, err := readAll(t, s)
	if err != nil || !slices.Equal(keys, []string{"alice"}) || s.Name() != path {
		t.Fatalf("keys %v, err %v, name %q", keys, err, s.Name())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenMissingFileNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.csv")
	_, err := Open(path, Options{})
	var pe *fs.PathError
	if !errors.As(err, &pe) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open = %v, want a *fs.PathError naming %s", err, path)
	}
}
