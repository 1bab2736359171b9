package cohortcsv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

type result struct {
	keys  []string
	excl  []Exclusion
	stats Stats
	err   error
}

func readAll(t testing.TB, r io.Reader, opts Options) result {
	t.Helper()
	var res result
	res.stats, res.err = Read(context.Background(), r, opts,
		func(k string) error { res.keys = append(res.keys, k); return nil },
		func(e Exclusion) error { res.excl = append(res.excl, e); return nil })
	return res
}

func readFixture(t *testing.T, name string, opts Options) result {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readAll(t, f, opts)
}

func TestReadFixtures(t *testing.T) {
	basicKeys := []string{"alice@example.com", "bob", "carol"}
	basicExcl := []Exclusion{{Row: 3, Line: 4, Value: "", Reason: ReasonEmptyID}}
	long1024 := strings.Repeat("k", 1024)
	tests := []struct {
		name     string
		file     string
		opts     Options
		keys     []string
		excl     []Exclusion
		rows     int64
		excluded map[string]int64
	}{
		{name: "plain LF file", file: "basic.csv", keys: basicKeys, excl: basicExcl, rows: 4,
			excluded: map[string]int64{ReasonEmptyID: 1}},
		{name: "BOM and CRLF are invisible", file: "bom_crlf.csv", keys: basicKeys, excl: basicExcl, rows: 4,
			excluded: map[string]int64{ReasonEmptyID: 1}},
		{name: "gzip with BOM inside, detected by magic", file: "basic.csv.gz", keys: basicKeys, excl: basicExcl, rows: 4,
			excluded: map[string]int64{ReasonEmptyID: 1}},
		{name: "gzip named .csv is still gunzipped", file: "gzip_without_gz_name.csv", keys: basicKeys, excl: basicExcl, rows: 4,
			excluded: map[string]int64{ReasonEmptyID: 1}},
		{name: "quoted fields with separators, quotes and newlines", file: "quoted.csv",
			keys: []string{"dave, jr.", "multi\nline id", "erin"},
			excl: []Exclusion{{Row: 4, Line: 7, Value: "", Reason: ReasonEmptyID}},
			rows: 4, excluded: map[string]int64{ReasonEmptyID: 1}},
		{name: "invalid UTF-8 ids are excluded, shown with U+FFFD", file: "bad_utf8.csv",
			keys: []string{"ok", "café"},
			excl: []Exclusion{
				{Row: 2, Line: 3, Value: "bad\uFFFD\uFFFDid", Reason: ReasonInvalidUTF8},
				{Row: 4, Line: 5, Value: "trunc\uFFFD\uFFFD", Reason: ReasonInvalidUTF8},
			},
			rows: 4, excluded: map[string]int64{ReasonInvalidUTF8: 2}},
		{name: "rows with too few or too many fields", file: "wrong_columns.csv",
			keys: []string{"u1", "u4"},
			excl: []Exclusion{
				{Row: 2, Line: 3, Value: "u2", Reason: ReasonWrongColumnCount, Detail: "2 fields, the header has 3"},
				{Row: 3, Line: 4, Value: "u3", Reason: ReasonWrongColumnCount, Detail: "4 fields, the header has 3"},
			},
			rows: 4, excluded: map[string]int64{ReasonWrongColumnCount: 2}},
		{name: "malformed rows are excluded and reading resumes on the next line", file: "malformed.csv",
			keys: []string{"u1", "u4"},
			excl: []Exclusion{
				{Row: 2, Line: 3, Value: "", Reason: ReasonMalformedCSV, Detail: `parse error on line 3, column 4: bare " in non-quoted-field`},
				{Row: 3, Line: 4, Value: "u3", Reason: ReasonMalformedCSV, Detail: `parse error on line 4, column 13: extraneous or missing " in quoted-field`},
			},
			rows: 4, excluded: map[string]int64{ReasonMalformedCSV: 2}},
		{name: "key of MaxKeyBytes is kept, one byte more is excluded", file: "long_key.csv",
			keys: []string{long1024},
			excl: []Exclusion{{Row: 2, Line: 3, Value: strings.Repeat("k", MaxValueBytes) + "…", Reason: ReasonKeyTooLong}},
			rows: 2, excluded: map[string]int64{ReasonKeyTooLong: 1}},
		{name: "header only gives no rows and no error", file: "header_only.csv", rows: 0, excluded: map[string]int64{}},
		{name: "chosen id column", file: "custom_column.csv", opts: Options{IDColumn: "email"},
			keys: []string{"one@example.com", "three@example.com"},
			excl: []Exclusion{{Row: 2, Line: 3, Value: "", Reason: ReasonEmptyID}},
			rows: 3, excluded: map[string]int64{ReasonEmptyID: 1}},
		{name: "blank lines are skipped, not rows", file: "blank_lines.csv", keys: []string{"u1", "u2"},
			rows: 2, excluded: map[string]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := readFixture(t, tt.file, tt.opts)
			if res.err != nil {
				t.Fatalf("Read: %v", res.err)
			}
			if !reflect.DeepEqual(res.keys, tt.keys) {
				t.Errorf("keys = %q, want %q", res.keys, tt.keys)
			}
			if !reflect.DeepEqual(res.excl, tt.excl) {
				t.Errorf("exclusions = %+v, want %+v", res.excl, tt.excl)
			}
			if res.stats.Rows != tt.rows || res.stats.Keys != int64(len(tt.keys)) {
				t.Errorf("stats rows=%d keys=%d, want %d, %d", res.stats.Rows, res.stats.Keys, tt.rows, len(tt.keys))
			}
			if !reflect.DeepEqual(res.stats.Excluded, tt.excluded) {
				t.Errorf("excluded = %v, want %v", res.stats.Excluded, tt.excluded)
			}
			if got := res.stats.Keys + res.stats.ExcludedTotal(); got != res.stats.Rows {
				t.Errorf("keys+excluded = %d, rows = %d", got, res.stats.Rows)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		opts    Options
		check   func(error) bool
		message string // substring of the error text
	}{
		{name: "empty file", file: "empty.csv", check: isErr(ErrEmpty), message: "input is empty: no header row"},
		{name: "BOM only", file: "bom_only.csv", check: isErr(ErrEmpty), message: "input is empty"},
		{name: "missing id column names it and lists the header", file: "missing_column.csv",
			check:   func(err error) bool { var e *MissingColumnError; return errors.As(err, &e) && e.Column == "user_id" },
			message: `id column "user_id" is not in the header; the header has 3 columns: "amplitude_id", "uid", "country"`},
		{name: "missing custom column", file: "basic.csv", opts: Options{IDColumn: "email"},
			check:   func(err error) bool { var e *MissingColumnError; return errors.As(err, &e) },
			message: `id column "email" is not in the header`},
		{name: "id column twice is ambiguous", file: "duplicate_column.csv",
			check:   func(err error) bool { return err != nil },
			message: `id column "user_id" appears more than once in the header (columns 1 and 3)`},
		{name: "unclosed quote swallowing lines is refused", file: "unclosed_quote.csv",
			check: func(err error) bool {
				var e *ResyncError
				return errors.As(err, &e) && e.Row == 2 && e.StartLine == 3 && e.Line == 5
			},
			message: "row 2: the quoted field of the record starting on line 3 is not closed properly by line 5"},
		{name: "truncated gzip", file: "truncated.csv.gz", check: isErr(io.ErrUnexpectedEOF), message: "read input: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := readFixture(t, tt.file, tt.opts)
			if res.err == nil {
				t.Fatal("Read succeeded, want an error")
			}
			if !tt.check(res.err) {
				t.Errorf("error %v (%T) is not the expected kind", res.err, res.err)
			}
			if !strings.Contains(res.err.Error(), tt.message) {
				t.Errorf("error %q does not contain %q", res.err, tt.message)
			}
		})
	}
}

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func TestReadCallbackErrorStops(t *testing.T) {
	stop := errors.New("stop")
	var n int
	_, err := Read(context.Background(), strings.NewReader("user_id\na\nb\nc\n"), Options{},
		func(string) error {
			n++
			if n == 2 {
				return stop
			}
			return nil
		}, nil)
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "row 2") {
		t.Fatalf("err = %v, want stop at row 2", err)
	}
	if n != 2 {
		t.Fatalf("onKey called %d times after the error, want 2", n)
	}
}

func TestReadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Read(ctx, strings.NewReader("user_id\na\n"), Options{}, func(string) error { return nil }, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestReadNilExclusionCallbackStillCounts(t *testing.T) {
	st, err := Read(context.Background(), strings.NewReader("user_id,x\n,1\nu,2\n"), Options{}, func(string) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Excluded[ReasonEmptyID] != 1 || st.Keys != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestDisplayValue(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"short valid is unchanged", "héllo", "héllo"},
		{"invalid bytes replaced", "a\xffb", "a\uFFFDb"},
		{"cut on a rune boundary", strings.Repeat("é", 100), strings.Repeat("é", MaxValueBytes/2) + "…"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := displayValue(tt.in)
			if got != tt.want {
				t.Errorf("displayValue(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !utf8.ValidString(got) || len(got) > MaxValueBytes+len("…") {
				t.Errorf("result %q is invalid or too long", got)
			}
		})
	}
}

func TestReadAllocsPerRow(t *testing.T) {
	const rows = 10000
	for _, tc := range []struct {
		name string
		data []byte
	}{{"no quotes", plainCSV(rows)}, {"every field quoted", quotedCSV(rows)}} {
		t.Run(tc.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(5, func() {
				_, err := Read(context.Background(), bytes.NewReader(tc.data), Options{}, func(string) error { return nil }, nil)
				if err != nil {
					t.Fatal(err)
				}
			})
			// Plain rows are split without encoding/csv, and one string
			// serves a block of up to ctxCheckEvery keys; the rest is per
			// call. encoding/csv allocates one string per record (1.0 a row).
			if perRow := allocs / rows; perRow > 0.01 {
				t.Fatalf("%.4f allocations per row, want at most 0.01", perRow)
			}
		})
	}
}

// BenchmarkRead compares Read with readReference (encoding/csv for every
// record) on 200k rows of a typical export (four columns, user_id the
// second), plain, gzip and with every field quoted, and of a file with the id
// column alone:
//
//	go test -run '^$' -bench Read -benchtime 5x -count 3 ./pkg/cohortcsv/
func BenchmarkRead(b *testing.B) {
	const rows = 200_000
	var oneColumn bytes.Buffer
	oneColumn.WriteString("user_id\n")
	for i := range rows {
		fmt.Fprintf(&oneColumn, "user-%08d@example.com\n", i)
	}
	export := plainCSV(rows)
	shapes := []struct {
		name string
		data []byte
	}{{"export", export}, {"export_gzip", gzipped(b, export)},
		{"export_quoted", quotedCSV(rows)}, {"one_column", oneColumn.Bytes()}}
	for _, shape := range shapes {
		for _, impl := range []struct {
			name string
			read readFunc
		}{{"reference", readReference}, {"fast", Read}} {
			b.Run(shape.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(shape.data)))
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for b.Loop() {
					st, err := impl.read(context.Background(), bytes.NewReader(shape.data), Options{}, func(string) error { return nil }, nil)
					if err != nil || st.Keys != rows {
						b.Fatalf("%d keys, err %v", st.Keys, err)
					}
				}
				runtime.ReadMemStats(&after)
				total := float64(rows) * float64(b.N)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/row")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/row")
			})
		}
	}
}
