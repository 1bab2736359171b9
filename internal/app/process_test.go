package app

import (
	"bytes"
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
