package catalogstore

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cohortsync/cohortsync/control/catalog"
)

// recordVersion is the version of the record encoding. A reader refuses
// other versions rather than guess at fields it does not know.
const recordVersion = 1

// record is the stored form of one mapping, one destination or one
// Amplitude project, exactly one of them. Its field names are the storage format: renaming a Go field
// must not change them. A mapping's record has no "destination" field, so
// it is byte for byte what it was before destinations were stored.
type record struct {
	Version     int                         `json:"version"`
	Hash        string                      `json:"hash"`
	Mapping     *catalog.Encoded            `json:"mapping,omitempty"`
	Destination *catalog.EncodedDestination `json:"destination,omitempty"`
	// AmplitudeProject holds where the project's keys are read, never the
	// keys.
	AmplitudeProject *catalog.EncodedAmplitudeProject `json:"amplitude_project,omitempty"`
}

// marshal is r's JSON. The encoding is deterministic, so equal entries have
// byte-equal records and Apply compares records as strings.
func (r record) marshal() string {
	r.Version = recordVersion
	b, err := json.Marshal(r)
	if err != nil {
		// Strings, ints, a finite float and bools always marshal.
		panic("catalogstore: encoding a record: " + err.Error())
	}
	return string(b)
}

// encode is m's record.
func encode(m catalog.Mapping) string {
	e := m.Encode()
	return record{Hash: m.Hash(), Mapping: &e}.marshal()
}

// encodeDestination is d's record. It holds where d's Redis password is
// read, never the password (catalog.EncodedDestination).
func encodeDestination(d catalog.Destination) string {
	e := d.Encode()
	return record{Hash: d.Hash(), Destination: &e}.marshal()
}

// encodeProject is p's record.
func encodeProject(p catalog.AmplitudeProject) string {
	e := p.Encode()
	return record{Hash: p.Hash(), AmplitudeProject: &e}.marshal()
}

// CorruptError is a stored record that does not decode to a mapping or a
// destination.
type CorruptError struct {
	// Key and Field locate the record: the Redis hash and its field (the
	// entry's name).
	Key, Field string
	// Problem says what is wrong with it.
	Problem string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("catalogstore: corrupt record %s field %q: %s", e.Key, e.Field, e.Problem)
}

// unmarshal reads the record stored at key, field, of an entry of kind
// ("mapping" or "destination"), up to checking which of the two it holds.
func unmarshal(key, field, data, kind string) (record, error) {
	var r record
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return r, &CorruptError{Key: key, Field: field, Problem: fmt.Sprintf("not a JSON record: %v", err)}
	}
	if r.Version != recordVersion {
		return r, &CorruptError{Key: key, Field: field, Problem: fmt.Sprintf("version %d, want %d", r.Version, recordVersion)}
	}
	held := map[string]bool{kindMapping: r.Mapping != nil, kindDestination: r.Destination != nil, kindProject: r.AmplitudeProject != nil}
	n := 0
	for _, h := range held {
		if h {
			n++
		}
	}
	if n != 1 || !held[kind] {
		return r, &CorruptError{Key: key, Field: field, Problem: "want a record of one " + kind}
	}
	return r, nil
}

// verify checks a decoded entry against its place and its record's hash.
func verify(key, field, kind, name, hash string, r record) error {
	if name != field {
		return &CorruptError{Key: key, Field: field, Problem: fmt.Sprintf("holds %s %q", kind, name)}
	}
	// The hash covers every field, so a record edited by hand or
	// truncated is caught here rather than used as something nobody
	// applied.
	if hash != r.Hash {
		return &CorruptError{Key: key, Field: field, Problem: fmt.Sprintf("content hash %s, want %s", hash, r.Hash)}
	}
	return nil
}

const (
	kindMapping     = "mapping"
	kindDestination = "destination"
	kindProject     = "amplitude_project"
)

// decode reads the mapping record stored at key, field.
func decode(key, field, data string) (catalog.Mapping, error) {
	r, err := unmarshal(key, field, data, kindMapping)
	if err != nil {
		return catalog.Mapping{}, err
	}
	m, err := r.Mapping.Mapping()
	if err != nil {
		return catalog.Mapping{}, &CorruptError{Key: key, Field: field, Problem: err.Error()}
	}
	if err := verify(key, field, kindMapping, m.Name, m.Hash(), r); err != nil {
		return catalog.Mapping{}, err
	}
	return m, nil
}

// decodeDestination reads the destination record stored at key, field.
func decodeDestination(key, field, data string) (catalog.Destination, error) {
	r, err := unmarshal(key, field, data, kindDestination)
	if err != nil {
		return catalog.Destination{}, err
	}
	d := r.Destination.Destination()
	if err := verify(key, field, kindDestination, d.Name, d.Hash(), r); err != nil {
		return catalog.Destination{}, err
	}
	return d, nil
}

// decodeProject reads the Amplitude project record stored at key, field.
func decodeProject(key, field, data string) (catalog.AmplitudeProject, error) {
	r, err := unmarshal(key, field, data, kindProject)
	if err != nil {
		return catalog.AmplitudeProject{}, err
	}
	p := r.AmplitudeProject.AmplitudeProject()
	if err := verify(key, field, kindProject, p.Name, p.Hash(), r); err != nil {
		return catalog.AmplitudeProject{}, err
	}
	return p, nil
}

// decodeAll decodes every record of the hash key (HGETALL's reply), sorted
// by name. One record that does not decode fails them all: a partial list
// would look like a deleted entry.
func decodeAll[T any](key string, all map[string]string, decode func(key, field, data string) (T, error), name func(T) string) ([]T, error) {
	out := make([]T, 0, len(all))
	for field, data := range all {
		v, err := decode(key, field, data)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(name(a), name(b)) })
	return out, nil
}
