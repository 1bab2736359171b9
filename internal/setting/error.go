package setting

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one invalid setting: which, the value given, and the form
// expected. Components return it (joined with errors.Join when there are
// several); the command line fills Source.
type Error struct {
	// Name is the setting's flag name without dashes, e.g. "batch-size".
	Name string
	// Value is the offending value as given; "" with Missing.
	Value string
	// Missing is set when a required setting has no value.
	Missing bool
	// Want is the expected form, e.g. "an integer between 1 and 100000".
	Want string
	// Source is how the user set it: "--batch-size" or
	// "CONSUMER_BATCH_SIZE". Empty: rendered as the flag.
	Source string
}

func (e *Error) Error() string {
	src := e.Source
	if src == "" {
		src = "--" + e.Name
	}
	if e.Missing {
		return fmt.Sprintf("%s: required, want %s", src, e.Want)
	}
	return fmt.Sprintf("%s=%q: want %s", src, e.Value, e.Want)
}

// Invalid returns the error for setting name holding value, which is
// rendered with %v (durations as 5s, lists joined by commas).
func Invalid(name string, value any, want string, args ...any) *Error {
	return &Error{Name: name, Value: format(value), Want: fmt.Sprintf(want, args...)}
}

// Missing returns the error for a required setting left unset.
func Missing(name string, want string, args ...any) *Error {
	return &Error{Name: name, Missing: true, Want: fmt.Sprintf(want, args...)}
}

// maxValue bounds the value quoted in an error: a 1 MiB value pasted into
// a variable by mistake should not become a 1 MiB log line.
const maxValue = 128

func format(v any) string {
	var s string
	switch x := v.(type) {
	case []string:
		s = strings.Join(x, ",")
	case string:
		s = x
	default:
		s = fmt.Sprint(v)
	}
	if len(s) > maxValue {
		s = strings.ToValidUTF8(s[:maxValue], "") + "..."
	}
	return s
}

// Errors returns every *Error in err's tree (errors.Join nesting and %w
// wrapping), in order.
func Errors(err error) []*Error {
	var out []*Error
	walk(err, func(e error) {
		var se *Error
		if errors.As(e, &se) {
			out = append(out, se)
		}
	})
	return out
}

// walk calls f on every leaf of err's errors.Join tree.
func walk(err error, f func(error)) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			walk(e, f)
		}
		return
	}
	f(err)
}

// Leaves flattens err's errors.Join tree into its leaves.
func Leaves(err error) []error {
	var out []error
	walk(err, func(e error) { out = append(out, e) })
	return out
}
