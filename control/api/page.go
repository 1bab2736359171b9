package api

import (
	"encoding/base64"
	"slices"
	"strings"
)

// pageJSON is a page of a list: its items and the cursor of the next.
type pageJSON[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// pageOf is the page of items (sorted by key, keys unique) after cursor
// (the key of the last item of the previous page, encoded), at most limit
// long. A cursor that is not one of pageOf's is a 400.
func pageOf[T any](items []T, key func(T) string, cursor string, limit int) (pageJSON[T], error) {
	start := 0
	if cursor != "" {
		after, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(after) == 0 || after[0] != 'k' {
			return pageJSON[T]{}, badRequest("cursor", "cursor %q: want the next_cursor of a previous page", cursor)
		}
		start, _ = slices.BinarySearchFunc(items, string(after[1:]), func(t T, k string) int { return strings.Compare(key(t), k) })
		if start < len(items) && key(items[start]) == string(after[1:]) {
			start++
		}
	}
	end := min(start+limit, len(items))
	p := pageJSON[T]{Items: items[start:end]}
	if p.Items == nil {
		p.Items = []T{}
	}
	if end < len(items) {
		p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte("k" + key(items[end-1])))
	}
	return p, nil
}
