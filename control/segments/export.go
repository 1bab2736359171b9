package segments

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/pkg/segmentstore"
	"github.com/cohortsync/cohortsync/pkg/snapshot"
)

// ExportOptions tune Export.
type ExportOptions struct {
	// Header is the CSV's one column name. Default cohortcsv.DefaultIDColumn
	// (user_id), so that an export imports back as is.
	Header string
	// TempDir receives the sort's spill files. Default os.TempDir().
	TempDir string
	// ChunkBytes bounds the memory of the sort (see snapshot.SortOptions).
	// Default 16 MiB.
	ChunkBytes int64
}

// DefaultExportChunkBytes is ExportOptions.ChunkBytes' default: a command
// exporting millions of members stays within tens of megabytes.
const DefaultExportChunkBytes = 16 << 20

// ExportStats describe an export.
type ExportStats struct {
	Members int64 // rows written
	Runs    int   // sort chunks spilled to disk (0: sorted in memory)
}

// Export writes every member of ref under prefix to w as CSV: a header,
// then one context key a row, sorted by their bytes and each once. The
// members are read with SSCAN in pages and sorted on disk in bounded
// memory (SSCAN may return a key twice and in no order), so a segment of
// millions never sits in memory. A member added or removed during the
// export may or may not be in it.
func Export(ctx context.Context, c segmentstore.Client, prefix, ref string, w io.Writer, opts ExportOptions) (st ExportStats, err error) {
	if opts.Header == "" {
		opts.Header = cohortcsv.DefaultIDColumn
	}
	if opts.ChunkBytes == 0 {
		opts.ChunkBytes = DefaultExportChunkBytes
	}
	dir, err := os.MkdirTemp(opts.TempDir, "cohortsync-export-")
	if err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("export: remove temporary files: %w", rerr))
		}
	}()
	sorter, err := snapshot.NewSorter(snapshot.SortOptions{TempDir: dir, ChunkBytes: opts.ChunkBytes})
	if err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	defer func() { err = errors.Join(err, sorter.Close()) }()
	if err := segmentstore.Members(ctx, c, prefix, ref, sorter.Add); err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	sorted := filepath.Join(dir, "members")
	sst, err := sorter.Finish(ctx, sorted)
	if err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	st.Runs = sst.Runs
	r, err := snapshot.OpenKeyFile(sorted)
	if err != nil {
		return st, fmt.Errorf("export: %w", err)
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	cw := csv.NewWriter(w)
	row := []string{opts.Header}
	if err := cw.Write(row); err != nil {
		return st, fmt.Errorf("export: write: %w", err)
	}
	for {
		key, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("export: %w", err)
		}
		row[0] = string(key)
		if err := cw.Write(row); err != nil {
			return st, fmt.Errorf("export: write: %w", err)
		}
		st.Members++
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return st, fmt.Errorf("export: write: %w", err)
	}
	return st, nil
}
