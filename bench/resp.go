package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// Key is the context key of synthetic member i, "user-<i>@example.com":
// the form of every cohort the benchmarks write.
func Key(i int) string { return "user-" + strconv.Itoa(i) + "@example.com" }

// WriteIncludeSADDs writes, in the Redis protocol (RESP) that
// `redis-cli --pipe` reads, one SADD of ref into the include set of each
// key(i), i in [from, to), under prefix: the bare LaunchDarkly layout of
// those members, keys built as pkg/bigsegments builds them.
func WriteIncludeSADDs(w io.Writer, prefix, ref string, from, to int, key func(int) string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var buf []byte
	for i := from; i < to; i++ {
		buf = buf[:0]
		buf = append(buf, "*3\r\n$4\r\nSADD\r\n"...)
		buf = appendBulk(buf, bigsegments.IncludeKey(prefix, key(i)))
		buf = appendBulk(buf, ref)
		// bufio.Writer keeps its first error, which Flush returns.
		_, _ = bw.Write(buf)
	}
	return bw.Flush()
}

func appendBulk(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, s...)
	return append(dst, "\r\n"...)
}

// WriteCohort writes a cohort CSV (header amplitude_id,user_id,country)
// of the members Key(i), i in [from, to), and, unless keysPath is "", a
// file of their keys alone, one a line: what `sort` and `comm` read.
func WriteCohort(csvPath, keysPath string, from, to int) error {
	write := func(path string, line func([]byte, int) []byte, header string) error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		// bufio.Writer keeps its first error, which Flush returns.
		_, _ = w.WriteString(header)
		var buf []byte
		for i := from; i < to; i++ {
			buf = line(buf[:0], i)
			_, _ = w.Write(buf)
		}
		if err := w.Flush(); err != nil {
			_ = f.Close() // the flush error is the one to report
			return fmt.Errorf("write %s: %w", path, err)
		}
		return f.Close()
	}
	appendKey := func(b []byte, i int) []byte {
		b = append(b, "user-"...)
		b = strconv.AppendInt(b, int64(i), 10)
		return append(b, "@example.com"...)
	}
	err := write(csvPath, func(b []byte, i int) []byte {
		b = strconv.AppendInt(b, int64(100000000+i), 10)
		b = append(b, ',')
		b = appendKey(b, i)
		return append(b, ",US\n"...)
	}, "amplitude_id,user_id,country\n")
	if err != nil || keysPath == "" {
		return err
	}
	return write(keysPath, func(b []byte, i int) []byte { return append(appendKey(b, i), '\n') }, "")
}
