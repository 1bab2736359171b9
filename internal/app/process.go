package app

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
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
}

// Defaults of Process.
const (
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
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
	return errors.Join(errs...)
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
