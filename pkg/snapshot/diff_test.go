package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/cohortsync/cohortsync/schema"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name       string
		old, new   []string // old nil with noOld: no committed snapshot
		noOld      bool
		adds, rems []string
		unchanged  int64
	}{
		{name: "first sync adds everything", noOld: true, new: []string{"a", "b"}, adds: []string{"a", "b"}},
		{name: "identical snapshots change nothing", old: []string{"a", "b"}, new: []string{"a", "b"}, unchanged: 2},
		{name: "emptied cohort removes everything", old: []string{"a", "b"}, new: nil, rems: []string{"a", "b"}},
		{name: "both empty", old: nil, new: nil},
		{name: "interleaved adds and removes", old: []string{"a", "c", "e", "g"}, new: []string{"b", "c", "d", "g", "h"},
			adds: []string{"b", "d", "h"}, rems: []string{"a", "e"}, unchanged: 2},
		{name: "prefix keys are distinct", old: []string{"ab"}, new: []string{"a", "ab", "abc"},
			adds: []string{"a", "abc"}, unchanged: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			oldPath := ""
			if !tt.noOld {
				oldPath = filepath.Join(dir, "old.keys")
				writeKeys(t, oldPath, tt.old...)
			}
			newPath := filepath.Join(dir, "new.keys")
			writeKeys(t, newPath, tt.new...)
			var adds, rems []string
			st, err := Diff(context.Background(), oldPath, newPath, func(op schema.Op, k []byte) error {
				if op == schema.OpAdd {
					adds = append(adds, string(k))
				} else {
					rems = append(rems, string(k))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(adds, tt.adds) || !reflect.DeepEqual(rems, tt.rems) {
				t.Fatalf("adds %q removes %q, want %q %q", adds, rems, tt.adds, tt.rems)
			}
			want := DiffStats{Added: int64(len(tt.adds)), Removed: int64(len(tt.rems)), Unchanged: tt.unchanged}
			if st != want {
				t.Fatalf("stats %+v, want %+v", st, want)
			}
		})
	}
}

func TestDiffCorruptOldFails(t *testing.T) {
	dir := t.TempDir()
	oldPath, newPath := filepath.Join(dir, "old.keys"), filepath.Join(dir, "new.keys")
	writeKeys(t, oldPath, "a", "b", "c")
	writeKeys(t, newPath, "a")
	b, _ := os.ReadFile(oldPath)
	if err := os.WriteFile(oldPath, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Diff(context.Background(), oldPath, newPath, func(schema.Op, []byte) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestDiffCallbackError(t *testing.T) {
	dir := t.TempDir()
	newPath := filepath.Join(dir, "new.keys")
	writeKeys(t, newPath, "a", "b")
	stop := errors.New("stop")
	_, err := Diff(context.Background(), "", newPath, func(schema.Op, []byte) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkDiff(b *testing.B) {
	// 1M keys each side, 10% removed and 10% added.
	const n = 1_000_000
	dir := b.TempDir()
	oldPath, newPath := filepath.Join(dir, "old.keys"), filepath.Join(dir, "new.keys")
	ow, err := CreateKeyFile(oldPath)
	if err != nil {
		b.Fatal(err)
	}
	nw, err := CreateKeyFile(newPath)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n + n/10 {
		k := []byte("user-" + strconv.Itoa(10_000_000+i) + "@example.com")
		if i < n {
			if err := ow.Append(k); err != nil {
				b.Fatal(err)
			}
		}
		if i >= n/10 {
			if err := nw.Append(k); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := ow.Close(false); err != nil {
		b.Fatal(err)
	}
	if err := nw.Close(false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var st DiffStats
	for b.Loop() {
		st, err = Diff(context.Background(), oldPath, newPath, func(schema.Op, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	if st.Added != n/10 || st.Removed != n/10 {
		b.Fatalf("stats %+v", st)
	}
	b.ReportMetric(float64(2*n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
