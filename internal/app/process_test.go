package app

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

func TestProcessValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Process
		want string
	}{
		{"defaults", DefaultProcess(), ""},
		{"json at debug, level in capitals", Process{LogLevel: "DEBUG", LogFormat: "json"}, ""},
		{"unknown level", Process{LogLevel: "loud", LogFormat: "text"}, `--log-level="loud": want one of debug, info, warn, error`},
		{"unknown format", Process{LogLevel: "info", LogFormat: "xml"}, `--log-format="xml": want text or json`},
		{"both reported", Process{}, `--log-level="": want one of debug, info, warn, error` + "\n" + `--log-format="": want text or json`},
		{"negative memory limit", Process{LogLevel: "info", LogFormat: "text", MemoryLimit: -1}, `--memory-limit="-1": want 0 (none) or a number of bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := tc.p.Validate(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoggerHonoursLevelAndFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := Process{LogLevel: "warn", LogFormat: "json"}.Logger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, `"msg":"shown","k":"v"`) {
		t.Fatalf("log output %q", out)
	}
	if _, err := (Process{LogLevel: "x", LogFormat: "text"}).Logger(&buf); err == nil {
		t.Fatal("Logger accepted an invalid level")
	}
}

// TestApplyMemoryLimit: sync's soft memory limit is set unless it is 0 or
// GOMEMLIMIT (which the runtime already applied) says otherwise.
func TestApplyMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1) // reads it
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	for _, tc := range []struct {
		name  string
		limit int64
		env   map[string]string
		want  int64
	}{
		{"set", 150 << 20, nil, 150 << 20},
		{"GOMEMLIMIT wins", 150 << 20, map[string]string{"GOMEMLIMIT": "1GiB"}, before},
		{"0 sets none", 0, nil, before},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(before)
			Process{MemoryLimit: tc.limit}.applyMemoryLimit(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if got := debug.SetMemoryLimit(-1); got != tc.want {
				t.Errorf("memory limit %d, want %d", got, tc.want)
			}
		})
	}
}
