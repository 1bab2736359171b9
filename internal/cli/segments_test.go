package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestSegmentsCommands runs the segments commands end to end against the
// test's Kafka and Redis, with serve's consumer applying the topic: a
// mapping's segment refuses direct writes naming the mapping; a list
// segment takes add, remove and import, which the consumer applies; list,
// show, show --ld-json, export and the run history report them.
func TestSegmentsCommands(t *testing.T) {
	w := newServeWorld(t, "alice", "bob")
	ctx, env, must, name, dir, redisURL := w.ctx, w.env, w.must, w.name, w.dir, w.redisURL
	list := filepath.Join(dir, "vips.csv")
	if err := os.WriteFile(list, []byte("user_id,plan\ndave,pro\n,free\nalice,pro\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	out := must("add", "segments", "add", "vips", "--destination", "production", "alice", "bob", "carol")
	if !strings.Contains(out, "segment vips, destination production (add of a list segment, trigger manual):") || !strings.Contains(out, "added       3\n") {
		t.Errorf("add's output:\n%s", out)
	}
	must("remove", "segments", "remove", "vips", "--destination", "production", "bob", "carol")
	out = must("import", "segments", "import", "vips", "--destination", "production", list)
	for _, w := range []string{"added       1\n", "removed     0\n", "unchanged   1\n", "excluded    1 (empty_id 1)"} {
		if !strings.Contains(out, w) {
			t.Errorf("import's output lacks %q:\n%s", w, out)
		}
	}
	export := func(seg string) string {
		path := filepath.Join(dir, seg+"-export.csv")
		must("export", "segments", "export", seg, "--destination", "production", "--out", path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	testenv.Eventually(t, time.Minute, "the edits applied", func() bool { return export("vips") == "user_id\nalice\ndave\n" })
	testenv.Eventually(t, time.Minute, "the mapping's run applied", func() bool { return export("beta-users") == "user_id\nalice\nbob\n" })

	for _, op := range [][]string{{"add", "mallory"}, {"remove", "alice"}, {"import", list}} {
		code, _, stderr := run(t, ctx, append([]string{"segments", op[0], "beta-users", "--destination", "production"}, op[1:]...), env)
		if code != ExitError || !strings.Contains(stderr, op[0]+` refused: segment "beta-users" in destination "production" is synced by mapping "beta"`) {
			t.Errorf("segments %s of a synced segment: exit %d\n%s", op[0], code, stderr)
		}
	}

	out = must("list", "segments", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SEGMENT ") ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "beta-users production 1 user csv beta 2 ") ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[2]), " "), "vips production 1 user list - 2 ") {
		t.Errorf("segments list:\n%s", out)
	}
	out = must("show", "segments", "show", "vips")
	for _, w := range []string{"segment vips, destination production (environment production, prefix " + name + "-prod)\n",
		"  source        list\n", "  mapping       none: a list segment", "  ref           vips.g1\n", "  members       2\n", "  synchronized  20"} {
		if !strings.Contains(out, w) {
			t.Errorf("segments show lacks %q:\n%s", w, out)
		}
	}
	out = must("show --ld-json", "segments", "show", "beta-users", "--ld-json")
	if !strings.Contains(out, `"key": "beta-users",`) || !strings.Contains(out, `"unbounded": true,`) ||
		!strings.Contains(out, `"unboundedContextKind": "user",`) || !strings.Contains(out, `"generation": 1,`) {
		t.Errorf("segments show --ld-json:\n%s", out)
	}
	out = must("list --output json", "segments", "list", "--output", "json", "--destination", "production")
	var segs []struct {
		Key, Source, Mapping string
		Members              int64
		LastRun              string `json:"last_run"`
	}
	if err := json.Unmarshal([]byte(out), &segs); err != nil || len(segs) != 2 || segs[0].Key != "beta-users" || segs[0].Mapping != "beta" ||
		segs[1].Key != "vips" || segs[1].Source != "list" || segs[1].Members != 2 || segs[1].LastRun == "" {
		t.Errorf("segments list --output json = %+v, %v:\n%s", segs, err, out)
	}
	// As an older release left it: no segments index. The mapping's
	// segment is still listed; reindex finds the list segment again.
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(opts)
	defer direct.Close()
	if err := direct.Del(ctx, bigsegments.SegmentsKey(name+"-prod")).Err(); err != nil {
		t.Fatal(err)
	}
	if out = must("list", "segments", "list"); strings.Contains(out, "vips") || !strings.Contains(out, "beta-users") {
		t.Errorf("segments list without the index:\n%s", out)
	}
	if out = must("reindex", "segments", "reindex"); out != "destination production: 2 segments indexed\n" {
		t.Errorf("segments reindex: %q", out)
	}
	if out = must("list", "segments", "list"); !strings.Contains(out, "vips") {
		t.Errorf("segments list after reindex:\n%s", out)
	}
	// serve's run watcher marks the edits applied, as it does runs.
	testenv.Eventually(t, time.Minute, "the edits recorded and marked applied", func() bool {
		out = must("runs list", "runs", "list", "--mapping", "list:vips")
		return strings.Count(out, " list:vips ") == 3 && strings.Count(out, " manual ") == 3 && strings.Count(out, " applied") == 3 && !strings.Contains(out, "not applied")
	})

	runCases(t, []commandCase{
		{name: "add needs a destination", args: []string{"segments", "add", "vips", "k"}, env: env, code: ExitUsage,
			wantStderr: []string{"--destination: required"}},
		{name: "add refuses an empty key", args: []string{"segments", "add", "vips", "--destination", "production", "ok", ""}, env: env, code: ExitUsage,
			wantStderr: []string{`context key 2 "": want non-empty UTF-8 of at most 1024 bytes`}},
		{name: "import takes one file", args: []string{"segments", "import", "vips", "--destination", "production", "a.csv", "b.csv"}, env: env, code: ExitUsage,
			wantStderr: []string{"accepts 2 arg(s)"}},
		{name: "show takes --ld-json or --output json", args: []string{"segments", "show", "vips", "--ld-json", "--output", "json"}, env: env, code: ExitUsage,
			wantStderr: []string{`--output="json": want nothing with --ld-json`}},
		{name: "list knows table and json", args: []string{"segments", "list", "--output", "yaml"}, env: env, code: ExitUsage,
			wantStderr: []string{`--output="yaml": want table or json`}},
		{name: "show of an unknown segment", args: []string{"segments", "show", "nope"}, env: env, code: ExitError,
			wantStderr: []string{`segment "nope": no such segment in any destination`}},
		{name: "export of an unknown destination", args: []string{"segments", "export", "vips", "--destination", "nowhere"}, env: env, code: ExitError,
			wantStderr: []string{`"nowhere"`}},
	})
}
