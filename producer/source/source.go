package source

import "context"

// Source is one snapshot of a cohort's members.
//
// Read calls emit with every member key, in any order and possibly with
// duplicates (the snapshot sort removes them), and exclude with every
// record that did not become a key. An error from a callback stops reading
// and is returned wrapped. A Source that cannot yield the whole snapshot
// (the export is truncated, the API fails) returns an error: a partial
// snapshot would look like members leaving. Stats are valid up to the point
// of failure.
type Source interface {
	// Name says which snapshot this is in messages, e.g. the file path.
	Name() string
	// Kind names what kind of source this is, e.g. "csv": the source
	// label a sync records in its events unless told another. A schema
	// identifier.
	Kind() string
	Read(ctx context.Context, emit func(key string) error, exclude func(Exclusion) error) (Stats, error)
}

// Exclusion is one record of a source that did not become a key.
type Exclusion struct {
	// Row is the record's 1-based position in the source, e.g. a CSV's
	// data row (the header not counted).
	Row int64
	// Line is the line of the input where the record starts, as an editor
	// numbers it (a CSV's header is line 1); 0 for a source without lines.
	// Row and Line differ once a quoted field spans lines or blank lines
	// were skipped.
	Line int64
	// Value is the record's id, made printable, for display only; "" when
	// the record has none.
	Value string
	// Reason is a stable name of why, for counting and reports, e.g.
	// "empty_id".
	Reason string
	// Detail says more, when there is more to say (a parser's message).
	Detail string
}

// Stats counts what Read saw.
type Stats struct {
	Rows     int64            // records read, excluded ones included
	Keys     int64            // keys passed to emit
	Excluded map[string]int64 // by reason; only reasons that occurred
}
