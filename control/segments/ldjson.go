package segments

import (
	"encoding/json"
	"fmt"
	"io"
)

// LDSegment is a segment as LaunchDarkly's flag data spells it (the
// "segments" of a flag data file, the SDKs' ldmodel.Segment), with the
// fields in the order the Go SDK writes them. For an unbounded (Big)
// segment the SDKs ignore the included and excluded lists and ask the Big
// Segment store, under the ref "<key>.g<generation>", for contexts of
// UnboundedContextKind.
type LDSegment struct {
	Key              string     `json:"key"`
	Included         []string   `json:"included"`
	Excluded         []string   `json:"excluded"`
	IncludedContexts []struct{} `json:"includedContexts"`
	ExcludedContexts []struct{} `json:"excludedContexts"`
	// Salt is the key: stable, so that the definition written twice is the
	// same file (it only matters to rollout rules, which cohortsync's
	// segments have none of).
	Salt                 string     `json:"salt"`
	Rules                []struct{} `json:"rules"`
	Unbounded            bool       `json:"unbounded"`
	UnboundedContextKind string     `json:"unboundedContextKind"`
	// Version is the generation: it must grow for a data source to take an
	// update, and a generation bump is the change evaluators must see.
	Version    int  `json:"version"`
	Generation int  `json:"generation"`
	Deleted    bool `json:"deleted"`
}

// Definition is s's flag data definition.
func Definition(s Segment) LDSegment {
	return LDSegment{
		Key: s.Key, Included: []string{}, Excluded: []string{}, IncludedContexts: []struct{}{}, ExcludedContexts: []struct{}{},
		Salt: s.Key, Rules: []struct{}{}, Unbounded: true, UnboundedContextKind: s.ContextKind,
		Version: s.Generation, Generation: s.Generation,
	}
}

// WriteDefinition writes s's definition to w as indented JSON.
func WriteDefinition(w io.Writer, s Segment) error {
	b, err := json.MarshalIndent(Definition(s), "", "  ")
	if err != nil {
		return fmt.Errorf("encode segment %q: %w", s.Key, err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
