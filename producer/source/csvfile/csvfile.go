package csvfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/producer/source"
)

// Options of a CSV source.
type Options struct {
	// IDColumn is the header of the column holding the context key.
	// Default cohortcsv.DefaultIDColumn ("user_id").
	IDColumn string
}

// Source reads one cohort CSV. It is read once.
type Source struct {
	r    io.Reader
	f    *os.File // set when Open opened it
	name string
	opts Options
	read bool
}

var _ source.Source = (*Source)(nil)

// Open opens the CSV file at path now, so that a path that does not open
// fails before a sync starts; the error is the *fs.PathError, which names
// the path. Close the Source when done.
func Open(path string, opts Options) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cohort CSV: %w", err)
	}
	return &Source{r: f, f: f, name: path, opts: opts}, nil
}

// New reads the CSV from r; name says which in messages ("input" if empty).
func New(r io.Reader, name string, opts Options) *Source {
	if name == "" {
		name = "input"
	}
	return &Source{r: r, name: name, opts: opts}
}

// Name is the path or the name given to New.
func (s *Source) Name() string { return s.name }

// Kind is the source label of a CSV snapshot's events.
const Kind = "csv"

// Kind is Kind: every CSV source is a "csv" one.
func (s *Source) Kind() string { return Kind }

// Read parses the CSV (cohortcsv.Read), passing its exclusions on with
// cohortcsv's reasons.
func (s *Source) Read(ctx context.Context, emit func(key string) error, exclude func(source.Exclusion) error) (source.Stats, error) {
	if s.read {
		return source.Stats{}, errors.New("csv source " + s.name + ": already read")
	}
	s.read = true
	var onExclusion func(cohortcsv.Exclusion) error
	if exclude != nil {
		onExclusion = func(e cohortcsv.Exclusion) error {
			return exclude(source.Exclusion{Row: e.Row, Line: e.Line, Value: e.Value, Reason: e.Reason, Detail: e.Detail})
		}
	}
	st, err := cohortcsv.Read(ctx, s.r, cohortcsv.Options{IDColumn: s.opts.IDColumn}, emit, onExclusion)
	return source.Stats{Rows: st.Rows, Keys: st.Keys, Excluded: st.Excluded}, err
}

// Close closes the file Open opened; it is idempotent, and a no-op for a
// Source from New (the reader is the caller's).
func (s *Source) Close() error {
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.name, err)
	}
	return nil
}
