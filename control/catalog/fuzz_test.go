package catalog

import (
	"os"
	"strings"
	"testing"
)

// FuzzDecode: no mapping file makes Decode panic; a refused file is
// refused with every problem naming the file (and a line where one
// applies), and an accepted one holds only entries that pass the checks
// a store relies on (names unique, every mapping's destinations declared).
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"testdata/mappings.yaml", "testdata/bad.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("destinations: []\nmappings: []\n"))
	f.Add([]byte("mappings:\n  - name: m\n    source: {push: true}\n    segment: s\n    destinations: [d]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode("f.yaml", data)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "f.yaml") {
					t.Fatalf("a problem that does not name the file: %q", line)
				}
			}
			return
		}
		dests := map[string]bool{}
		for _, d := range c.Destinations {
			if d.Name == "" || dests[d.Name] {
				t.Fatalf("accepted a destination without a name of its own: %+v", d)
			}
			dests[d.Name] = true
		}
		maps := map[string]bool{}
		for _, m := range c.Mappings {
			if m.Name == "" || maps[m.Name] {
				t.Fatalf("accepted a mapping without a name of its own: %+v", m)
			}
			maps[m.Name] = true
			for _, d := range m.Destinations {
				if !dests[d] {
					t.Fatalf("accepted mapping %q into undeclared destination %q", m.Name, d)
				}
			}
		}
	})
}
