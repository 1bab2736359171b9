package deploy

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/cohortsync/cohortsync/internal/cli"
)

// binary is where the image installs cohortsync, its ENTRYPOINT.
const binary = "/usr/local/bin/cohortsync"

// command is the part of cohortsync's command line a deployment file gives:
// the subcommand path, its flags as typed and the variables it sets.
type command struct {
	where string   // the file and entry, for messages
	args  []string // after the binary: subcommands, then flags and values
	env   []string // variable names
	// extraEnv are variables the process reads without a flag of their
	// own, e.g. the password_env of a stored destination.
	extraEnv map[string]bool
}

// goRuntimeEnv are the Go runtime's own variables a manifest may set for
// any command (runtime package documentation).
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true}

// usage is what a subcommand's --help declares.
type usage struct {
	flags map[string]bool // "--name" and "-x"
	envs  map[string]bool
}

var (
	helpMu    sync.Mutex
	helpCache = map[string]usage{}

	flagLine = regexp.MustCompile(`^\s+(?:(-[A-Za-z]), )?(--[a-z0-9-]+)`)
	envTwin  = regexp.MustCompile(`\[env ([A-Z0-9_]+)\]`)
)

// help runs "cohortsync PATH --help" in-process and collects the flags and
// variables it lists: hidden flags (those a command refuses) are not
// listed, so a deployment using one fails here too.
func help(t *testing.T, path []string) usage {
	t.Helper()
	key := strings.Join(path, " ")
	helpMu.Lock()
	defer helpMu.Unlock()
	if u, ok := helpCache[key]; ok {
		return u
	}
	var out, errOut bytes.Buffer
	noEnv := func(string) (string, bool) { return "", false }
	if code := cli.Main(t.Context(), append(append([]string{}, path...), "--help"), &out, &errOut, noEnv); code != cli.ExitOK {
		t.Fatalf("cohortsync %s --help: exit %d: %s", key, code, errOut.String())
	}
	// An unknown subcommand of a group prints the group's help instead.
	if !strings.Contains(out.String(), "\n  cohortsync "+key+" ") {
		t.Fatalf("cohortsync %s: no such command; its help reads:\n%s", key, out.String())
	}
	u := usage{flags: map[string]bool{}, envs: map[string]bool{}}
	for line := range strings.Lines(out.String()) {
		m := flagLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] != "" {
			u.flags[m[1]] = true
		}
		u.flags[m[2]] = true
		if e := envTwin.FindStringSubmatch(line); e != nil {
			u.envs[e[1]] = true
		}
	}
	if len(u.flags) == 0 {
		t.Fatalf("cohortsync %s --help lists no flags:\n%s", key, out.String())
	}
	helpCache[key] = u
	return u
}

// subcommand splits args into the subcommand path and the rest.
func subcommand(args []string) (path, rest []string) {
	for i, a := range args {
		if strings.HasPrefix(a, "-") {
			return args[:i], args[i:]
		}
	}
	return args, nil
}

// check reports every flag and variable of c that its subcommand lacks,
// and returns the subcommand's usage.
func (c command) check(t *testing.T) usage {
	t.Helper()
	path, rest := subcommand(c.args)
	if len(path) == 0 {
		t.Errorf("%s: no cohortsync subcommand in %q", c.where, c.args)
		return usage{}
	}
	u := help(t, path)
	for _, a := range rest {
		if !strings.HasPrefix(a, "-") {
			continue // a flag's value
		}
		if name, _, _ := strings.Cut(a, "="); !u.flags[name] {
			t.Errorf("%s: cohortsync %s has no flag %s", c.where, strings.Join(path, " "), name)
		}
	}
	for _, e := range c.env {
		if !u.envs[e] && !c.extraEnv[e] && !goRuntimeEnv[e] {
			t.Errorf("%s: cohortsync %s reads no variable %s", c.where, strings.Join(path, " "), e)
		}
	}
	return u
}

// flagValue is the value of flag (any of its names) in args, "" if absent.
func flagValue(args []string, names ...string) string {
	for i, a := range args {
		for _, n := range names {
			if v, ok := strings.CutPrefix(a, n+"="); ok {
				return v
			}
			if a == n && i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	return ""
}

// TestImageEntrypoint pins what the compose file and the manifests assume
// of the image: cohortsync is its entry point, at binary.
func TestImageEntrypoint(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if want := `ENTRYPOINT ["` + binary + `"]`; !strings.Contains(string(b), "\n"+want+"\n") {
		t.Errorf("Dockerfile: no line %s", want)
	}
}

// TestCheckFindsUnknownSettings makes sure the checks can fail: a flag and
// a variable that do not exist, and a subcommand that does not, are caught.
func TestCheckFindsUnknownSettings(t *testing.T) {
	u := help(t, []string{"serve"})
	for _, name := range []string{"--http-addr", "--kafka-brokers"} {
		if !u.flags[name] {
			t.Errorf("serve --help: %s not found", name)
		}
	}
	for _, name := range []string{"KAFKA_BROKERS", "REDIS_URL", "PRODUCER_STATE_DIR", "HTTP_ADDR"} {
		if !u.envs[name] {
			t.Errorf("serve --help: %s not found", name)
		}
	}
	// Refused by serve, so hidden from its help: a deployment setting
	// them would be stopped at start (the flag) or ignored (the variable).
	if u.flags["--redis-prefix"] || u.envs["CONSUMER_REDIS_PREFIX"] {
		t.Error("serve --help lists --redis-prefix / CONSUMER_REDIS_PREFIX, which serve refuses")
	}
	if u := help(t, []string{"mappings", "apply"}); !u.flags["-f"] || !u.flags["--file"] {
		t.Errorf("mappings apply --help: -f, --file not found in %v", u.flags)
	}
	if path, rest := subcommand([]string{"mappings", "apply", "-f", "x"}); strings.Join(path, " ") != "mappings apply" || len(rest) != 2 {
		t.Errorf("subcommand: path %q, rest %q", path, rest)
	}
}
