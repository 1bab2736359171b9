package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/schema"
)

// DefaultContextKind is the context kind of a batch that names none.
const DefaultContextKind = "user"

// Reasons of exclusions (source.Exclusion.Reason): the CSV reader's where
// they mean the same, and those only JSON members have.
const (
	ReasonEmptyID     = cohortcsv.ReasonEmptyID
	ReasonKeyTooLong  = cohortcsv.ReasonKeyTooLong
	ReasonMissingID   = "missing_id"     // the member has nothing at the member id pointer
	ReasonIDNotString = "id_not_string"  // the member id is not a string or a number
	ReasonBadMember   = "bad_membership" // the member's boolean membership is missing or not a boolean
)

// Batch is what one request asks: changes to one segment of one
// environment.
type Batch struct {
	Integration string
	Env         string // the environment id of the body (client_side_id or name of a destination)
	CohortID    string // "" only when the batch has no members at all
	CohortName  string
	CohortURL   string
	ContextKind string
	// Adds and Removes are the member keys, each key once in one of them
	// (see doc.go for the rule when a batch names a key twice).
	Adds, Removes []string
	// Exclusions are the members without a usable key; an exclusion's Row
	// is the member's 1-based position in the batch, counting an add array
	// before a remove array.
	Exclusions []source.Exclusion
	// Received is the number of members the batch names, excluded ones
	// included; Duplicates those naming a key an earlier member of the
	// batch named.
	Received, Duplicates int
	// MessageID identifies a delivery when the partner sends one (Amplitude
	// cohort webhooks), "" otherwise.
	MessageID string
	// Time is when the partner computed the batch, when it says (Amplitude
	// cohort webhooks' computed_time); zero otherwise.
	Time time.Time
}

// Segment is the segment key of the batch: "<integration>-<cohort id>".
func (b *Batch) Segment() string { return b.Integration + "-" + b.CohortID }

// Members is the number of changes of the batch.
func (b *Batch) Members() int { return len(b.Adds) + len(b.Removes) }

// FieldError is a request the receiver cannot act on: it names the field
// (a JSON pointer into the body, or "body") and what is wrong with it.
// Answered 400.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "field " + e.Field + ": " + e.Reason }

// ErrUnknownIntegration is returned for an integration key no declaration
// has.
var ErrUnknownIntegration = errors.New("unknown integration")

// Parse applies the declaration of integration to body.
func (ps *Parsers) Parse(integration string, body []byte) (*Batch, error) {
	p, ok := ps.byKey[integration]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownIntegration, integration)
	}
	doc, err := decode(body)
	if err != nil {
		return nil, err
	}
	return p.parse(doc)
}

// decode decodes one JSON document, numbers kept as written. The body's
// size was bounded by the caller; parseJSON bounds the nesting depth.
func decode(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &FieldError{Field: "body", Reason: "empty"}
	}
	// encoding/json would replace bad bytes with U+FFFD, making up keys
	// the partner never sent.
	if !utf8.Valid(body) {
		return nil, &FieldError{Field: "body", Reason: "not valid UTF-8"}
	}
	doc, err := parseJSON(body)
	if err != nil {
		return nil, &FieldError{Field: "body", Reason: "not JSON: " + err.Error()}
	}
	return doc, nil
}

func (p *parser) parse(doc any) (*Batch, error) {
	b := &Batch{Integration: p.decl.Integration, ContextKind: DefaultContextKind}
	var err error
	if b.Env, err = requiredString(doc, p.env); err != nil {
		return nil, err
	}
	if p.kind != nil {
		if v, ok := p.kind.lookup(doc); ok && v != nil {
			if b.ContextKind, err = contextKind(v, p.kind.String()); err != nil {
				return nil, err
			}
		}
	}
	b.CohortName = optionalString(doc, p.cohortName)
	b.CohortURL = optionalString(doc, p.cohortURL)
	m := newMembers()
	switch p.decl.Membership {
	case BooleanMembership:
		arr, err := array(doc, p.members)
		if err != nil {
			return nil, err
		}
		for _, el := range arr {
			key, ok := m.key(el, p.memberID)
			if !ok {
				continue
			}
			v, _ := p.boolean.lookup(el)
			in, isBool := v.(bool)
			if !isBool {
				m.exclude(key, ReasonBadMember, "at "+p.boolean.String())
				continue
			}
			m.set(key, in, true)
		}
	case AddRemoveArrays:
		adds, err := array(doc, p.adds)
		if err != nil {
			return nil, err
		}
		removes, err := array(doc, p.removes)
		if err != nil {
			return nil, err
		}
		for _, el := range adds {
			if key, ok := m.key(el, p.memberID); ok {
				m.set(key, true, false)
			}
		}
		for _, el := range removes {
			if key, ok := m.key(el, p.memberID); ok {
				m.set(key, false, true)
			}
		}
	case ArrayInclusion:
		arr, err := array(doc, p.members)
		if err != nil {
			return nil, err
		}
		action, err := requiredString(doc, p.action)
		if err != nil {
			return nil, err
		}
		add := p.addMatcher.MatchString(action) && (p.removeMatcher == nil || !p.removeMatcher.MatchString(action))
		for _, el := range arr {
			if key, ok := m.key(el, p.memberID); ok {
				m.set(key, add, true)
			}
		}
	}
	if m.count() > 0 || p.cohortID.lookupOK(doc) {
		if b.CohortID, err = requiredString(doc, p.cohortID); err != nil {
			return nil, err
		}
	}
	if err := b.finish(m, p.cohortID.String()); err != nil {
		return nil, err
	}
	return b, nil
}

func (p pointer) lookupOK(doc any) bool { _, ok := p.lookup(doc); return ok }

// finish checks the identifiers the events will carry and fills the
// member lists.
func (b *Batch) finish(m *members, cohortField string) error {
	if err := schema.CheckIdentifier(b.Env); err != nil {
		return &FieldError{Field: "environment", Reason: err.Error()}
	}
	if b.CohortID != "" {
		if err := schema.CheckIdentifier(b.Segment()); err != nil || bytes.IndexByte([]byte(b.CohortID), 0x1f) >= 0 {
			return &FieldError{Field: cohortField, Reason: "not a usable segment key part (non-empty UTF-8 of at most 1024 bytes without control characters)"}
		}
	}
	b.Adds, b.Removes = m.split()
	b.Exclusions = m.excluded
	b.Received, b.Duplicates = m.rows, m.dups
	return nil
}

// kindRE is the form of a LaunchDarkly context kind.
var kindRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,256}$`)

func contextKind(v any, field string) (string, error) {
	s, ok := v.(string)
	switch {
	case !ok:
		return "", &FieldError{Field: field, Reason: "not a string"}
	case s == "":
		return DefaultContextKind, nil
	case !kindRE.MatchString(s) || s == "kind" || s == "multi":
		return "", &FieldError{Field: field, Reason: fmt.Sprintf("%q is not a context kind (letters, digits, '.', '_', '-'; not kind or multi)", s)}
	}
	return s, nil
}

// requiredString is the string (or number, as written) at p.
func requiredString(doc any, p pointer) (string, error) {
	v, ok := p.lookup(doc)
	if !ok || v == nil {
		return "", &FieldError{Field: p.String(), Reason: "missing"}
	}
	s, ok := scalar(v)
	if !ok {
		return "", &FieldError{Field: p.String(), Reason: "not a string"}
	}
	if s == "" {
		return "", &FieldError{Field: p.String(), Reason: "empty"}
	}
	return s, nil
}

func optionalString(doc any, p pointer) string {
	if p == nil {
		return ""
	}
	v, _ := p.lookup(doc)
	s, _ := scalar(v)
	return s
}

// jsonType names the JSON type of a decoded value that is not a scalar,
// the value an exclusion report shows for an id of the wrong type.
func jsonType(v any) string {
	switch v.(type) {
	case bool:
		return "(a boolean)"
	case []any:
		return "(an array)"
	case map[string]any:
		return "(an object)"
	}
	return fmt.Sprintf("(%T)", v)
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// array is the array at p; absent or null is an empty array (a partner
// with nothing to remove may leave the array out).
func array(doc any, p pointer) ([]any, error) {
	v, ok := p.lookup(doc)
	if !ok || v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, &FieldError{Field: p.String(), Reason: "not an array"}
	}
	return arr, nil
}

// members collects one batch's changes: the last change of a key in one
// array wins; between a batch's add and remove arrays, remove wins.
type members struct {
	op       map[string]bool // true: add
	order    []string        // keys in first-seen order
	excluded []source.Exclusion
	rows     int // members looked at
	dups     int // keys named again
}

func newMembers() *members { return &members{op: map[string]bool{}} }

func (m *members) count() int { return len(m.order) + len(m.excluded) }

// key is el's usable key at id, or records an exclusion.
func (m *members) key(el any, id pointer) (string, bool) {
	m.rows++
	v, ok := id.lookup(el)
	if !ok || v == nil {
		m.exclude("", ReasonMissingID, "nothing at "+id.String())
		return "", false
	}
	s, ok := scalar(v)
	switch {
	case !ok:
		m.exclude(jsonType(v), ReasonIDNotString, "at "+id.String())
		return "", false
	case s == "":
		m.exclude("", ReasonEmptyID, "")
		return "", false
	case len(s) > schema.MaxKeyBytes:
		m.exclude(s, ReasonKeyTooLong, "")
		return "", false
	}
	return s, true
}

// set records key's op; a removal that must win over an add of the same
// batch passes override for it.
func (m *members) set(key string, add, override bool) {
	if _, seen := m.op[key]; !seen {
		m.order = append(m.order, key)
	} else if m.dups++; !override {
		return
	}
	m.op[key] = add
}

// exclude records the member key looked at last as excluded.
func (m *members) exclude(value, reason, detail string) {
	m.excluded = append(m.excluded, source.Exclusion{Row: int64(m.rows), Value: printable(value), Reason: reason, Detail: detail})
}

func (m *members) split() (adds, removes []string) {
	for _, k := range m.order {
		if m.op[k] {
			adds = append(adds, k)
		} else {
			removes = append(removes, k)
		}
	}
	return adds, removes
}

// printable cuts v to cohortcsv.MaxValueBytes on a rune boundary.
func printable(v string) string {
	if len(v) <= cohortcsv.MaxValueBytes {
		return v
	}
	cut := cohortcsv.MaxValueBytes
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut] + "…"
}

// ParseAmplitudeWebhook parses an Amplitude cohort webhook (a generic
// webhook destination) for environment env, which the webhook's URL names
// since the body has none: in_cohort says whether users enter or leave the
// cohort, computed_time (Unix seconds) when Amplitude computed it,
// message_id the delivery.
func ParseAmplitudeWebhook(env string, body []byte) (*Batch, error) {
	doc, err := decode(body)
	if err != nil {
		return nil, err
	}
	b := &Batch{Integration: "amplitude", Env: env, ContextKind: DefaultContextKind}
	b.CohortName = optionalString(doc, webhookName)
	b.MessageID = optionalString(doc, webhookMessage)
	if t := optionalString(doc, webhookTime); t != "" {
		sec, err := strconv.ParseInt(t, 10, 64)
		if err != nil || sec < 0 || sec > 1<<40 {
			return nil, &FieldError{Field: webhookTime.String(), Reason: "not Unix seconds"}
		}
		b.Time = time.Unix(sec, 0).UTC()
	}
	v, ok := webhookIn.lookup(doc)
	in, isBool := v.(bool)
	if !ok || !isBool {
		return nil, &FieldError{Field: webhookIn.String(), Reason: "missing or not a boolean"}
	}
	users, err := array(doc, webhookUsers)
	if err != nil {
		return nil, err
	}
	if b.CohortID, err = requiredString(doc, webhookCohort); err != nil {
		return nil, err
	}
	m := newMembers()
	for _, el := range users {
		if key, ok := m.key(el, webhookUserID); ok {
			m.set(key, in, true)
		}
	}
	if err := b.finish(m, webhookCohort.String()); err != nil {
		return nil, err
	}
	return b, nil
}

// Pointers of the Amplitude cohort webhook.
var (
	webhookCohort  = mustPointer("/cohort_id")
	webhookName    = mustPointer("/cohort_name")
	webhookIn      = mustPointer("/in_cohort")
	webhookTime    = mustPointer("/computed_time")
	webhookMessage = mustPointer("/message_id")
	webhookUsers   = mustPointer("/users")
	webhookUserID  = mustPointer("/user_id")
)
