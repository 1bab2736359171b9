package envflag

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName returns the environment twin of a flag: upper case, dashes become
// underscores, with prefix in front ("" for none).
func EnvName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then sets every flag that was not given on the
// command line from its environment twin, if that is set. Command-line flags
// win over the environment. The flags' usage text gains "(env NAME)".
// lookup is os.LookupEnv in production; tests pass a map's lookup.
func Parse(fs *flag.FlagSet, args []string, prefix string, lookup func(string) (string, bool)) error {
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "(env ") {
			f.Usage += " (env " + EnvName(prefix, f.Name) + ")"
		}
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		name := EnvName(prefix, f.Name)
		if v, ok := lookup(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment variable %s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

// OSLookup is os.LookupEnv, named for call sites.
var OSLookup = os.LookupEnv

// StringList is a flag.Value for comma-separated lists (--kafka-brokers a:1,b:2).
type StringList []string

func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set splits on commas, trims blanks and drops empty items.
func (l *StringList) Set(s string) error {
	*l = (*l)[:0]
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// StringMap is a flag.Value for comma-separated key=value pairs
// (--env-prefix production=ld-prod,staging=ld-staging).
type StringMap map[string]string

func (m *StringMap) String() string {
	parts := make([]string, 0, len(*m))
	for k, v := range *m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

// Set parses key=value pairs; a pair without '=' or with an empty side is an error.
func (m *StringMap) Set(s string) error {
	out := StringMap{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return fmt.Errorf("%q is not key=value", p)
		}
		if _, dup := out[k]; dup {
			return fmt.Errorf("key %q given twice", k)
		}
		out[k] = v
	}
	*m = out
	return nil
}
