package catalog

import (
	"fmt"
	"strconv"
	"strings"
)

// Entry names the entry of the file a problem is in.
type Entry struct {
	// Kind is "destination" or "mapping"; empty for the file's top level.
	Kind string
	// Name is the entry's name; empty when the entry has no valid name, and
	// then Index identifies it.
	Name string
	// Index is the entry's position in its list, from 1.
	Index int
}

func (e Entry) String() string {
	switch {
	case e.Kind == "":
		return ""
	case e.Name != "":
		return fmt.Sprintf("%s %q", e.Kind, e.Name)
	}
	return e.Kind + " #" + strconv.Itoa(e.Index)
}

// Error is one problem of a catalog file. Decode joins every one it finds
// with errors.Join; errors.As or Errors reach each.
type Error struct {
	// File is the file's name as given to Decode.
	File string
	// Line is the line of the offending value, from 1; 0 when the problem
	// has no line (an empty document).
	Line int
	// Entry is the destination or mapping; zero at the top level.
	Entry Entry
	// Field is the field's path within the entry, e.g. "schedule" or
	// "redis.url"; empty for a problem of the whole entry or file.
	Field string
	// Problem says what is wrong, with the offending value quoted when
	// there is one: `"every hour": want one-time, hourly, ...`.
	Problem string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	for _, part := range [...]string{e.Entry.String(), e.Field, e.Problem} {
		if part != "" {
			b.WriteString(": ")
			b.WriteString(part)
		}
	}
	return b.String()
}

// Errors returns each *Error of an error returned by Decode, in file order.
func Errors(err error) []*Error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		if e, ok := err.(*Error); ok {
			return []*Error{e}
		}
		return nil
	}
	var out []*Error
	for _, e := range j.Unwrap() {
		out = append(out, Errors(e)...)
	}
	return out
}

// invalid is the Problem of a value that is not of the form want.
func invalid(value any, want string, args ...any) string {
	return fmt.Sprintf("%q: want ", fmt.Sprint(value)) + fmt.Sprintf(want, args...)
}
