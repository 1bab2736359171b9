package snapshot

import (
	"bufio"
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
type KeyWriter struct {
	f      *os.File
	w      *bufio.Writer
	path   string
	count  uint64
	crc    uint32
	last   []byte
	hasKey bool
	done   bool
	lenBuf [binary.MaxVarintLen64]byte
}

// CreateKeyFile creates (or truncates) path for writing.
func CreateKeyFile(path string) (*KeyWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	w := &KeyWriter{f: f, w: bufio.NewWriterSize(f, ioBufferLen), path: path}
	var hdr [headerLen]byte
	copy(hdr[:], keyMagic) // the count is patched in by Close
	if _, err := w.w.Write(hdr[:]); err != nil {
		w.Abort()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
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
	n := binary.PutUvarint(w.lenBuf[:], uint64(len(key)))
	w.crc = crc32.Update(w.crc, crcTable, w.lenBuf[:n])
	w.crc = crc32.Update(w.crc, crcTable, key)
	if _, err := w.w.Write(w.lenBuf[:n]); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	if _, err := w.w.Write(key); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.last = append(w.last[:0], key...)
	w.hasKey = true
	w.count++
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
	var tr [1 + 8 + 4]byte
	binary.BigEndian.PutUint64(tr[1:9], w.count)
	binary.BigEndian.PutUint32(tr[9:], w.crc)
	err := func() error {
		if _, err := w.w.Write(tr[:]); err != nil {
			return err
		}
		if err := w.w.Flush(); err != nil {
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
type KeyReader struct {
	f      *os.File
	r      *bufio.Reader
	path   string
	count  uint64 // from the header
	read   uint64
	crc    uint32
	off    int64
	key    []byte
	prev   []byte
	eof    bool
	closed bool
	lenBuf [binary.MaxVarintLen64]byte // a field: a local would escape to crc32
}

// OpenKeyFile opens path and checks its header.
func OpenKeyFile(path string) (*KeyReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	r := &KeyReader{f: f, r: bufio.NewReaderSize(f, ioBufferLen), path: path}
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		_ = f.Close() // read-only: the read error is what matters
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &CorruptError{Path: path, Reason: "shorter than the header"}
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if string(hdr[:len(keyMagic)]) != keyMagic {
		_ = f.Close() // read-only
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("bad magic %q (want %q)", hdr[:len(keyMagic)], keyMagic)}
	}
	r.count = binary.BigEndian.Uint64(hdr[len(keyMagic):])
	r.off = int64(headerLen)
	return r, nil
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
	n, err := r.uvarint()
	if err != nil {
		return nil, r.readErr(err, start, "record length")
	}
	if n == 0 {
		return nil, r.trailer()
	}
	if n > MaxKeyLen {
		return nil, &CorruptError{Path: r.path, Offset: start, Reason: fmt.Sprintf("record length %d exceeds %d", n, MaxKeyLen)}
	}
	ln := binary.PutUvarint(r.lenBuf[:], n)
	r.crc = crc32.Update(r.crc, crcTable, r.lenBuf[:ln])
	if cap(r.key) < int(n) {
		r.key = make([]byte, n, max(int(n), 256))
	}
	r.key = r.key[:n]
	if _, err := io.ReadFull(r.r, r.key); err != nil {
		return nil, r.readErr(err, r.off, "record")
	}
	r.off += int64(n)
	r.crc = crc32.Update(r.crc, crcTable, r.key)
	if r.read > 0 && bytes.Compare(r.key, r.prev) <= 0 {
		return nil, &CorruptError{Path: r.path, Offset: start, Reason: "keys not strictly ascending"}
	}
	r.read++
	if r.read > r.count {
		return nil, &CorruptError{Path: r.path, Offset: start, Reason: fmt.Sprintf("more records than the %d the header announces", r.count)}
	}
	r.prev = append(r.prev[:0], r.key...)
	return r.key, nil
}

// uvarint reads a record length; it is binary.ReadUvarint with offsets
// counted and an overflow reported as corruption.
func (r *KeyReader) uvarint() (uint64, error) {
	var x uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.r.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return x, err
		}
		r.off++
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return x, errBadVarint
			}
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return x, errBadVarint
}

func (r *KeyReader) trailer() error {
	var tr [12]byte
	if _, err := io.ReadFull(r.r, tr[:]); err != nil {
		return r.readErr(err, r.off, "trailer")
	}
	r.off += 12
	count, crc := binary.BigEndian.Uint64(tr[:8]), binary.BigEndian.Uint32(tr[8:])
	switch {
	case count != r.read || count != r.count:
		return &CorruptError{Path: r.path, Offset: r.off, Reason: fmt.Sprintf("read %d records, header says %d, trailer %d", r.read, r.count, count)}
	case crc != r.crc:
		return &CorruptError{Path: r.path, Offset: r.off, Reason: fmt.Sprintf("checksum %08x, trailer says %08x", r.crc, crc)}
	}
	if _, err := r.r.ReadByte(); err != io.EOF {
		if err != nil {
			return fmt.Errorf("read %s: %w", r.path, err)
		}
		return &CorruptError{Path: r.path, Offset: r.off, Reason: "data after the trailer"}
	}
	r.eof = true
	return io.EOF
}

func (r *KeyReader) readErr(err error, off int64, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &CorruptError{Path: r.path, Offset: off, Reason: "truncated in " + what + " (no trailer)"}
	}
	if errors.Is(err, errBadVarint) {
		return &CorruptError{Path: r.path, Offset: off, Reason: "bad " + what}
	}
	return fmt.Errorf("read %s: %w", r.path, err)
}

var errBadVarint = errors.New("varint overflows 64 bits")

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
