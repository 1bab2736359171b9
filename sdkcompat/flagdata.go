package sdkcompat

import (
	"encoding/json"
	"fmt"
)

// FlagData returns the SDK flag data for req in the file data source format
// (top-level "flags" and "segments" keyed by key, as LaunchDarkly serves
// them): one flag whose only rule matches the unbounded segment, so value
// true means "the Big Segment store says included". node/evaluate.js builds
// the same document (TestFlagDataMatchesNode checks it); testdata/flagdata.golden.json
// pins it.
func FlagData(req Request) ([]byte, error) {
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("sdkcompat: invalid request: %w", err)
	}
	req = req.WithDefaults()
	const salt = "cohortsync-sdkcompat"
	doc := map[string]any{
		"flags": map[string]any{
			req.FlagKey: map[string]any{
				"key":            req.FlagKey,
				"version":        1,
				"on":             true,
				"salt":           salt,
				"variations":     []bool{false, true},
				"offVariation":   0,
				"fallthrough":    map[string]any{"variation": 0},
				"targets":        []any{},
				"contextTargets": []any{},
				"prerequisites":  []any{},
				"rules": []any{map[string]any{
					"id":        "in-segment",
					"variation": 1,
					"clauses": []any{map[string]any{
						"attribute": "key",
						"op":        "segmentMatch",
						"values":    []string{req.SegmentKey},
						"negate":    false,
					}},
					"trackEvents": false,
				}},
				"trackEvents":            false,
				"trackEventsFallthrough": false,
			},
		},
		"segments": map[string]any{
			req.SegmentKey: map[string]any{
				"key":                  req.SegmentKey,
				"version":              1,
				"unbounded":            true,
				"unboundedContextKind": req.ContextKind,
				"generation":           req.Generation,
				"included":             []string{},
				"excluded":             []string{},
				"includedContexts":     []any{},
				"excludedContexts":     []any{},
				"rules":                []any{},
				"salt":                 salt,
			},
		},
	}
	if req.Segment != nil {
		doc["segments"] = map[string]any{req.SegmentKey: req.Segment}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sdkcompat: encode flag data: %w", err)
	}
	return append(b, '\n'), nil
}
