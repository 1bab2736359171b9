package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/cohortsync/cohortsync/schema"
)

// DiffStats count the outcome of a Diff.
type DiffStats struct {
	Added     int64 // in new, not in old
	Removed   int64 // in old, not in new
	Unchanged int64 // in both
}

// Changes is the number of adds and removes.
func (d DiffStats) Changes() int64 { return d.Added + d.Removed }

// Diff streams the difference between two key files: fn gets OpAdd for every
// key only in newPath and OpRemove for every key only in oldPath, in key
// order. oldPath "" stands for the empty snapshot. The key passed to fn is
// valid only during the call. Both files are verified as they are read; a
// corrupt file fails the diff with a *CorruptError, possibly after fn has
// already seen some changes.
func Diff(ctx context.Context, oldPath, newPath string, fn func(op schema.Op, key []byte) error) (DiffStats, error) {
	var st DiffStats
	next := func(r *KeyReader) ([]byte, error) { return nil, io.EOF }
	var oldR *KeyReader
	if oldPath != "" {
		r, err := OpenKeyFile(oldPath)
		if err != nil {
			return st, fmt.Errorf("diff: old snapshot: %w", err)
		}
		defer func() { _ = r.Close() }() // read-only: a close error loses nothing
		oldR = r
		next = (*KeyReader).Next
	}
	newR, err := OpenKeyFile(newPath)
	if err != nil {
		return st, fmt.Errorf("diff: new snapshot: %w", err)
	}
	defer func() { _ = newR.Close() }() // read-only

	o, err := next(oldR)
	if err != nil && err != io.EOF {
		return st, fmt.Errorf("diff: old snapshot: %w", err)
	}
	oldDone := err == io.EOF
	n, err := newR.Next()
	if err != nil && err != io.EOF {
		return st, fmt.Errorf("diff: new snapshot: %w", err)
	}
	newDone := err == io.EOF
	for i := 0; !oldDone || !newDone; i++ {
		if i%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return st, fmt.Errorf("diff: %w", err)
			}
		}
		c := 0
		switch {
		case oldDone:
			c = 1
		case newDone:
			c = -1
		default:
			c = bytes.Compare(o, n)
		}
		if c < 0 {
			st.Removed++
			if err := fn(schema.OpRemove, o); err != nil {
				return st, err
			}
		} else if c > 0 {
			st.Added++
			if err := fn(schema.OpAdd, n); err != nil {
				return st, err
			}
		} else {
			st.Unchanged++
		}
		if c <= 0 {
			if o, err = next(oldR); err != nil {
				if err != io.EOF {
					return st, fmt.Errorf("diff: old snapshot: %w", err)
				}
				oldDone = true
			}
		}
		if c >= 0 {
			if n, err = newR.Next(); err != nil {
				if err != io.EOF {
					return st, fmt.Errorf("diff: new snapshot: %w", err)
				}
				newDone = true
			}
		}
	}
	return st, nil
}
