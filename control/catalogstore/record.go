package catalogstore

import (
	"encoding/json"
	"fmt"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// recordVersion is the version of the record encoding. A reader refuses
// other versions rather than guess at fields it does not know.
const recordVersion = 1

// record is the stored form of one mapping. Its field names are the
// storage format: renaming a Go field must not change them.
type record struct {
	Version int             `json:"version"`
	Hash    string          `json:"hash"`
	Mapping catalog.Encoded `json:"mapping"`
}

// encode is m's record. The encoding is deterministic, so equal mappings
// have byte-equal records and Apply compares records as strings.
func encode(m catalog.Mapping) string {
	b, err := json.Marshal(record{Version: recordVersion, Hash: m.Hash(), Mapping: m.Encode()})
	if err != nil {
		// Strings, ints, a finite float and a bool always marshal.
		panic("catalogstore: encoding a mapping: " + err.Error())
	}
	return string(b)
}

// CorruptError is a stored record that does not decode to a mapping.
type CorruptError struct {
	// Key and Field locate the record: the Redis hash and its field (the
	// mapping's name).
	Key, Field string
	// Problem says what is wrong with it.
	Problem string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("catalogstore: corrupt record %s field %q: %s", e.Key, e.Field, e.Problem)
}

// decode reads the record stored at key, field.
func decode(key, field, data string) (catalog.Mapping, error) {
	corrupt := func(format string, args ...any) (catalog.Mapping, error) {
		return catalog.Mapping{}, &CorruptError{Key: key, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	var r record
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return corrupt("not a JSON record: %v", err)
	}
	if r.Version != recordVersion {
		return corrupt("version %d, want %d", r.Version, recordVersion)
	}
	m, err := r.Mapping.Mapping()
	if err != nil {
		return corrupt("%v", err)
	}
	if m.Name != field {
		return corrupt("holds mapping %q", m.Name)
	}
	// The hash covers every field, so a record edited by hand or
	// truncated is caught here rather than run as something nobody
	// applied.
	if h := m.Hash(); h != r.Hash {
		return corrupt("content hash %s, want %s", h, r.Hash)
	}
	return m, nil
}
