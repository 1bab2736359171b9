package producer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/pkg/envflag"
)

// Exit codes of Main.
const (
	ExitOK    = 0
	ExitError = 1 // the sync failed
	ExitUsage = 2 // bad command line or configuration
)

// requestEnv maps the environment twins of the per-sync flags, which
// envflag would name ENV, SEGMENT, CSV..., to SYNC_-prefixed names: ENV in
// particular is a shell variable of its own (POSIX sh reads it).
var requestEnv = map[string]string{
	"ENV": "SYNC_ENV", "SEGMENT": "SYNC_SEGMENT", "CSV": "SYNC_CSV", "ID_COLUMN": "SYNC_ID_COLUMN",
	"CONTEXT_KIND": "SYNC_CONTEXT_KIND", "GENERATION": "SYNC_GENERATION", "SOURCE": "SYNC_SOURCE",
}

const usageText = `usage: producer sync --env ENV --segment SEGMENT --csv FILE [flags]

Publishes the membership changes between the segment's last synced snapshot
and the cohort CSV FILE (plain or gzip) to Kafka, then records FILE as the
segment's snapshot. Run "producer sync --help" for every flag; each has an
environment twin, shown in its help (flags win over the environment).
`

// Main runs the producer command line with args (without the program name)
// and returns the exit code. lookup reads the environment (os.LookupEnv).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return ExitUsage
	}
	switch args[0] {
	case "sync":
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "producer: unknown command %q\n%s", args[0], usageText)
		return ExitUsage
	}

	cfg := DefaultConfig()
	req := SyncRequest{Generation: 1, ContextKind: "user", IDColumn: cohortcsv.DefaultIDColumn, Source: "csv"}
	var csvPath string
	fs := flag.NewFlagSet("producer sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText+"\nflags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&req.Env, "env", "", "environment of the segment (required) (env SYNC_ENV)")
	fs.StringVar(&req.Segment, "segment", "", "segment key, e.g. amplitude-7khm89cz (required) (env SYNC_SEGMENT)")
	fs.StringVar(&csvPath, "csv", "", "cohort CSV file, plain or gzip (required) (env SYNC_CSV)")
	fs.StringVar(&req.IDColumn, "id-column", req.IDColumn, "CSV column holding the context key (env SYNC_ID_COLUMN)")
	fs.StringVar(&req.ContextKind, "context-kind", req.ContextKind, "context kind of the members (env SYNC_CONTEXT_KIND)")
	fs.IntVar(&req.Generation, "generation", req.Generation, "segment generation, >= 1 (env SYNC_GENERATION)")
	fs.StringVar(&req.Source, "source", req.Source, "source recorded in the events (env SYNC_SOURCE)")
	cfg.RegisterFlags(fs)
	remapped := func(name string) (string, bool) {
		if n, ok := requestEnv[name]; ok {
			name = n
		}
		return lookup(name)
	}
	if err := envflag.Parse(fs, args[1:], "", remapped); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		fmt.Fprintf(stderr, "producer: %v\n", err)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "producer: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return ExitUsage
	}
	var problems []error
	if csvPath == "" {
		problems = append(problems, errors.New("--csv: required"))
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err)
	}
	if req.Generation == 0 { // the API reads 0 as the default; on the command line it is a mistake
		problems = append(problems, errors.New("--generation: must be >= 1, got 0"))
	}
	// The request is validated without its input here; Sync checks again.
	req.Input = strings.NewReader("")
	if err := req.Validate(); err != nil {
		problems = append(problems, err)
	}
	if err := errors.Join(problems...); err != nil {
		fmt.Fprintf(stderr, "producer: invalid configuration:\n%v\n", indent(err.Error()))
		return ExitUsage
	}

	f, err := os.Open(csvPath)
	if err != nil {
		fmt.Fprintf(stderr, "producer: --csv: %v\n", err)
		return ExitUsage
	}
	defer f.Close() // read-only
	req.Input, req.InputName = f, csvPath

	// The run's span is the parent of the trace context every event carries
	// (a no-op unless a tracer provider is installed).
	ctx, span := otel.Tracer("github.com/cohortsync/cohortsync/producer").Start(ctx, "sync",
		trace.WithAttributes(attribute.String("cohortsync.env", req.Env), attribute.String("cohortsync.segment", req.Segment)))
	defer span.End()
	sum, err := Sync(ctx, cfg, req)
	if err != nil {
		// The partial summary is not printed: its counts are what the diff
		// enumerated, not what Kafka acknowledged. The next sync of the
		// segment republishes whatever was pending.
		span.RecordError(err)
		span.SetStatus(codes.Error, "sync failed")
		fmt.Fprintf(stderr, "producer: %v\n", err)
		return ExitError
	}
	span.SetAttributes(attribute.Int64("cohortsync.added", sum.Added), attribute.Int64("cohortsync.removed", sum.Removed))
	if _, err := sum.WriteTo(stdout); err != nil {
		fmt.Fprintf(stderr, "producer: write summary: %v\n", err)
		return ExitError
	}
	return ExitOK
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
