package setting

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Set binds settings to the flags of one command and to their environment
// twins. Declare every setting, let the command line parse (pflag), then
// call ApplyEnv; Explain rewrites a component's validation errors to name
// what the user set.
type Set struct {
	fs      *pflag.FlagSet
	env     map[string]string // flag name → environment twin
	nonZero map[string]bool
	given   map[string]string // flag name → "--flag" or "ENV", when set by the user
}

// NewSet binds settings to fs.
func NewSet(fs *pflag.FlagSet) *Set {
	return &Set{fs: fs, env: map[string]string{}, nonZero: map[string]bool{}, given: map[string]string{}}
}

// Option changes how one setting is declared.
type Option func(*Set, string)

// NonZero rejects an explicit zero (0, 0s, "") given for a setting whose
// zero value in the Config means "the default": in code a zero field takes
// the default, on the command line it is a mistake.
func NonZero(s *Set, name string) { s.nonZero[name] = true }

// value is a flag value of type T whose parse errors are *Error.
type value[T any] struct {
	p      *T
	name   string
	typ    string
	want   string
	parse  func(string) (T, bool)
	format func(T) string
	isBool bool
}

func (v *value[T]) Set(s string) error {
	x, ok := v.parse(s)
	if !ok {
		return &Error{Name: v.name, Value: s, Want: v.want}
	}
	*v.p = x
	return nil
}

func (v *value[T]) String() string {
	if v.p == nil {
		return ""
	}
	return v.format(*v.p)
}

func (v *value[T]) Type() string { return v.typ }

// IsBoolFlag lets "--flag" alone mean true (pflag reads NoOptDefVal).
func (v *value[T]) IsBoolFlag() bool { return v.isBool }

func bind[T any](s *Set, v *value[T], env, usage string, opts []Option) {
	if env != "" {
		s.env[v.name] = env
		usage += " [env " + env + "]"
	}
	f := s.fs.VarPF(v, v.name, "", usage)
	if v.isBool {
		f.NoOptDefVal = "true"
	}
	for _, o := range opts {
		o(s, v.name)
	}
}

// String declares a string setting; env "" means no environment twin.
func (s *Set) String(p *string, name, env, usage string, opts ...Option) {
	bind(s, &value[string]{p: p, name: name, typ: "string", want: "a string",
		parse: func(x string) (string, bool) { return x, true }, format: func(x string) string { return x }}, env, usage, opts)
}

// Int declares an integer setting.
func (s *Set) Int(p *int, name, env, usage string, opts ...Option) {
	bind(s, &value[int]{p: p, name: name, typ: "int", want: "an integer",
		parse: func(x string) (int, bool) {
			n, err := strconv.Atoi(strings.TrimSpace(x))
			return n, err == nil
		}, format: strconv.Itoa}, env, usage, opts)
}

// Int64 declares a 64-bit integer setting (byte sizes).
func (s *Set) Int64(p *int64, name, env, usage string, opts ...Option) {
	bind(s, &value[int64]{p: p, name: name, typ: "int", want: "an integer",
		parse: func(x string) (int64, bool) {
			n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			return n, err == nil
		}, format: func(n int64) string { return strconv.FormatInt(n, 10) }}, env, usage, opts)
}

// Float64 declares a decimal setting.
func (s *Set) Float64(p *float64, name, env, usage string, opts ...Option) {
	bind(s, &value[float64]{p: p, name: name, typ: "float", want: "a decimal number such as 0.5",
		parse: func(x string) (float64, bool) {
			f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			return f, err == nil
		}, format: func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }}, env, usage, opts)
}

// Duration declares a duration setting; a bare number is refused (5 means
// nothing without a unit).
func (s *Set) Duration(p *time.Duration, name, env, usage string, opts ...Option) {
	bind(s, &value[time.Duration]{p: p, name: name, typ: "duration", want: "a duration with a unit, such as 500ms, 5s or 2m",
		parse: func(x string) (time.Duration, bool) {
			d, err := time.ParseDuration(strings.TrimSpace(x))
			return d, err == nil
		}, format: time.Duration.String}, env, usage, opts)
}

// Bool declares a boolean setting; "--flag" alone means true.
func (s *Set) Bool(p *bool, name, env, usage string, opts ...Option) {
	bind(s, &value[bool]{p: p, name: name, typ: "bool", want: "true or false", isBool: true,
		parse: func(x string) (bool, bool) {
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			return b, err == nil
		}, format: strconv.FormatBool}, env, usage, opts)
}

// StringList declares a comma-separated list (a:1,b:2): blanks around items
// are trimmed and empty items dropped.
func (s *Set) StringList(p *[]string, name, env, usage string, opts ...Option) {
	bind(s, &value[[]string]{p: p, name: name, typ: "list", want: "a comma-separated list",
		parse: func(x string) ([]string, bool) {
			var out []string
			for item := range strings.SplitSeq(x, ",") {
				if item = strings.TrimSpace(item); item != "" {
					out = append(out, item)
				}
			}
			return out, true
		}, format: func(l []string) string { return strings.Join(l, ",") }}, env, usage, opts)
}

// StringMap declares comma-separated key=value pairs (a=1,b=2); a pair
// without "=", with an empty side or a repeated key is refused.
func (s *Set) StringMap(p *map[string]string, name, env, usage string, opts ...Option) {
	bind(s, &value[map[string]string]{p: p, name: name, typ: "pairs", want: "comma-separated key=value pairs with distinct keys",
		parse: func(x string) (map[string]string, bool) {
			out := map[string]string{}
			for pair := range strings.SplitSeq(x, ",") {
				if pair = strings.TrimSpace(pair); pair == "" {
					continue
				}
				k, v, ok := strings.Cut(pair, "=")
				k, v = strings.TrimSpace(k), strings.TrimSpace(v)
				if _, dup := out[k]; !ok || k == "" || v == "" || dup {
					return nil, false
				}
				out[k] = v
			}
			return out, true
		}, format: func(m map[string]string) string {
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for i, k := range keys {
				keys[i] = k + "=" + m[k]
			}
			return strings.Join(keys, ",")
		}}, env, usage, opts)
}

// Env is the environment twin of flag name, "" if it has none.
func (s *Set) Env(name string) string { return s.env[name] }

// ApplyEnv sets every flag the command line left unset from its
// environment twin, when lookup finds it, and checks the NonZero settings
// the user gave. Call it after the flags are parsed. Every problem is
// reported, each naming the variable or flag the user set.
func (s *Set) ApplyEnv(lookup func(string) (string, bool)) error {
	var errs []error
	s.fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			s.given[f.Name] = "--" + f.Name
			return
		}
		env, ok := s.env[f.Name]
		if !ok {
			return
		}
		v, ok := lookup(env)
		if !ok {
			return
		}
		s.given[f.Name] = env
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, err)
		}
	})
	s.fs.VisitAll(func(f *pflag.Flag) {
		if _, given := s.given[f.Name]; !given || !s.nonZero[f.Name] {
			return
		}
		if v := f.Value.String(); v == "" || v == "0" || v == "0s" {
			errs = append(errs, &Error{Name: f.Name, Value: v, Want: "a value other than zero (leave it unset for the default " + f.DefValue + ")"})
		}
	})
	return s.Explain(errors.Join(errs...))
}

// Given reports whether the user set flag name, on the command line or in
// the environment.
func (s *Set) Given(name string) bool {
	_, ok := s.given[name]
	return ok
}

// Explain returns err with the Source of every *Error in it set to what the
// user set: the flag or the variable, or for a setting left unset both
// ("--kafka-brokers or KAFKA_BROKERS"). Other errors pass unchanged; a
// setting already reported as given zero by ApplyEnv is not reported again.
func (s *Set) Explain(err error) error {
	if err == nil {
		return nil
	}
	leaves := Leaves(err)
	out := make([]error, 0, len(leaves))
	for _, e := range leaves {
		var se *Error
		if !errors.As(e, &se) {
			out = append(out, e)
			continue
		}
		c := *se
		if c.Source == "" { // set: an environment-only setting, e.g. OTEL_TRACES_EXPORTER
			c.Source = s.source(c.Name)
		}
		out = append(out, &c)
	}
	return errors.Join(out...)
}

func (s *Set) source(name string) string {
	if src, ok := s.given[name]; ok {
		return src
	}
	if s.fs.Lookup(name) == nil {
		return "--" + name // not a flag of this command: still the canonical name
	}
	if env := s.env[name]; env != "" {
		return fmt.Sprintf("--%s or %s", name, env)
	}
	return "--" + name
}

// FlagError rewrites an error of the command-line parse (pflag wraps the
// value's *Error) to name the flag as typed; other errors pass unchanged.
func FlagError(err error) error {
	var se *Error
	if !errors.As(err, &se) {
		return err
	}
	c := *se
	c.Source = "--" + c.Name
	return &c
}
