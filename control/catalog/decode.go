package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads and decodes the catalog file at path; see Decode.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return Decode(path, data)
}

// Decode reads a catalog file: a YAML mapping with a destinations list, a
// mappings list and an amplitude_projects list. file names it in errors. On any problem it returns every
// problem found, each an *Error, joined in line order, and no catalog: a
// catalog is applied whole or not at all.
func Decode(file string, data []byte) (*Catalog, error) {
	d := &decoder{file: file}
	c := d.decode(data)
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b *Error) int { return a.Line - b.Line })
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// decoder collects every problem of one file.
type decoder struct {
	file string
	errs []*Error
}

func (d *decoder) add(line int, entry Entry, field, problem string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Entry: entry, Field: field, Problem: fmt.Sprintf(problem, args...)})
}

// yamlLine finds the line in yaml's syntax errors ("yaml: line 3: ...").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (d *decoder) decode(data []byte) *Catalog {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			d.add(line, Entry{}, "", "malformed YAML: %s", m[2])
		} else {
			d.add(0, Entry{}, "", "malformed YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		d.add(next.Line, Entry{}, "", "a second YAML document: want one")
		return nil
	}
	f := &file{}
	if len(doc.Content) > 0 {
		d.fields(doc.Content[0], Entry{}, "", []string{"destinations", "mappings", "amplitude_projects"}, func(key string, v *yaml.Node) {
			switch key {
			case "destinations":
				d.list(v, "destination", func(n *yaml.Node, e Entry) { f.dests = append(f.dests, d.destination(n, e)) })
			case "mappings":
				d.list(v, "mapping", func(n *yaml.Node, e Entry) { f.maps = append(f.maps, d.mapping(n, e)) })
			default:
				d.list(v, "amplitude_project", func(n *yaml.Node, e Entry) { f.projects = append(f.projects, d.project(n, e)) })
			}
		})
	}
	d.check(f)
	return f.catalog()
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

// refused are fields that are known only to be refused with advice (a
// password in the file, see decoder.redis; a webhook secret, see
// decoder.webhook): fields passes them to its
// caller, and never offers them in "want one of".
var refused = map[string]bool{"redis.password": true, "notify.webhook.secret": true}

// offered is known without the refused fields, for messages.
func offered(path string, known []string) string {
	var out []string
	for _, k := range known {
		if !refused[path+k] {
			out = append(out, k)
		}
	}
	return strings.Join(out, ", ")
}

// fields calls f with each key of mapping n and its value, in file order,
// refusing keys that are not known and keys given twice. It returns the
// line of each key, for the checks that follow.
func (d *decoder) fields(n *yaml.Node, e Entry, path string, known []string, f func(key string, v *yaml.Node)) map[string]int {
	n = resolve(n)
	seen := map[string]int{}
	if n.Kind != yaml.MappingNode {
		d.add(n.Line, e, strings.TrimSuffix(path, "."), "want a mapping of %s, not %s", offered(path, known), kindName(n))
		return seen
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		switch {
		case !slices.Contains(known, k.Value):
			d.add(k.Line, e, path+k.Value, "unknown field, want one of %s", offered(path, known))
		case seen[k.Value] > 0:
			d.add(k.Line, e, path+k.Value, "given twice (also at line %d)", seen[k.Value])
		default:
			seen[k.Value] = k.Line
			f(k.Value, v)
		}
	}
	return seen
}

// list calls f with each item of list n, named kind in errors.
func (d *decoder) list(n *yaml.Node, kind string, f func(*yaml.Node, Entry)) {
	n = resolve(n)
	if n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.add(n.Line, Entry{}, kind+"s", "want a list, not %s", kindName(n))
		return
	}
	for i, item := range n.Content {
		item = resolve(item)
		e := Entry{Kind: kind, Index: i + 1, Name: entryName(item)}
		f(item, e)
	}
}

// entryName is the entry's name when it has a valid one, so that every
// error of the entry, even one on a line above its name, names it.
func entryName(n *yaml.Node) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if v := resolve(n.Content[i+1]); n.Content[i].Value == "name" && v.Kind == yaml.ScalarNode && keyPattern.MatchString(v.Value) {
			return v.Value
		}
	}
	return ""
}

// scalar is the text of a single value; "" for null. It reports a list or
// a mapping given instead.
func (d *decoder) scalar(v *yaml.Node, e Entry, field, want string) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		d.add(v.Line, e, field, "want %s, not %s", want, kindName(v))
		return "", false
	}
	if v.Tag == "!!null" {
		return "", true
	}
	return v.Value, true
}

// text decodes a string that must satisfy ok; "" is left to the caller's
// check for required fields.
func (d *decoder) text(v *yaml.Node, e Entry, field string, ok func(string) bool, want string) string {
	s, good := d.scalar(v, e, field, want)
	if good && s != "" && !ok(s) {
		d.add(v.Line, e, field, "%s", invalid(s, "%s", want))
		return ""
	}
	return s
}

// texts decodes a list of strings, each satisfying ok, with the line of each.
func (d *decoder) texts(v *yaml.Node, e Entry, field string, ok func(string) bool, want string) (vals []string, lines []int) {
	if v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		d.add(v.Line, e, field, "want a list of %s, not %s", want, kindName(v))
		return nil, nil
	}
	for _, item := range v.Content {
		item = resolve(item)
		if s := d.text(item, e, field, ok, want); s != "" {
			vals, lines = append(vals, s), append(lines, item.Line)
		} else if item.Kind == yaml.ScalarNode && item.Value == "" {
			d.add(item.Line, e, field, "%s", invalid("", "%s", want))
		}
	}
	return vals, lines
}

// value decodes a typed single value into dst; a value of the wrong type is
// reported as not of the form want.
func (d *decoder) value(v *yaml.Node, e Entry, field string, dst any, want string) bool {
	if _, ok := d.scalar(v, e, field, want); !ok {
		return false
	}
	if err := v.Decode(dst); err != nil || v.Tag == "!!null" {
		d.add(v.Line, e, field, "%s", invalid(v.Value, "%s", want))
		return false
	}
	return true
}

// required reports a required field the entry lacks.
func (d *decoder) required(n *yaml.Node, e Entry, field, want string) {
	d.add(n.Line, e, field, "required, want %s", want)
}
