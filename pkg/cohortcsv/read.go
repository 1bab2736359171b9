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

// readerBufferSize is large enough that a line rarely spans two fills, and
// amortises the gzip reader's calls.
const readerBufferSize = 256 << 10

// ctxCheckEvery bounds how long Read runs after ctx is cancelled without
// paying for ctx.Err on every row. It also bounds a block of keys (see
// keyBlock).
const ctxCheckEvery = 4096

// keyBlockBytes makes a block of keys end early when its keys are long, so a
// block stays a few hundred KiB.
const keyBlockBytes = 256 << 10

// Read parses a cohort CSV from r and calls onKey with the id of every valid
// row, in file order, and onExclusion (which may be nil) with every excluded
// row. An error from a callback stops reading and is returned wrapped.
//
// The key passed to onKey may be retained: it is a substring of a string
// shared with the keys of up to ctxCheckEvery neighbouring rows (the key
// bytes only, not the rest of their records), or of its record's one
// allocation when encoding/csv read the record.
//
// Read returns an error for input it cannot read as a whole: empty input
// (ErrEmpty), a missing or repeated id column (*MissingColumnError), a broken
// header, a quoted field that swallows lines (*ResyncError), a gzip or I/O
// error, or ctx being done. Stats are valid up to the point of failure.
func Read(ctx context.Context, r io.Reader, opts Options, onKey func(key string) error, onExclusion func(Exclusion) error) (Stats, error) {
	st := Stats{Excluded: map[string]int64{}}
	in, err := decompress(r)
	if err != nil {
		return st, err
	}
	// encoding/csv reads whatever the fast path leaves to it through feed,
	// one line at a time, so it never holds bytes the fast path needs.
	feed := &lineFeeder{in: in}
	recs, err := newCSVRecords(feed, opts, &st, onKey, onExclusion)
	if err != nil {
		return st, err
	}
	idx, fields := recs.idx, recs.fields
	keys := keyBlock{arena: make([]byte, 0, 64<<10), ends: make([]int, 0, ctxCheckEvery)}
	flush := func() error {
		return keys.flush(func(key string) error {
			st.Rows++
			st.Keys++
			if err := onKey(key); err != nil {
				return fmt.Errorf("row %d: %w", st.Rows, err)
			}
			return nil
		})
	}
	// checkCtx runs where the reference loop checked: before reading the
	// record after a multiple of ctxCheckEvery rows. Keys parsed before it
	// are passed on first, as they were.
	checkCtx := func() error {
		if err := flush(); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("after %d rows: %w", st.Rows, err)
		}
		return nil
	}

	// fastLines counts the lines the fast path consumed; encoding/csv counts
	// only the ones it read, so its line numbers are shifted by fastLines.
	var fastLines int64
	// searched is how many bytes at the start of the unconsumed input are
	// known to hold no line end, so that a line arriving in many small reads
	// is scanned once, not once a read.
	searched := 0
	for {
		// Fast path: whole lines already buffered, with the header's field
		// count and no quote but around whole fields, are split here.
		buf, _ := in.Peek(in.Buffered()) // cannot fail: the bytes are buffered
		consumed := 0
		slow := false
		for {
			nl := bytes.IndexByte(buf[consumed+searched:], '\n')
			if nl < 0 {
				searched = len(buf) - consumed
				break
			}
			nl += searched
			searched = 0
			line := buf[consumed : consumed+nl]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1] // CRLF reads as LF, as in encoding/csv
			}
			if len(line) == 0 {
				consumed += nl + 1 // a blank line is not a record
				fastLines++
				continue
			}
			value, ok := plainField(line, idx, fields)
			if !ok {
				slow = true
				break
			}
			if rows := st.Rows + int64(len(keys.ends)); rows%ctxCheckEvery == 0 {
				if err := checkCtx(); err != nil {
					return st, err
				}
			}
			consumed += nl + 1
			fastLines++
			reason := keyReason(value)
			if reason == "" {
				if keys.add(value) {
					if err := flush(); err != nil {
						return st, err
					}
				}
				continue
			}
			if err := flush(); err != nil {
				return st, err
			}
			st.Rows++
			lineNo := fastLines + feed.lines
			if err := recs.exclude(Exclusion{Row: st.Rows, Line: lineNo, Value: displayValue(string(value)), Reason: reason}); err != nil {
				return st, err
			}
		}
		_, _ = in.Discard(consumed) // cannot fail: the bytes are buffered
		if !slow {
			// No whole line is left in the buffer: read more, or leave a
			// line longer than the buffer, the last line without a line end
			// and any read error to encoding/csv.
			if in.Buffered() < in.Size() {
				_, err := in.Peek(in.Buffered() + 1)
				if err == nil {
					continue
				}
				if err == io.EOF && in.Buffered() == 0 {
					if err := flush(); err != nil {
						return st, err
					}
					if st.Rows%ctxCheckEvery == 0 {
						if err := checkCtx(); err != nil {
							return st, err
						}
					}
					return st, nil
				}
				feed.err = err // Peek took it from in; encoding/csv must see it
			}
		}

		// Slow path: one record through encoding/csv, exactly as before.
		searched = 0
		if err := flush(); err != nil {
			return st, err
		}
		if st.Rows%ctxCheckEvery == 0 {
			if err := checkCtx(); err != nil {
				return st, err
			}
		}
		if err := recs.next(fastLines); err == io.EOF {
			return st, nil
		} else if err != nil {
			return st, err
		}
	}
}

// csvRecords passes on the records encoding/csv reads, one a call, as Read
// did for every record before it had a fast path.
type csvRecords struct {
	cr          *csv.Reader
	idx, fields int // the id column and the header's field count
	st          *Stats
	onKey       func(string) error
	onExclusion func(Exclusion) error // may be nil
}

// newCSVRecords reads the header from in and finds the id column.
func newCSVRecords(in io.Reader, opts Options, st *Stats, onKey func(string) error, onExclusion func(Exclusion) error) (*csvRecords, error) {
	col := opts.IDColumn
	if col == "" {
		col = DefaultIDColumn
	}
	cr := csv.NewReader(in)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = 0 // set from the header

	header, err := cr.Read()
	if err == io.EOF {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	idx, err := findColumn(header, col)
	if err != nil {
		return nil, err
	}
	return &csvRecords{cr: cr, idx: idx, fields: len(header), st: st, onKey: onKey, onExclusion: onExclusion}, nil
}

// exclude counts an excluded row and passes it on.
func (c *csvRecords) exclude(e Exclusion) error {
	c.st.Excluded[e.Reason]++
	if c.onExclusion == nil {
		return nil
	}
	if err := c.onExclusion(e); err != nil {
		return fmt.Errorf("row %d: %w", e.Row, err)
	}
	return nil
}

// next reads one record and passes it on as a key or an exclusion; io.EOF
// at the end of the input. lineShift is added to encoding/csv's line
// numbers: the lines read before it began reading.
func (c *csvRecords) next(lineShift int64) error {
	st := c.st
	rec, err := c.cr.Read()
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		// The address of pe escapes to errors.As, so it lives on this
		// rare path only.
		var pe *csv.ParseError
		if !errors.As(err, &pe) {
			return fmt.Errorf("after row %d: read input: %w", st.Rows, err)
		}
		st.Rows++
		e, err := parseErrorExclusion(st.Rows, pe, rec, c.idx, c.fields, lineShift)
		if err != nil {
			return err
		}
		return c.exclude(e)
	}
	st.Rows++
	var value string
	if c.idx < len(rec) {
		value = rec[c.idx]
	}
	var reason string
	switch schema.CheckIdentifier(value) {
	case nil:
		st.Keys++
		if err := c.onKey(value); err != nil {
			return fmt.Errorf("row %d: %w", st.Rows, err)
		}
		return nil
	case schema.ErrEmpty:
		reason = ReasonEmptyID
	case schema.ErrTooLong:
		reason = ReasonKeyTooLong
	default:
		reason = ReasonInvalidUTF8
	}
	line, _ := c.cr.FieldPos(0)
	return c.exclude(Exclusion{Row: st.Rows, Line: int64(line) + lineShift, Value: displayValue(value), Reason: reason})
}

// plainField returns field idx of line when the line is plain: exactly
// fields fields, each without quotes or quoted whole (see quotedField). Any
// other line goes to encoding/csv, which reads it (or reports it) as the
// grammar says.
func plainField(line []byte, idx, fields int) ([]byte, bool) {
	if bytes.IndexByte(line, '"') >= 0 {
		return quotedField(line, idx, fields)
	}
	start := 0
	for range idx {
		i := bytes.IndexByte(line[start:], ',')
		if i < 0 {
			return nil, false
		}
		start += i + 1
	}
	end := len(line)
	if i := bytes.IndexByte(line[start:], ','); i >= 0 {
		end = start + i
	}
	if bytes.Count(line[end:], []byte{','}) != fields-1-idx {
		return nil, false
	}
	return line[start:end], true
}

// quotedField is plainField for a line with quotes, as from exporters that
// quote every field: a field starting with a quote must end with the next
// quote, right before a separator or the line end (so it holds no quote, no
// escaped quote and no line end); a field not starting with one must hold
// none. What encoding/csv would read differently or refuse goes to it.
func quotedField(line []byte, idx, fields int) ([]byte, bool) {
	var value []byte
	n := 0
	for {
		var field []byte
		if len(line) > 0 && line[0] == '"' {
			end := bytes.IndexByte(line[1:], '"')
			if end < 0 {
				return nil, false // the field goes on over the line end
			}
			field, line = line[1:1+end], line[end+2:]
			if len(line) > 0 && line[0] != ',' {
				return nil, false // an escaped quote, or text after the closing one
			}
		} else {
			end := bytes.IndexByte(line, ',')
			if end < 0 {
				end = len(line)
			}
			field, line = line[:end], line[end:]
			if bytes.IndexByte(field, '"') >= 0 {
				return nil, false // a bare quote
			}
		}
		if n == idx {
			value = field
		}
		n++
		if len(line) == 0 {
			break
		}
		line = line[1:] // the separator
	}
	if n != fields {
		return nil, false
	}
	return value, true
}

// keyReason is schema.CheckIdentifier for bytes, as an exclusion reason:
// "" for a valid key. The rules are checked in CheckIdentifier's order, so
// a row gets the reason the encoding/csv path would give it.
func keyReason(v []byte) string {
	switch {
	case len(v) == 0:
		return ReasonEmptyID
	case len(v) > schema.MaxKeyBytes:
		return ReasonKeyTooLong
	case !utf8.Valid(v):
		return ReasonInvalidUTF8
	}
	return ""
}

// keyBlock gathers the keys of consecutive rows so that one string
// allocation serves up to ctxCheckEvery of them instead of one per record.
type keyBlock struct {
	arena []byte
	ends  []int // end of each key in arena
}

// add appends a key and says whether the block is full.
func (b *keyBlock) add(key []byte) bool {
	b.arena = append(b.arena, key...)
	b.ends = append(b.ends, len(b.arena))
	return len(b.ends) == cap(b.ends) || len(b.arena) >= keyBlockBytes
}

// flush passes the keys on in order, stopping at the first error; the
// block is empty afterwards either way.
func (b *keyBlock) flush(pass func(string) error) error {
	if len(b.ends) == 0 {
		return nil
	}
	s := string(b.arena)
	ends := b.ends
	b.arena, b.ends = b.arena[:0], b.ends[:0]
	start := 0
	for _, end := range ends {
		if err := pass(s[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// lineFeeder is encoding/csv's input: the bytes the fast path left in in,
// never past a line end, so the csv.Reader's own buffer is empty whenever a
// record has been read and the fast path can take over again.
type lineFeeder struct {
	in    *bufio.Reader
	err   error // an error the fast path took from in, due after its bytes
	lines int64 // line ends passed on
}

func (f *lineFeeder) Read(p []byte) (int, error) {
	if f.in.Buffered() == 0 {
		if err := f.err; err != nil {
			f.err = nil
			return 0, err
		}
		if _, err := f.in.Peek(1); err != nil {
			return 0, err
		}
	}
	buf, _ := f.in.Peek(min(f.in.Buffered(), len(p))) // cannot fail: the bytes are buffered
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
		f.lines++
	}
	n := copy(p, buf)
	_, _ = f.in.Discard(n) // cannot fail: the bytes are buffered
	return n, nil
}

// parseErrorExclusion turns a per-row csv.ParseError into an exclusion, or
// into a *ResyncError when the parser has lost track of row boundaries.
// lineShift is added to the parser's line numbers: the lines the fast path
// read before it.
func parseErrorExclusion(row int64, pe *csv.ParseError, rec []string, idx, headerLen int, lineShift int64) (Exclusion, error) {
	shifted := *pe
	shifted.StartLine += int(lineShift)
	shifted.Line += int(lineShift)
	pe = &shifted
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
