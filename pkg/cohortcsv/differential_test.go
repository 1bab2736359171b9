package cohortcsv

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// run is everything a caller of Read can observe.
type run struct {
	keys  []string
	excl  []Exclusion
	order []byte // 'k' for a key, 'e' for an exclusion, in callback order
	stats Stats
	err   string // "" for no error
	kind  string // which documented error type err is, if any
}

// readFunc is Read or readReference.
type readFunc func(context.Context, io.Reader, Options, func(string) error, func(Exclusion) error) (Stats, error)

// observe runs read over data served chunk bytes per Read call (all at once
// when chunk is 0), failing with errIO after failAt bytes when failAt >= 0,
// and makes the callbacks fail at key stopKey / exclusion stopExcl (1-based,
// 0 for never).
func observe(read readFunc, data []byte, opts Options, chunk, failAt, stopKey, stopExcl int) run {
	var res run
	var r io.Reader = bytes.NewReader(data)
	if failAt >= 0 && failAt < len(data) {
		r = io.MultiReader(bytes.NewReader(data[:failAt]), errReader{})
	}
	if chunk > 0 {
		r = &chunkReader{r: r, n: chunk}
	}
	st, err := read(context.Background(), r, opts,
		func(k string) error {
			res.keys = append(res.keys, k)
			res.order = append(res.order, 'k')
			if len(res.keys) == stopKey {
				return errStop
			}
			return nil
		},
		func(e Exclusion) error {
			res.excl = append(res.excl, e)
			res.order = append(res.order, 'e')
			if len(res.excl) == stopExcl {
				return errStop
			}
			return nil
		})
	res.stats = st
	if err != nil {
		res.err = err.Error()
		var re *ResyncError
		var me *MissingColumnError
		switch {
		case errors.As(err, &re):
			res.kind = fmt.Sprintf("resync %d %d %d", re.Row, re.StartLine, re.Line)
		case errors.As(err, &me):
			res.kind = "missing column"
		case errors.Is(err, ErrEmpty):
			res.kind = "empty"
		case errors.Is(err, errIO):
			res.kind = "io"
		case errors.Is(err, errStop):
			res.kind = "stop"
		}
	}
	return res
}

var (
	errIO   = errors.New("injected read failure")
	errStop = errors.New("callback says stop")
)

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errIO }

// chunkReader hands out at most n bytes a call, so that lines straddle the
// reader's buffer fills at every position.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

// diffRuns says how two observations differ, "" when they do not.
func diffRuns(got, want run) string {
	var b strings.Builder
	if !reflect.DeepEqual(got.keys, want.keys) {
		fmt.Fprintf(&b, "keys:\n  fast %q\n  ref  %q\n", got.keys, want.keys)
	}
	if !reflect.DeepEqual(got.excl, want.excl) {
		fmt.Fprintf(&b, "exclusions:\n  fast %+v\n  ref  %+v\n", got.excl, want.excl)
	}
	if !bytes.Equal(got.order, want.order) {
		fmt.Fprintf(&b, "callback order:\n  fast %s\n  ref  %s\n", got.order, want.order)
	}
	if !reflect.DeepEqual(got.stats, want.stats) {
		fmt.Fprintf(&b, "stats:\n  fast %+v\n  ref  %+v\n", got.stats, want.stats)
	}
	if got.err != want.err || got.kind != want.kind {
		fmt.Fprintf(&b, "error:\n  fast %q (%s)\n  ref  %q (%s)\n", got.err, got.kind, want.err, want.kind)
	}
	return b.String()
}

// FuzzReadMatchesReference holds Read to readReference (encoding/csv for
// every record) on any input, id column, read size, read failure and
// callback failure: same keys, exclusions, order of the callbacks, stats and
// error text.
func FuzzReadMatchesReference(f *testing.F) {
	for _, b := range testdataFiles(f) {
		f.Add(b, uint8(0), uint16(0), int32(-1), uint8(0), uint8(0))
	}
	for seed := range uint64(20) {
		f.Add(generateCSV(seed, 30, seed%2 == 0), uint8(seed), uint16(seed*7), int32(-1), uint8(0), uint8(0))
	}
	f.Add(generateCSV(99, 40, true), uint8(1), uint16(3), int32(300), uint8(0), uint8(0))
	f.Add(generateCSV(98, 40, false), uint8(2), uint16(0), int32(-1), uint8(5), uint8(2))
	f.Add([]byte("a,b\r\nx,y\r"), uint8(1), uint16(1), int32(-1), uint8(0), uint8(0))
	f.Add([]byte("user_id\n\"\n"), uint8(0), uint16(0), int32(-1), uint8(0), uint8(0))

	f.Fuzz(func(t *testing.T, data []byte, column uint8, chunk uint16, failAt int32, stopKey, stopExcl uint8) {
		columns := []string{"", "b", "email", " user_id "}
		opts := Options{IDColumn: columns[int(column)%len(columns)]}
		got := observe(Read, data, opts, int(chunk), int(failAt), int(stopKey), int(stopExcl))
		want := observe(readReference, data, opts, int(chunk), int(failAt), int(stopKey), int(stopExcl))
		if d := diffRuns(got, want); d != "" {
			t.Fatalf("Read and readReference differ on %q (column %q, chunk %d, failAt %d, stop %d/%d):\n%s",
				data, opts.IDColumn, chunk, failAt, stopKey, stopExcl, d)
		}
	})
}

// TestReadMatchesReferenceGenerated compares the two readers on larger
// generated files than the fuzzer makes: files spanning several buffer fills,
// lines longer than the buffer, gzip, and every read size class.
func TestReadMatchesReferenceGenerated(t *testing.T) {
	huge := strings.Repeat("h", readerBufferSize+100)
	tests := []struct {
		name string
		data []byte
		opts Options
	}{
		{name: "mixed rows over many buffer fills", data: generateCSV(1, 60000, false)},
		{name: "hostile rows until the file is refused", data: generateCSV(5, 60000, true)},
		{name: "mixed rows, second column", data: generateCSV(2, 20000, false), opts: Options{IDColumn: "b"}},
		{name: "gzip of mixed rows", data: gzipped(t, generateCSV(3, 20000, false))},
		{name: "plain rows only", data: plainCSV(30000)},
		{name: "every field quoted", data: quotedCSV(30000)},
		{name: "quotes that are not around whole fields, 3 columns", data: []byte("a,user_id,c\n" +
			"\"u\"x,c\n" + "1,\"u\"x,c\n" + "1,\"u\"\"v\",c\n" + "1,u,c\"d\n" + "1,u,c,d\"e\n" + "1,\"u\",\"\"\n" +
			"1,\"u,v\",c\n" + "1, \"u\",c\n" + "1,\"u\" ,c\n" + "\"1\",\"\",\"c\"\n" + "1,\"u\",\"c\"\r\n" + "1,\"u\",\"c\"\r\r\n")},
		{name: "quotes that are not around whole fields, 2 columns", data: []byte("user_id,b\n" +
			"u1,x,y\"z\n" + "u2,\"x\"y,z\n" + "\"u3\",x\"\n" + "\"u4\",\"x\"\n" + "u5,\"\n" + "\"u6\"\n")},
		{name: "line longer than the buffer", data: []byte("user_id,x\nu1,1\n" + huge + ",2\nu2,3\n")},
		{name: "quoted field longer than the buffer",
			data: []byte("user_id,x\nu1,1\n\"" + huge + "\nmore\",2\nu2,3\n")},
		{name: "unclosed quote after plain rows", data: append(plainCSV(5000), "\"open,1\nu,2\nv,3"...)},
		{name: "last line without line end", data: []byte("user_id\nu1\nu2")},
		{name: "last line is a lone CR", data: []byte("user_id\nu1\n\r")},
		{name: "CR inside fields", data: []byte("user_id,x\na\rb,1\r\nc,\r\r\n\r\nd,2\r")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{0, 1, 7, 4096, readerBufferSize - 1} {
				got := observe(Read, tt.data, tt.opts, chunk, -1, 0, 0)
				want := observe(readReference, tt.data, tt.opts, chunk, -1, 0, 0)
				if d := diffRuns(got, want); d != "" {
					t.Fatalf("chunk %d: Read and readReference differ:\n%s", chunk, d)
				}
				if want.stats.Rows == 0 && want.err == "" {
					t.Fatalf("chunk %d: no rows read, the case tests nothing", chunk)
				}
			}
		})
	}
}

// TestReadMatchesReferenceOnFailures stops the callbacks and the input at
// many points of one generated file: keys batched by the fast path must
// still be passed on up to exactly the row the reference stops at.
func TestReadMatchesReferenceOnFailures(t *testing.T) {
	data := generateCSV(7, 12000, false)
	for _, tc := range []struct{ failAt, stopKey, stopExcl int }{
		{failAt: 1}, {failAt: 100}, {failAt: len(data) / 3}, {failAt: len(data) - 1},
		{failAt: -1, stopKey: 1}, {failAt: -1, stopKey: 4095}, {failAt: -1, stopKey: 4097}, {failAt: -1, stopKey: 9000},
		{failAt: -1, stopExcl: 1}, {failAt: -1, stopExcl: 50},
	} {
		got := observe(Read, data, Options{}, 0, tc.failAt, tc.stopKey, tc.stopExcl)
		want := observe(readReference, data, Options{}, 0, tc.failAt, tc.stopKey, tc.stopExcl)
		if d := diffRuns(got, want); d != "" {
			t.Errorf("%+v: Read and readReference differ:\n%s", tc, d)
		}
		if want.err == "" {
			t.Errorf("%+v: the reference did not fail, the case tests nothing", tc)
		}
	}
}

// TestReadCancelledByCallback cancels ctx from a key callback: both readers
// stop at the same row, the next multiple of ctxCheckEvery.
func TestReadCancelledByCallback(t *testing.T) {
	data := plainCSV(3 * ctxCheckEvery)
	for _, read := range []struct {
		name string
		f    readFunc
	}{{"fast", Read}, {"reference", readReference}} {
		ctx, cancel := context.WithCancel(context.Background())
		var n int
		st, err := read.f(ctx, bytes.NewReader(data), Options{}, func(string) error {
			n++
			if n == 10 {
				cancel()
			}
			return nil
		}, nil)
		cancel()
		if !errors.Is(err, context.Canceled) || st.Rows != ctxCheckEvery || n != ctxCheckEvery {
			t.Errorf("%s: err %v after %d rows, %d keys; want context.Canceled after %d", read.name, err, st.Rows, n, ctxCheckEvery)
		}
	}
}

// plainCSV is a typical export: several columns, user_id the second.
func plainCSV(rows int) []byte {
	var b bytes.Buffer
	b.WriteString("amplitude_id,user_id,country,plan\n")
	for i := range rows {
		fmt.Fprintf(&b, "%d,user-%08d@example.com,US,free\n", 1_000_000+i, i)
	}
	return b.Bytes()
}

// quotedCSV is plainCSV from an exporter that quotes every field.
func quotedCSV(rows int) []byte {
	var b bytes.Buffer
	b.WriteString(`"amplitude_id","user_id","country","plan"` + "\r\n")
	for i := range rows {
		fmt.Fprintf(&b, `"%d","user-%08d@example.com","US",""`+"\r\n", 1_000_000+i, i)
	}
	return b.Bytes()
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// generateCSV writes a header (sometimes with a BOM, blanks around names or
// CRLF) and rows mixing every kind the readers must agree on: plain, quoted,
// quoted with separators, escaped quotes or line ends, bare quotes, unclosed
// quotes that close on a later line, wrong field counts, empty, long and
// invalid UTF-8 ids, blank lines, CR alone. Only a hostile file has rows
// that break the grammar (bare quotes, text after a closing quote, a CR before CRLF): sooner or
// later one follows a field spanning lines and the file is refused.
func generateCSV(seed uint64, rows int, hostile bool) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b bytes.Buffer
	if rng.IntN(4) == 0 {
		b.WriteString("\xef\xbb\xbf")
	}
	eol := func() string {
		switch rng.IntN(10) {
		case 0:
			return "\r\n"
		case 1:
			return "\n\n"
		case 2:
			return "\r\n\r\n"
		default:
			return "\n"
		}
	}
	headers := []string{"a,user_id,b\n", "user_id,b,email\r\n", " user_id ,b\n", "b,email,user_id,c\n", "user_id\n", "a,b\n"}
	header := headers[rng.IntN(len(headers))]
	b.WriteString(header)
	fields := strings.Count(header, ",") + 1
	field := func() string {
		switch rng.IntN(40) {
		case 0:
			return `"q,uo""ted"`
		case 1:
			return "\"multi\nline\""
		case 2:
			if hostile {
				return `x"bare`
			}
		case 3:
			if hostile {
				return `"closed"late`
			}
		case 4:
			return ""
		case 5:
			return "bad\xff\xfe"
		case 6:
			return strings.Repeat("k", 1024)
		case 7:
			return strings.Repeat("é", 513)
		case 8:
			return `"plain quoted"`
		case 9:
			return "cr\rin"
		case 10:
			return `""`
		case 11:
			return "\"open\nstill\"\"\n,closed\""
		}
		return fmt.Sprintf("user-%d", rng.IntN(1_000_000))
	}
	for range rows {
		n := fields
		if rng.IntN(30) == 0 {
			n += rng.IntN(3) - 1
		}
		for j := range max(n, 1) {
			if j > 0 {
				b.WriteByte(',')
			}
			f := field()
			if !strings.Contains(f, `"`) && rng.IntN(4) == 0 {
				f = `"` + f + `"` // quoted whole, as some exporters do
			}
			b.WriteString(f)
		}
		if hostile && rng.IntN(50) == 0 {
			b.WriteString("\r") // after a closing quote: text after it
		}
		b.WriteString(eol())
	}
	if rng.IntN(3) == 0 {
		b.Truncate(b.Len() - 1) // the last line without its line end
	}
	return b.Bytes()
}
