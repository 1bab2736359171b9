package cohortcsv

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cohortsync/cohortsync/schema"
)

// DefaultIDColumn is the column Amplitude exports the user ID in.
const DefaultIDColumn = "user_id"

// Reasons a row is excluded. They are stable: they appear in exclusion
// reports, summaries and metrics.
const (
	ReasonEmptyID          = "empty_id"           // the id column is empty
	ReasonInvalidUTF8      = "invalid_utf8"       // the id is not valid UTF-8
	ReasonKeyTooLong       = "key_too_long"       // the id is longer than schema.MaxKeyBytes
	ReasonWrongColumnCount = "wrong_column_count" // the row has more or fewer fields than the header
	ReasonMalformedCSV     = "malformed_csv"      // the row breaks the CSV grammar on its own line
)

// Reasons lists every exclusion reason, in a fixed order for reports.
var Reasons = []string{ReasonEmptyID, ReasonInvalidUTF8, ReasonKeyTooLong, ReasonWrongColumnCount, ReasonMalformedCSV}

// MaxValueBytes bounds Exclusion.Value (plus a trailing "…" when cut), so a
// report of a hostile file stays small.
const MaxValueBytes = 128

// Options configure Read.
type Options struct {
	// IDColumn is the header name of the column holding the context key.
	// Default DefaultIDColumn ("user_id"). Matched after trimming blanks
	// around the header cell.
	IDColumn string
}

// Exclusion is one row that did not become a key.
type Exclusion struct {
	// Row is the 1-based number of the data record: the header is not
	// counted, the first record after it is row 1.
	Row int64
	// Line is the physical line of the input where the record starts (the
	// header is line 1 when it is the first line). Row and Line differ once a
	// quoted field spans lines or blank lines were skipped.
	Line int64
	// Value is the row's id column, made valid UTF-8 (bad bytes become
	// U+FFFD) and cut to MaxValueBytes, for display only. Empty when the row
	// has no id column.
	Value string
	// Reason is one of the Reason constants.
	Reason string
	// Detail says more for malformed_csv (the parser's message), else "".
	Detail string
}

// Stats counts what Read saw.
type Stats struct {
	Rows     int64            // data records after the header, excluded ones included
	Keys     int64            // keys passed to the key callback
	Excluded map[string]int64 // by reason; only reasons that occurred
}

// ExcludedTotal is the number of excluded rows.
func (s Stats) ExcludedTotal() int64 {
	var n int64
	for _, c := range s.Excluded {
		n += c
	}
	return n
}

// ErrEmpty is returned for input without a header row.
var ErrEmpty = errors.New("input is empty: no header row")

// MissingColumnError is returned when the id column is not in the header.
type MissingColumnError struct {
	Column string
	Header []string // the header's columns, display-safe
}

func (e *MissingColumnError) Error() string {
	quoted := make([]string, 0, len(e.Header))
	for _, h := range e.Header {
		quoted = append(quoted, strconv.Quote(h))
	}
	return fmt.Sprintf("id column %q is not in the header; the header has %d columns: %s",
		e.Column, len(e.Header), strings.Join(quoted, ", "))
}

// ResyncError is returned when a quoted field runs over several lines and then
// turns out malformed: encoding/csv has read the following lines as part of
// that field, so the rows on them are lost and reading on would treat their
// members as removed.
type ResyncError struct {
	Row       int64 // data record number (as Exclusion.Row)
	StartLine int64 // line where the record starts
	Line      int64 // line where the parser gave up
	Err       error // the *csv.ParseError
}

func (e *ResyncError) Error() string {
	return fmt.Sprintf("row %d: the quoted field of the record starting on line %d is not closed properly by line %d; "+
		"the lines in between cannot be told apart from field content, so the file is refused rather than read with rows missing: %v",
		e.Row, e.StartLine, e.Line, e.Err)
}

func (e *ResyncError) Unwrap() error { return e.Err }

// readerBufferSize is large enough that csv's ReadSlice rarely spills into
// its own buffer, and amortises the gzip reader's calls.
const readerBufferSize = 256 << 10

// ctxCheckEvery bounds how long Read runs after ctx is cancelled without
// paying for ctx.Err on every row.
const ctxCheckEvery = 4096

// Read parses a cohort CSV from r and calls onKey with the id of every valid
// row, in file order, and onExclusion (which may be nil) with every excluded
// row. An error from a callback stops reading and is returned wrapped.
//
// The key passed to onKey is a substring of the record's one allocation and
// may be retained.
//
// Read returns an error for input it cannot read as a whole: empty input
// (ErrEmpty), a missing or repeated id column (*MissingColumnError), a broken
// header, a quoted field that swallows lines (*ResyncError), a gzip or I/O
// error, or ctx being done. Stats are valid up to the point of failure.
func Read(ctx context.Context, r io.Reader, opts Options, onKey func(key string) error, onExclusion func(Exclusion) error) (Stats, error) {
	st := Stats{Excluded: map[string]int64{}}
	col := opts.IDColumn
	if col == "" {
		col = DefaultIDColumn
	}
	in, err := decompress(r)
	if err != nil {
		return st, err
	}
	cr := csv.NewReader(in)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = 0 // set from the header

	header, err := cr.Read()
	if err == io.EOF {
		return st, ErrEmpty
	}
	if err != nil {
		return st, fmt.Errorf("header: %w", err)
	}
	idx, err := findColumn(header, col)
	if err != nil {
		return st, err
	}

	exclude := func(e Exclusion) error {
		st.Excluded[e.Reason]++
		if onExclusion == nil {
			return nil
		}
		if err := onExclusion(e); err != nil {
			return fmt.Errorf("row %d: %w", e.Row, err)
		}
		return nil
	}

	for {
		if st.Rows%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return st, fmt.Errorf("after %d rows: %w", st.Rows, err)
			}
		}
		rec, err := cr.Read()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			// The address of pe escapes to errors.As, so it lives on this
			// rare path only, keeping the common path allocation-free.
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return st, fmt.Errorf("after row %d: read input: %w", st.Rows, err)
			}
			st.Rows++
			e, err := parseErrorExclusion(st.Rows, pe, rec, idx, len(header))
			if err != nil {
				return st, err
			}
			if err := exclude(e); err != nil {
				return st, err
			}
			continue
		}
		st.Rows++
		var value string
		if idx < len(rec) {
			value = rec[idx]
		}
		var reason string
		switch schema.CheckIdentifier(value) {
		case nil:
			st.Keys++
			if err := onKey(value); err != nil {
				return st, fmt.Errorf("row %d: %w", st.Rows, err)
			}
			continue
		case schema.ErrEmpty:
			reason = ReasonEmptyID
		case schema.ErrTooLong:
			reason = ReasonKeyTooLong
		default:
			reason = ReasonInvalidUTF8
		}
		line, _ := cr.FieldPos(0)
		if err := exclude(Exclusion{Row: st.Rows, Line: int64(line), Value: displayValue(value), Reason: reason}); err != nil {
			return st, err
		}
	}
}

// parseErrorExclusion turns a per-row csv.ParseError into an exclusion, or
// into a *ResyncError when the parser has lost track of row boundaries.
func parseErrorExclusion(row int64, pe *csv.ParseError, rec []string, idx, headerLen int) (Exclusion, error) {
	e := Exclusion{Row: row, Line: int64(pe.StartLine)}
	if idx < len(rec) {
		e.Value = displayValue(rec[idx])
	}
	switch {
	case errors.Is(pe.Err, csv.ErrFieldCount):
		e.Reason = ReasonWrongColumnCount
		e.Detail = fmt.Sprintf("%d fields, the header has %d", len(rec), headerLen)
	case errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine:
		return e, &ResyncError{Row: row, StartLine: int64(pe.StartLine), Line: int64(pe.Line), Err: pe}
	default:
		// The parser gave up on this line only; fields before the error were
		// parsed and are shown, the rest are missing.
		e.Reason, e.Detail = ReasonMalformedCSV, pe.Error()
	}
	return e, nil
}

// decompress returns a buffered reader of r's content, gunzipped when r
// starts with the gzip magic, with a leading UTF-8 BOM removed.
func decompress(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, readerBufferSize)
	magic, err := br.Peek(2)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip header: %w", err)
		}
		br = bufio.NewReaderSize(zr, readerBufferSize)
	}
	bom, err := br.Peek(3)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if bytes.Equal(bom, []byte{0xef, 0xbb, 0xbf}) {
		_, _ = br.Discard(3) // cannot fail: the bytes are buffered
	}
	return br, nil
}

func findColumn(header []string, col string) (int, error) {
	idx := -1
	for i, h := range header {
		if strings.TrimSpace(h) != col {
			continue
		}
		if idx >= 0 {
			return 0, fmt.Errorf("id column %q appears more than once in the header (columns %d and %d)", col, idx+1, i+1)
		}
		idx = i
	}
	if idx < 0 {
		const maxShown = 50
		shown := header
		if len(shown) > maxShown {
			shown = shown[:maxShown]
		}
		e := &MissingColumnError{Column: col}
		for _, h := range shown {
			e.Header = append(e.Header, displayValue(h))
		}
		if len(header) > maxShown {
			e.Header = append(e.Header, fmt.Sprintf("... %d more", len(header)-maxShown))
		}
		return 0, e
	}
	return idx, nil
}

// displayValue makes s safe to show: valid UTF-8 and at most MaxValueBytes
// (+ "…" when cut).
func displayValue(s string) string {
	if len(s) <= MaxValueBytes && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if b.Len()+utf8.RuneLen(r) > MaxValueBytes {
			b.WriteString("…")
			break
		}
		b.WriteRune(r) // RuneError for a bad byte
		i += size
	}
	return b.String()
}
