package receiver

import (
	"fmt"
	"strconv"
	"strings"
)

// pointer is a parsed JSON pointer (RFC 6901): its reference tokens,
// unescaped. The empty pointer "" is the whole document.
type pointer []string

// parsePointer parses p; it fails on a pointer that does not start with
// "/" or holds a "~" not followed by 0 or 1.
func parsePointer(p string) (pointer, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("JSON pointer %q does not start with /", p)
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		if !strings.Contains(s, "~") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(s); j++ {
			if s[j] != '~' {
				b.WriteByte(s[j])
				continue
			}
			if j+1 == len(s) || (s[j+1] != '0' && s[j+1] != '1') {
				return nil, fmt.Errorf("JSON pointer %q: ~ must be followed by 0 or 1", p)
			}
			b.WriteByte("~/"[s[j+1]-'0'])
			j++
		}
		parts[i] = b.String()
	}
	return parts, nil
}

// mustPointer parses a pointer of a built-in declaration.
func mustPointer(p string) pointer {
	ptr, err := parsePointer(p)
	if err != nil {
		panic(err)
	}
	return ptr
}

// String writes the pointer back in RFC 6901 form, for error messages.
func (p pointer) String() string {
	var b strings.Builder
	for _, t := range p {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// lookup returns the value at p in doc (decoded by encoding/json with
// UseNumber) and whether it exists. An array index must be a decimal
// without leading zeros, as RFC 6901 requires.
func (p pointer) lookup(doc any) (any, bool) {
	v := doc
	for _, t := range p {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[t]; !ok {
				return nil, false
			}
		case []any:
			if t == "" || (len(t) > 1 && t[0] == '0') {
				return nil, false
			}
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}
