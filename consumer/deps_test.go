package consumer

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoHTTPInTheConsumer: the consumer, its freshness tracker and the
// replay, check and rebuild packages serve nothing and so import no HTTP
// stack; the process's one server
// (internal/httpserver) mounts their metrics and probes. The propagation
// package imports net/http too, hence TraceExtractor.
func TestNoHTTPInTheConsumer(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	for _, pkg := range []string{"github.com/cohortsync/cohortsync/consumer", "github.com/cohortsync/cohortsync/consumer/freshness",
		"github.com/cohortsync/cohortsync/consumer/rewind", "github.com/cohortsync/cohortsync/consumer/drift"} {
		out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		var importers []string
		for line := range strings.Lines(string(out)) {
			fields := strings.Fields(line)
			for _, imp := range fields[1:] {
				if imp == "net/http" {
					importers = append(importers, fields[0])
				}
			}
		}
		if len(importers) > 0 {
			t.Errorf("%s depends on net/http, imported by %s", pkg, strings.Join(importers, ", "))
		}
	}
}
