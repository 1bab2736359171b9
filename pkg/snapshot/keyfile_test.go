package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func writeKeys(t testing.TB, path string, keys ...string) {
	t.Helper()
	w, err := CreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := w.Append([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(true); err != nil {
		t.Fatal(err)
	}
}

func readKeys(path string) ([]string, error) {
	r, err := OpenKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []string
	for {
		k, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(k))
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		keys []string
	}{
		{"empty snapshot", nil},
		{"one key", []string{"alice"}},
		{"binary-looking and long keys", []string{"\x00", "\x00\x01", "a", strings.Repeat("z", 300), "\xff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k.keys")
			writeKeys(t, p, tt.keys...)
			got, err := readKeys(p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.keys) {
				t.Fatalf("read %q, want %q", got, tt.keys)
			}
			r, err := OpenKeyFile(p)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Count() != int64(len(tt.keys)) {
				t.Fatalf("header count %d, want %d", r.Count(), len(tt.keys))
			}
		})
	}
}

func TestKeyWriterRejects(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		msg  string
	}{
		{"out of order", []string{"b", "a"}, "keys out of order"},
		{"duplicate", []string{"a", "a"}, "keys out of order"},
		{"empty key", []string{""}, "key of 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k.keys")
			w, err := CreateKeyFile(p)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			var last error
			for _, k := range tt.keys {
				last = w.Append([]byte(k))
			}
			if last == nil || !strings.Contains(last.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", last, tt.msg)
			}
		})
	}
}

// TestKeyFileCorruption damages a valid file in every way a crash, a full
// disk or a stray edit could, and checks that reading it fails with
// ErrCorrupt instead of yielding a shorter or different snapshot.
func TestKeyFileCorruption(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.keys")
	writeKeys(t, good, "alice", "bob", "carol", "dave")
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	firstRecord := headerLen
	trailerStart := len(orig) - 13
	tests := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"empty file", func(b []byte) []byte { return nil }},
		{"cut inside the header", func(b []byte) []byte { return b[:10] }},
		{"cut after the header", func(b []byte) []byte { return b[:headerLen] }},
		{"cut inside a record", func(b []byte) []byte { return b[:firstRecord+3] }},
		{"cut before the trailer", func(b []byte) []byte { return b[:trailerStart] }},
		{"cut inside the trailer", func(b []byte) []byte { return b[:len(b)-2] }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"header count too small", func(b []byte) []byte { binary.BigEndian.PutUint64(b[len(keyMagic):], 3); return b }},
		{"header count too large", func(b []byte) []byte { binary.BigEndian.PutUint64(b[len(keyMagic):], 5); return b }},
		{"flipped key byte", func(b []byte) []byte { b[firstRecord+2] ^= 0x01; return b }},
		{"flipped checksum", func(b []byte) []byte { b[len(b)-1] ^= 0x01; return b }},
		{"trailing garbage", func(b []byte) []byte { return append(b, 0) }},
		{"record length beyond the limit", func(b []byte) []byte {
			return append(b[:firstRecord:firstRecord], 0xff, 0xff, 0xff, 0xff, 0x7f)
		}},
		{"varint overflow", func(b []byte) []byte {
			return append(b[:firstRecord:firstRecord], bytes.Repeat([]byte{0xff}, 11)...)
		}},
		{"keys out of order", func(b []byte) []byte {
			// swap the first letters of alice and bob: "blice" then "aob"
			i := bytes.Index(b, []byte("alice"))
			j := bytes.Index(b, []byte("bob"))
			b[i], b[j] = b[j], b[i]
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".keys")
			if err := os.WriteFile(p, tt.damage(bytes.Clone(orig)), 0o644); err != nil {
				t.Fatal(err)
			}
			keys, err := readKeys(p)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read %q, err = %v; want ErrCorrupt", keys, err)
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != p {
				t.Fatalf("error %v does not name the file", err)
			}
		})
	}
}

// TestKeyFileAcrossBlocks writes a file of many 256 KiB blocks with keys of
// every length up to MaxKeyLen, so records straddle the reader's and the
// writer's block boundaries, and checks that it reads back exactly, and
// that a byte flipped in any block fails the checksum.
func TestKeyFileAcrossBlocks(t *testing.T) {
	var keys []string
	for i := 0; len(keys) < 3000; i++ {
		n := 1 + (i*7919)%MaxKeyLen
		if i%3 != 0 {
			n = 1 + i%40
		}
		k := fmt.Sprintf("%08d", i)
		keys = append(keys, (k + strings.Repeat("x", n))[:max(n, 8)])
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	p := filepath.Join(t.TempDir(), "big.keys")
	writeKeys(t, p, keys...)
	got, err := readKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("read %d keys back, want %d, or they differ", len(got), len(keys))
	}
	orig, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(orig) < 4*ioBufferLen {
		t.Fatalf("file of %d bytes: the test wants several blocks", len(orig))
	}
	for _, at := range []int{headerLen + 1, ioBufferLen - 1, ioBufferLen, 3*ioBufferLen + 17, len(orig) - 20} {
		b := bytes.Clone(orig)
		// Flip a key byte's case: still a valid record, only the checksum
		// (or the order) can tell.
		b[at] ^= 0x20
		q := filepath.Join(t.TempDir(), "flipped.keys")
		if err := os.WriteFile(q, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readKeys(q); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: err = %v, want ErrCorrupt", at, err)
		}
	}
}
