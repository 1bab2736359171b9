package cohortcsv

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/cohortsync/cohortsync/schema"
)

// FuzzRead checks that no input makes Read panic, and that whatever it
// accepts obeys the contract: every key is a valid identifier, every row is
// either a key or an exclusion, and every shown value is bounded and valid.
func FuzzRead(f *testing.F) {
	for _, b := range testdataFiles(f) {
		f.Add(b)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte("user_id\n\"a\nb\",x\n"))
	zw.Close()
	f.Add(z.Bytes())
	f.Add([]byte("user_id\n\"\n"))
	f.Add([]byte{0x1f, 0x8b})

	f.Fuzz(func(t *testing.T, data []byte) {
		var keys, excluded int64
		st, err := Read(context.Background(), bytes.NewReader(data), Options{},
			func(k string) error {
				keys++
				if e := schema.CheckIdentifier(k); e != nil {
					t.Fatalf("key %q passed on: %v", k, e)
				}
				return nil
			},
			func(e Exclusion) error {
				excluded++
				if !utf8.ValidString(e.Value) || len(e.Value) > MaxValueBytes+len("…") {
					t.Fatalf("exclusion value %q invalid or too long", e.Value)
				}
				if e.Row < 1 || e.Line < 1 {
					t.Fatalf("exclusion position row %d line %d", e.Row, e.Line)
				}
				return nil
			})
		if keys != st.Keys || excluded != st.ExcludedTotal() {
			t.Fatalf("callbacks %d keys %d exclusions, stats %+v", keys, excluded, st)
		}
		if err == nil && st.Keys+st.ExcludedTotal() != st.Rows {
			t.Fatalf("rows %d != keys %d + excluded %d", st.Rows, st.Keys, st.ExcludedTotal())
		}
	})
}

// testdataFiles are the fixtures' contents, fuzzing seeds.
func testdataFiles(f *testing.F) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, p := range files {
		if info, err := os.Stat(p); err != nil || info.IsDir() {
			continue // testdata/fuzz holds the fuzzers' own corpus
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
