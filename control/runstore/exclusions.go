package runstore

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer/source"
)

// The exclusions of a run into a destination are one Redis list under the
// {runs} hash tag, expiring with the run: each element a block of complete
// CSV records (row,line,value,reason), so that a run excluding a million
// rows costs a few hundred list elements and reading it back is copying
// the blocks out in order.

// ExclusionsHeader is the header of an exclusion report, the same as the
// local report a sync writes (producer's exclusionReport): CSV, Amplitude
// and push runs alike. A push member's row is its 1-based position in its
// member array; its line is empty.
var ExclusionsHeader = []string{"row", "line", "value", "reason"}

// DefaultMaxExclusions is the default of Config.MaxExclusions.
const DefaultMaxExclusions = 1_000_000

// Sizes of what a writer holds: a block is cut at blockBytes, and blocks
// are sent every flushBlocks, in one pipeline. So a writer holds at most
// about blockBytes × flushBlocks (256 KiB) whatever the run excludes.
const (
	blockBytes  = 16 << 10
	flushBlocks = 16
)

// ExclusionsKept says how much of a run's exclusion report the store keeps.
type ExclusionsKept struct {
	// Kept is the number of rows stored, in the order the run found them.
	Kept int64 `json:"kept"`
	// LeftOut is the number of rows over Config.MaxExclusions, counted and
	// not stored.
	LeftOut int64 `json:"left_out,omitempty"`
	// Error is why storing stopped, "" if it did not: rows after the Kept
	// first are missing.
	Error string `json:"error,omitempty"`
}

func (c Config) validateExclusions() error {
	if c.MaxExclusions < 0 {
		return setting.Invalid("runs-max-exclusions", c.MaxExclusions, "a number of rows, 0 for the default %d", DefaultMaxExclusions)
	}
	return nil
}

func (s *Store) exclusionsKey(id, destination string) string {
	return s.cfg.Prefix + "{runs}:exclusions:" + id + " " + destination
}

func (s *Store) maxExclusions() int64 {
	if s.cfg.MaxExclusions == 0 {
		return DefaultMaxExclusions
	}
	return s.cfg.MaxExclusions
}

// ExclusionWriter stores one run's exclusions as they are found, in
// pipelined blocks, holding a bounded amount of memory. It is not safe for
// concurrent use. A failure of the store does not fail the caller's run:
// Add drops what follows it, Close reports it.
type ExclusionWriter struct {
	s      *Store
	key    string
	buf    bytes.Buffer // the block being filled
	cw     *csv.Writer  // onto buf
	blocks []any        // cut, not sent yet
	sent   bool         // the key was reset and written at least once
	kept   ExclusionsKept
	inBuf  int64 // rows of kept in buf and blocks, not yet stored
	err    error
	closed bool
	rec    [4]string
}

// NewExclusionWriter returns the writer of run id's exclusions in
// destination. Whatever an earlier writer stored for them is replaced.
func (s *Store) NewExclusionWriter(id, destination string) *ExclusionWriter {
	w := &ExclusionWriter{s: s, key: s.exclusionsKey(id, destination)}
	w.cw = csv.NewWriter(&w.buf)
	return w
}

// Add stores e, or counts it as left out past the limit. Its errors are
// kept for Close.
func (w *ExclusionWriter) Add(ctx context.Context, e source.Exclusion) {
	if w.err != nil || w.closed {
		return
	}
	if w.kept.Kept+w.inBuf >= w.s.maxExclusions() {
		w.kept.LeftOut++
		return
	}
	line := ""
	if e.Line > 0 {
		line = strconv.FormatInt(e.Line, 10)
	}
	w.rec = [4]string{strconv.FormatInt(e.Row, 10), line, e.Value, e.Reason}
	_ = w.cw.Write(w.rec[:]) // onto a bytes.Buffer: cannot fail
	w.inBuf++
	if w.buf.Len() < blockBytes {
		return
	}
	w.cut()
	if len(w.blocks) >= flushBlocks {
		w.flush(ctx)
	}
}

// cut makes the rows in buf a block.
func (w *ExclusionWriter) cut() {
	w.cw.Flush()
	if w.buf.Len() == 0 {
		return
	}
	w.blocks = append(w.blocks, bytes.Clone(w.buf.Bytes()))
	w.buf.Reset()
}

// flush sends the cut blocks in one pipeline: the first resets the key,
// each renews its expiry. A run without exclusions costs no call.
func (w *ExclusionWriter) flush(ctx context.Context) {
	if len(w.blocks) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, w.s.cfg.Timeout)
	defer cancel()
	_, err := w.s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if !w.sent {
			p.Del(ctx, w.key)
		}
		p.RPush(ctx, w.key, w.blocks...)
		p.PExpire(ctx, w.key, w.s.cfg.Retention)
		return nil
	})
	if err != nil {
		w.err = fmt.Errorf("runstore: store exclusions %s: %w", w.key, err)
		w.kept.Error = w.err.Error()
		return
	}
	w.sent = true
	w.kept.Kept += w.inBuf
	w.inBuf = 0
	clear(w.blocks)
	w.blocks = w.blocks[:0]
}

// Close stores what Add left in memory and renews the expiry, so that the
// report lives as long as the run's record written next; it returns what
// is kept and the first error. It is idempotent.
func (w *ExclusionWriter) Close(ctx context.Context) (ExclusionsKept, error) {
	if w.closed {
		return w.kept, w.err
	}
	w.closed = true
	if w.err == nil {
		w.cut()
		w.flush(ctx)
	}
	return w.kept, w.err
}

// readBlocks is how many blocks one read of a report asks for.
const readBlocks = 16

// WriteExclusions writes the stored exclusion report of run id in
// destination to out as CSV, header first, in the order the run found the
// rows, reading a few blocks at a time. A run without exclusions (or whose
// report expired) gives the header alone; the caller checks the run exists.
func (s *Store) WriteExclusions(ctx context.Context, id, destination string, out io.Writer) error {
	cw := csv.NewWriter(out)
	if err := cw.Write(ExclusionsHeader); err != nil {
		return fmt.Errorf("runstore: write exclusions: %w", err)
	}
	if cw.Flush(); cw.Error() != nil {
		return fmt.Errorf("runstore: write exclusions: %w", cw.Error())
	}
	key := s.exclusionsKey(id, destination)
	for start := int64(0); ; start += readBlocks {
		blocks, err := s.readBlocks(ctx, key, start)
		if err != nil {
			return err
		}
		for _, b := range blocks {
			if _, err := io.WriteString(out, b); err != nil {
				return fmt.Errorf("runstore: write exclusions: %w", err)
			}
		}
		if len(blocks) < readBlocks {
			return nil
		}
	}
}

func (s *Store) readBlocks(ctx context.Context, key string, start int64) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	blocks, err := s.rdb.LRange(ctx, key, start, start+readBlocks-1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("runstore: read exclusions %s: %w", key, err)
	}
	return blocks, nil
}

// AddWithExclusions records r with excl, the exclusions of a run that holds
// them in memory (a push batch's), stored first so that the record never
// names a report that is not there yet; r.Exclusions is set to what was
// kept. A report that cannot be stored is said so in the record, which is
// still added.
func (s *Store) AddWithExclusions(ctx context.Context, r Record, excl []source.Exclusion) error {
	w := s.NewExclusionWriter(r.ID, r.Destination)
	for _, e := range excl {
		w.Add(ctx, e)
	}
	kept, werr := w.Close(ctx)
	r.Exclusions = &kept
	return errors.Join(werr, s.Add(ctx, r))
}
