package testenv

import "testing"

// ValidateCase is one row of a table test of a Validate method: Change
// spoils a valid value, Want is the exact error text it must give ("" for
// still valid). Exact text, because the text is what users read.
type ValidateCase[T any] struct {
	Name   string
	Change func(*T)
	Want   string
}

// RunValidate runs each case as a subtest on a fresh value from valid (a
// function, so that no case sees another's change through a shared slice).
func RunValidate[T interface{ Validate() error }](t *testing.T, valid func() T, cases []ValidateCase[T]) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			v := valid()
			tt.Change(&v)
			got := ""
			if err := v.Validate(); err != nil {
				got = err.Error()
			}
			if got != tt.Want {
				t.Fatalf("Validate() = %q, want %q", got, tt.Want)
			}
		})
	}
}

// ErrText is err's message, "" for nil: what a table of exact error texts
// compares.
func ErrText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
