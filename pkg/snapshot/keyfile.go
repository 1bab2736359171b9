package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// Key file format, version 1:
//
//	magic   "cohortsync-keys 1\n"
//	count   8 bytes, big endian: number of records
//	records uvarint(len(key)) key ... (len >= 1, keys strictly ascending)
//	end     uvarint 0 (a key is never empty, so 0 cannot start a record)
//	count   8 bytes, big endian, again
//	crc     4 bytes, big endian: CRC-32C of every record byte
//
// The count up front lets the store reserve sequence numbers without reading
// the file; the trailer proves the file was written to the end. A reader
// checks both counts, the checksum, the order and that nothing follows.
const keyMagic = "cohortsync-keys 1\n"

const (
	headerLen = len(keyMagic) + 8
	// MaxKeyLen bounds a record so a corrupt length cannot make a reader
	// allocate without limit, and so a key always fits in a sort chunk.
	// Context keys are far shorter (schema.MaxKeyBytes).
	MaxKeyLen   = 16 << 10
	ioBufferLen = 256 << 10
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by every error about a key file that is truncated,
// altered or not a key file.
var ErrCorrupt = errors.New("snapshot file is corrupt")

// CorruptError says which file is corrupt and how.
type CorruptError struct {
	Path   string
	Offset int64 // byte offset where the problem was found
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s: %v at byte %d: %s", e.Path, ErrCorrupt, e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// KeyWriter writes a key file. Keys must come strictly ascending.
//
// Records are gathered in a buffer of ioBufferLen bytes, and the checksum
// is taken over the whole buffer when it is written out: one CRC call per
// 256 KiB rather than two per key.
type KeyWriter struct {
	f   *os.File
	buf []byte // records not yet written
	// recStart is where the records start in buf: after the header until
	// the first flush, 0 afterwards.
	recStart int
	path     string
	count    uint64
	crc      uint32
	last     []byte
	hasKey   bool
	done     bool
}

// CreateKeyFile creates (or truncates) path for writing.
func CreateKeyFile(path string) (*KeyWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	w := &KeyWriter{f: f, buf: make([]byte, 0, ioBufferLen), path: path, recStart: headerLen}
	// The count is patched in by Close.
	w.buf = append(w.buf, keyMagic...)
	w.buf = append(w.buf, make([]byte, 8)...)
	return w, nil
}

// Append adds key, which must be non-empty, at most MaxKeyLen and greater
// than the previous key.
func (w *KeyWriter) Append(key []byte) error {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return fmt.Errorf("write %s: key of %d bytes (want 1..%d)", w.path, len(key), MaxKeyLen)
	}
	if w.hasKey && bytes.Compare(key, w.last) <= 0 {
		return fmt.Errorf("write %s: keys out of order: %q after %q", w.path, key, w.last)
	}
	if len(w.buf)+binary.MaxVarintLen64+len(key) > cap(w.buf) {
		if err := w.flush(); err != nil {
			return fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(len(key)))
	w.buf = append(w.buf, key...)
	w.last = append(w.last[:0], key...)
	w.hasKey = true
	w.count++
	return nil
}

// flush adds the buffered records to the checksum and writes the buffer
// out (with the header, before the records, the first time).
func (w *KeyWriter) flush() error {
	w.crc = crc32.Update(w.crc, crcTable, w.buf[w.recStart:])
	w.recStart = 0
	if _, err := w.f.Write(w.buf); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

// Count is the number of keys appended so far.
func (w *KeyWriter) Count() int64 { return int64(w.count) }

// Close writes the trailer and the header count, optionally fsyncs, and
// closes the file. On error the file is removed.
func (w *KeyWriter) Close(sync bool) error {
	if w.done {
		return errors.New("key writer already closed")
	}
	err := func() error {
		if err := w.flush(); err != nil {
			return err
		}
		var tr [1 + 8 + 4]byte
		binary.BigEndian.PutUint64(tr[1:9], w.count)
		binary.BigEndian.PutUint32(tr[9:], w.crc)
		if _, err := w.f.Write(tr[:]); err != nil {
			return err
		}
		var cnt [8]byte
		binary.BigEndian.PutUint64(cnt[:], w.count)
		if _, err := w.f.WriteAt(cnt[:], int64(len(keyMagic))); err != nil {
			return err
		}
		if sync {
			return w.f.Sync()
		}
		return nil
	}()
	if err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.done = true
	if err := w.f.Close(); err != nil {
		_ = os.Remove(w.path) // half-written; the close error is what matters
		return fmt.Errorf("close %s: %w", w.path, err)
	}
	return nil
}

// Abort closes and removes the file. It is safe after Close (then a no-op).
func (w *KeyWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	// The file is being discarded: errors closing or removing it leave at
	// worst a temp file that the store's cleanup removes later.
	_ = w.f.Close()
	_ = os.Remove(w.path)
}

// KeyReader reads a key file written by KeyWriter, verifying it as it goes.
//
// It reads the file in blocks of ioBufferLen into a buffer of its own and
// parses records in place; the checksum is taken over each block's records
// at once, as KeyWriter does.
type KeyReader struct {
	f   *os.File
	buf []byte
	pos int // next unparsed byte of buf
	end int // bytes of buf read from the file
	// crcFrom is where the records not yet in crc start in buf.
	crcFrom int
	fileEOF bool // the file has no bytes after buf[:end]
	path    string
	count   uint64 // from the header
	read    uint64
	crc     uint32
	off     int64 // file offset of buf[pos]
	prev    []byte
	eof     bool
	closed  bool
}

// OpenKeyFile opens path and checks its header.
func OpenKeyFile(path string) (*KeyReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	// Room for a whole block plus the longest record that can straddle it.
	r := &KeyReader{f: f, buf: make([]byte, ioBufferLen+MaxKeyLen+binary.MaxVarintLen64), path: path}
	if err := r.fill(headerLen); err != nil {
		_ = f.Close() // read-only: the read error is what matters
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &CorruptError{Path: path, Reason: "shorter than the header"}
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	hdr := r.buf[:headerLen]
	if string(hdr[:len(keyMagic)]) != keyMagic {
		_ = f.Close() // read-only
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("bad magic %q (want %q)", hdr[:len(keyMagic)], keyMagic)}
	}
	r.count = binary.BigEndian.Uint64(hdr[len(keyMagic):])
	r.pos, r.crcFrom, r.off = headerLen, headerLen, int64(headerLen)
	return r, nil
}

// fill makes at least need bytes available from pos, reading more of the
// file; io.ErrUnexpectedEOF when the file ends first. Bytes before pos are
// dropped (the records among them are added to the checksum first), so a
// key returned earlier is no longer valid.
func (r *KeyReader) fill(need int) error {
	if r.end-r.pos >= need {
		return nil
	}
	r.crc = crc32.Update(r.crc, crcTable, r.buf[r.crcFrom:r.pos])
	r.end = copy(r.buf, r.buf[r.pos:r.end])
	r.pos, r.crcFrom = 0, 0
	for r.end < need && !r.fileEOF {
		n, err := r.f.Read(r.buf[r.end:min(len(r.buf), r.end+ioBufferLen)])
		r.end += n
		if err == io.EOF {
			r.fileEOF = true
		} else if err != nil {
			return err
		}
	}
	if r.end < need {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// Count is the number of keys the header announces.
func (r *KeyReader) Count() int64 { return int64(r.count) }

// Next returns the next key, valid until the following call, or io.EOF after
// the last key once the trailer has been verified. Any inconsistency is a
// *CorruptError.
func (r *KeyReader) Next() ([]byte, error) {
	if r.eof {
		return nil, io.EOF
	}
	start := r.off
	if r.end-r.pos < binary.MaxVarintLen64 {
		if err := r.fill(binary.MaxVarintLen64); err != nil && err != io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("read %s: %w", r.path, err)
		}
	}
	n, ln := binary.Uvarint(r.buf[r.pos:r.end])
	switch {
	case ln == 0:
		return nil, &CorruptError{Path: r.path, Offset: start, Reason: "truncated in record length (no trailer)"}
	case ln < 0:
		return nil, &CorruptError{Path: r.path, Offset: start, Reason: "bad record length"}
	case n == 0:
		// The end marker: not a record byte, so not in the checksum.
		r.crc = crc32.Update(r.crc, crcTable, r.buf[r.crcFrom:r.pos])
		r.pos++
		r.crcFrom = r.pos
		r.off++
		return nil, r.trailer()
	case n > MaxKeyLen:
		return nil, &CorruptError{Path: r.path, Offset: start, Reason: fmt.Sprintf("record length %d exceeds %d", n, MaxKeyLen)}
	}
	if r.end-r.pos < ln+int(n) {
		if err := r.fill(ln + int(n)); err != nil {
			return nil, r.readErr(err, start+int64(ln), "record")
		}
	}
	key := r.buf[r.pos+ln : r.pos+ln+int(n)]
	r.pos += ln + int(n)
	r.off += int64(ln) + int64(n)
	if r.read > 0 && bytes.Compare(key, r.prev) <= 0 {
		return nil, &CorruptError{Path: r.path, Offset: start, Reason: "keys not strictly ascending"}
	}
	r.read++
	if r.read > r.count {
		return nil, &CorruptError{Path: r.path, Offset: start, Reason: fmt.Sprintf("more records than the %d the header announces", r.count)}
	}
	r.prev = append(r.prev[:0], key...)
	return key, nil
}

func (r *KeyReader) trailer() error {
	if err := r.fill(12); err != nil {
		return r.readErr(err, r.off, "trailer")
	}
	tr := r.buf[r.pos : r.pos+12]
	r.pos += 12
	r.crcFrom = r.pos
	r.off += 12
	count, crc := binary.BigEndian.Uint64(tr[:8]), binary.BigEndian.Uint32(tr[8:])
	switch {
	case count != r.read || count != r.count:
		return &CorruptError{Path: r.path, Offset: r.off, Reason: fmt.Sprintf("read %d records, header says %d, trailer %d", r.read, r.count, count)}
	case crc != r.crc:
		return &CorruptError{Path: r.path, Offset: r.off, Reason: fmt.Sprintf("checksum %08x, trailer says %08x", r.crc, crc)}
	}
	switch err := r.fill(1); err {
	case io.ErrUnexpectedEOF:
	case nil:
		return &CorruptError{Path: r.path, Offset: r.off, Reason: "data after the trailer"}
	default:
		return fmt.Errorf("read %s: %w", r.path, err)
	}
	r.eof = true
	return io.EOF
}

func (r *KeyReader) readErr(err error, off int64, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &CorruptError{Path: r.path, Offset: off, Reason: "truncated in " + what + " (no trailer)"}
	}
	return fmt.Errorf("read %s: %w", r.path, err)
}

// Close closes the file; it is idempotent.
func (r *KeyReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", r.path, err)
	}
	return nil
}
