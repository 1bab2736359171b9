package app

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/cohortsync/cohortsync/internal/progress"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// Process holds the settings of the process itself, shared by every part it
// runs, as opposed to a part's own Config.
type Process struct {
	// LogLevel is the least severe level logged: debug, info, warn or
	// error. Default info.
	LogLevel string
	// LogFormat is text (logfmt-like, for people) or json (for log
	// pipelines). Default text.
	LogFormat string
	// Progress is how sync shows its progress on stderr: progress.Bar,
	// progress.Log or progress.None (progress.Auto is resolved by the
	// command, which knows whether stderr is a terminal). Default "":
	// none. Other commands ignore it.
	Progress progress.Mode
	// MemoryLimit is the Go runtime's soft memory limit for the process
	// (runtime/debug.SetMemoryLimit), in bytes, set by the commands that
	// bind it (sync) unless the GOMEMLIMIT variable sets one; 0 sets none.
	// sync binds it with DefaultSyncMemoryLimit: its live memory is
	// bounded by --sort-chunk-bytes and the events in flight, but with
	// GOGC's default the garbage around them took its peak RSS to 194 MiB
	// at 10M members; with the limit it was 183 MiB at the same code
	// (BENCHMARKS.md; the 326 MiB once reported beside a consumer was the
	// bench measuring its own RSS): the limit makes the collector run
	// sooner as the process nears it, at a little CPU.
	MemoryLimit int64
}

// Defaults of Process.
const (
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
	// DefaultSyncMemoryLimit is sync's MemoryLimit: issue 12's bound on
	// its peak RSS (200 MiB), less room for what the runtime does not
	// count (stacks, the binary).
	DefaultSyncMemoryLimit = 180 << 20
)

// DefaultProcess returns the defaults documented on Process's fields.
func DefaultProcess() Process {
	return Process{LogLevel: DefaultLogLevel, LogFormat: DefaultLogFormat}
}

var levels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// Validate reports every invalid setting as a *setting.Error.
func (p Process) Validate() error {
	var errs []error
	if _, ok := levels[strings.ToLower(p.LogLevel)]; !ok {
		errs = append(errs, setting.Invalid("log-level", p.LogLevel, "one of debug, info, warn, error"))
	}
	if p.LogFormat != "text" && p.LogFormat != "json" {
		errs = append(errs, setting.Invalid("log-format", p.LogFormat, "text or json"))
	}
	if err := p.Progress.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.MemoryLimit < 0 {
		errs = append(errs, setting.Invalid("memory-limit", p.MemoryLimit, "0 (none) or a number of bytes"))
	}
	return errors.Join(errs...)
}

// applyMemoryLimit sets MemoryLimit as the runtime's soft memory limit,
// unless it is 0 or env has GOMEMLIMIT (the runtime read that one at
// start, and it wins).
func (p Process) applyMemoryLimit(env func(string) (string, bool)) {
	if _, set := env("GOMEMLIMIT"); set || p.MemoryLimit <= 0 {
		return
	}
	debug.SetMemoryLimit(p.MemoryLimit)
}

// Logger returns the process's logger writing to w.
func (p Process) Logger(w io.Writer) (*slog.Logger, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("logger: %w", err)
	}
	opts := &slog.HandlerOptions{Level: levels[strings.ToLower(p.LogLevel)]}
	if p.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
