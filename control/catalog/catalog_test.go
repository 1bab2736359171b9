package catalog

import (
	"errors"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/internal/redisx"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

func mustSchedule(t *testing.T, s string) Schedule {
	t.Helper()
	sc, err := ParseSchedule(s)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestLoadCompleteExampleNormalisesWithDefaults(t *testing.T) {
	c, err := Load("testdata/mappings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Catalog{
		Destinations: []Destination{
			{Name: "production", Environment: "production", Redis: redisx.Config{URL: "redis://redis.internal:6379/0"}, Password: SecretRef{Env: "PRODUCTION_REDIS_PASSWORD"}, PrefixMode: PrefixClientSideID, ClientSideID: "5f3c2a1b9d8e7f6a5b4c3d2e"},
			{Name: "qa", Environment: "test", Redis: redisx.Config{URL: "redis://redis.internal:6379/1"}, PrefixMode: PrefixDefault},
			{Name: "staging", Environment: "staging", Redis: redisx.Config{ClusterAddrs: []string{"redis-0.internal:6379", "redis-1.internal:6379"}, Username: "cohortsync", TLS: true,
				TLSCAFile: "/run/secrets/redis-ca.pem", TLSCertFile: "/run/secrets/redis-client.pem", TLSKeyFile: "/run/secrets/redis-client-key.pem"},
				Password: SecretRef{File: "/run/secrets/staging-redis-password"}, PrefixMode: PrefixCustom, CustomPrefix: "staging"},
		},
		Mappings: []Mapping{
			{Name: "beta-testers", Source: Source{Kind: SourceCSV, Location: "https://exports.example.com/beta-testers.csv"}, Segment: "beta-testers", Destinations: []string{"staging"},
				IDProperty: "email", ContextKind: "account", Schedule: mustSchedule(t, "30 6 * * 1-5"), Generation: 2, Enabled: true,
				Notify: Notify{
					Webhook: &Webhook{URL: "https://hooks.example.com/cohortsync", Secret: SecretRef{Env: "BETA_WEBHOOK_SECRET"}, Events: []NotifyEvent{EventFailed, EventRefused}},
					Email:   &Email{To: []string{"growth@example.com", "oncall@example.com"}, Events: DefaultNotifyEvents},
				}},
			{Name: "launch-list", Source: Source{Kind: SourceCSV, Location: "./cohorts/launch.csv"}, Segment: "launch-list", Destinations: []string{"production"},
				IDProperty: "user_id", ContextKind: "user", Schedule: Schedule{Kind: ScheduleOneTime}, Generation: 1, Enabled: true},
			{Name: "partner-push", Source: Source{Kind: SourcePush, Location: "hightouch/c9"}, Segment: "partner-audience", Destinations: []string{"qa"},
				IDProperty: "user_id", ContextKind: "user", Schedule: Schedule{Kind: ScheduleOnPush}, Generation: 1, Enabled: false},
			{Name: "power-users", Source: Source{Kind: SourceAmplitude, Location: "7khm89cz", Project: "main"}, Segment: "power-users", Destinations: []string{"production", "staging"},
				IDProperty: "user_id", ContextKind: "user", Schedule: Schedule{Kind: ScheduleHourly}, Generation: 1, MaxShrink: 0.5, Enabled: true},
		},
		AmplitudeProjects: []AmplitudeProject{{Name: "main", Region: AmplitudeUS, BaseURL: "https://amplitude.com",
			APIKey: SecretRef{Env: "AMPLITUDE_API_KEY"}, SecretKey: SecretRef{File: "/run/secrets/amplitude-secret-key"}}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
	}
	if d, ok := c.ForEnvironment("test"); !ok || d.Name != "qa" {
		t.Errorf("ForEnvironment(test) = %q, %v; want qa", d.Name, ok)
	}
	if _, ok := c.ForEnvironment("qa"); ok {
		t.Error("ForEnvironment(qa): a destination's name is not its environment when environment is set")
	}
	if d, ok := c.Destination("staging"); !ok || d.Prefix() != "staging" {
		t.Errorf("Destination(staging) = %+v, %v", d, ok)
	}
	if _, ok := c.Destination("nope"); ok {
		t.Error("Destination(nope) found")
	}
}

func TestLoadBadFileReportsEveryProblemGolden(t *testing.T) {
	_, err := Load("testdata/bad.yaml")
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error() + "\n"
	testenv.Golden(t, *update, "testdata/bad.golden", []byte(got))
	if strings.Contains(got, "hunter2") {
		t.Error("an error shows a password given in the file")
	}
	for _, e := range Errors(err) {
		if e.File != "testdata/bad.yaml" || e.Line == 0 {
			t.Errorf("%v: want File and Line set", e)
		}
	}
}

func TestLoadMissingFileWrapsTheOSError(t *testing.T) {
	_, err := Load("testdata/absent.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want os.ErrNotExist", err)
	}
}

const advice = "password_env (an environment variable) or password_file (a file) naming where the password is read"

const okProject = `amplitude_projects:
  - {name: main, region: us, api_key_env: K, secret_key_env: S}
`

const okDest = `
  - name: prod
    redis: {url: "redis://localhost:6379"}
`

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string // every error, in order; none: valid
	}{
		{"empty file is an empty catalog", ``, nil},
		{"malformed YAML names its line", "destinations: []\nmappings:\n  - name: a\n    schedule: a: b\n", []string{`f.yaml:4: malformed YAML: mapping values are not allowed in this context`}},
		{"a second document is refused", "destinations: []\n---\nmappings: []\n", []string{`f.yaml:2: a second YAML document: want one`}},
		{"unknown top-level field", "destination: []\n", []string{`f.yaml:1: destination: unknown field, want one of destinations, mappings, amplitude_projects`}},
		{"top level that is a list", "- a\n", []string{`f.yaml:1: want a mapping of destinations, mappings, amplitude_projects, not a list`}},
		{"destinations that are not a list", "destinations: {a: 1}\n", []string{`f.yaml:1: destinations: want a list, not a mapping`}},
		{"a field given twice", "destinations:" + okDest + "    name: again\n", []string{`f.yaml:4: destination "prod": name: given twice (also at line 2)`}},
		{"missing redis", "destinations:\n  - name: a\n", []string{`f.yaml:2: destination "a": redis: required, want url or cluster_addrs`}},
		{"redis with neither url nor cluster", "destinations:\n  - name: a\n    redis: {tls: true}\n", []string{`f.yaml:3: destination "a": redis: want url or cluster_addrs`}},
		{"redis url and cluster both", "destinations:\n  - name: a\n    redis: {url: \"redis://h:1\", cluster_addrs: [\"h:2\"]}\n",
			[]string{`f.yaml:3: destination "a": redis.cluster_addrs: "h:2": want nothing when url is set (exactly one of the two)`}},
		{"redis url password refused and redacted", "destinations:\n  - name: a\n    redis: {url: \"redis://u:secret@h:99999\"}\n",
			[]string{`f.yaml:3: destination "a": redis.url: "redis://u:xxxxx@h:99999": want a URL without a password: give ` + advice,
				`f.yaml:3: destination "a": redis.url: "redis://u:xxxxx@h:99999": want a URL whose address is host:port with a port in 1..65535`}},
		{"a password-only URL is refused", "destinations:\n  - name: a\n    redis: {url: \"redis://:secret@h:1\"}\n",
			[]string{`f.yaml:3: destination "a": redis.url: "redis://:xxxxx@h:1": want a URL without a password: give ` + advice}},
		{"an inline password is refused with advice", "destinations:\n  - name: a\n    redis:\n      cluster_addrs: [\"h:1\"]\n      password: secret\n",
			[]string{`f.yaml:5: destination "a": redis.password: a password in the file is refused: give ` + advice}},
		{"a password from the environment", "destinations:\n  - name: a\n    redis: {url: \"redis://u@h:1\", password_env: A_PW}\n", nil},
		{"a password from a file, for a Cluster", "destinations:\n  - name: a\n    redis: {cluster_addrs: [\"h:1\"], username: u, password_file: /run/secrets/pw}\n", nil},
		{"a password from both", "destinations:\n  - name: a\n    redis:\n      url: redis://h:1\n      password_env: A_PW\n      password_file: pw.txt\n",
			[]string{`f.yaml:6: destination "a": redis.password_file: not with password_env: want one place to read the password from`}},
		{"a variable name that is no name", "destinations:\n  - name: a\n    redis:\n      url: redis://h:1\n      password_env: 1PW\n",
			[]string{`f.yaml:5: destination "a": redis.password_env: "1PW": want an environment variable name: letters, digits or '_', not starting with a digit`}},
		{"an empty password file", "destinations:\n  - name: a\n    redis:\n      url: redis://h:1\n      password_file: \"\"\n",
			[]string{`f.yaml:5: destination "a": redis.password_file: required, want a file path`}},
		{"an unknown redis field offers the password references, not password", "destinations:\n  - name: a\n    redis:\n      url: redis://h:1\n      pasword: x\n",
			[]string{`f.yaml:5: destination "a": redis.pasword: unknown field, want one of url, cluster_addrs, username, password_env, password_file, tls, tls_ca_file, tls_cert_file, tls_key_file`}},
		{"two environments on one destination's prefix", "destinations:" + okDest + "  - name: other\n    redis: {url: \"redis://LOCALHOST:6379/0\"}\n",
			[]string{`f.yaml:5: destination "other": writes under prefix "launchdarkly" of Redis localhost:6379/0 like destination "prod" (line 2): want a prefix of its own, or fan_in: true on both to share it deliberately`}},
		{"a URL and a Cluster naming the same server", "destinations:" + okDest + "  - name: c\n    redis: {cluster_addrs: [\"other:1\", \"localhost:6379\"]}\n",
			[]string{`f.yaml:5: destination "c": writes under prefix "launchdarkly" of Redis localhost:6379/0 like destination "prod" (line 2): want a prefix of its own, or fan_in: true on both to share it deliberately`}},
		{"fan-in declared on one side only", "destinations:" + okDest + "  - name: b\n    redis: {url: \"redis://localhost:6379\"}\n    fan_in: true\n",
			[]string{`f.yaml:5: destination "b": writes under prefix "launchdarkly" of Redis localhost:6379/0 like destination "prod" (line 2): want a prefix of its own, or fan_in: true on both to share it deliberately`}},
		{"fan-in declared on both is accepted", "destinations:\n  - {name: a, redis: {url: \"redis://h:1\"}, fan_in: true}\n  - {name: b, redis: {url: \"redis://h:1\"}, fan_in: true}\n", nil},
		{"same server, other database", "destinations:" + okDest + "  - name: b\n    redis: {url: \"redis://localhost:6379/1\"}\n", nil},
		{"same server, client-side ID prefix", "destinations:" + okDest + "  - name: b\n    redis: {url: \"redis://localhost:6379\"}\n    client_side_id: 0123456789abcdef01234567\n", nil},
		{"one environment, two destinations", "destinations:" + okDest + "  - name: b\n    environment: prod\n    redis: {url: \"redis://localhost:6379/1\"}\n",
			[]string{`f.yaml:5: destination "b": environment: "prod": want an environment no other destination serves (destination "prod" does)`}},
		{"client-side ID upper case", "destinations:\n  - {name: a, redis: {url: \"redis://h:1\"}, client_side_id: 0123456789ABCDEF01234567}\n",
			[]string{`f.yaml:2: destination "a": client_side_id: "0123456789ABCDEF01234567": want an environment's client-side ID, 24 hexadecimal digits`}},
		{"custom prefix with a hash tag", "destinations:\n  - {name: a, redis: {url: \"redis://h:1\"}, prefix: \"{x}\"}\n",
			[]string{`f.yaml:2: destination "a": prefix: "{x}": want non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end, without ':', '{' or '}'`}},
		{"mapping naming no declared destination", "mappings:\n  - {name: m, source: {csv: a.csv}, segment: s, destinations: [prod], schedule: daily}\n",
			[]string{`f.yaml:2: mapping "m": destinations: "prod": want a declared destination (none declared)`}},
		{"mapping missing everything", "mappings:\n  - {}\n", []string{
			`f.yaml:2: mapping #1: name: required, want letters, digits, '.', '_' or '-'`,
			`f.yaml:2: mapping #1: source: required, want one of csv, amplitude_cohort, push`,
			`f.yaml:2: mapping #1: segment: required, want a segment key: letters, digits, '.', '_' or '-'`,
			`f.yaml:2: mapping #1: destinations: required, want a list of destination names`,
			`f.yaml:2: mapping #1: schedule: required, want one-time, hourly, daily or a 5-field cron expression`}},
		{"mapping that is a single value", "mappings:\n  - power-users\n",
			[]string{`f.yaml:2: mapping #1: want a mapping of name, source, segment, destinations, id_property, context_kind, schedule, generation, max_shrink, enabled, notify, not a single value`}},
		{"cron descriptor refused", "destinations:" + okDest + "mappings:\n  - {name: m, source: {csv: a.csv}, segment: s, destinations: [prod], schedule: \"@every 1h\"}\n",
			[]string{`f.yaml:5: mapping "m": schedule: "@every 1h": want one-time, hourly, daily or a 5-field cron expression (parser does not accept descriptors: @every 1h)`}},
		{"push source false", "destinations:" + okDest + "mappings:\n  - {name: m, source: {push: false}, segment: s, destinations: [prod]}\n",
			[]string{`f.yaml:5: mapping "m": source.push: "false": want true (or another source)`}},
		{"empty csv location", "destinations:" + okDest + "mappings:\n  - {name: m, source: {csv: \"\"}, segment: s, destinations: [prod], schedule: daily}\n",
			[]string{`f.yaml:5: mapping "m": source.csv: required, want a CSV path or http(s) URL`}},
		{"negative max shrink", "destinations:" + okDest + "mappings:\n  - {name: m, source: {csv: a}, segment: s, destinations: [prod], schedule: daily, max_shrink: -0.1}\n",
			[]string{`f.yaml:5: mapping "m": max_shrink: "-0.1": want a fraction in [0, 1), 0 for off`}},
		{"same segment, other generation, is another segment", "destinations:" + okDest + "mappings:\n" +
			"  - {name: m, source: {csv: a}, segment: s, destinations: [prod], schedule: daily}\n" +
			"  - {name: n, source: {csv: b}, segment: s, destinations: [prod], schedule: daily, generation: 2}\n", nil},
		{"an amplitude mapping names its declared project", "destinations:" + okDest + okProject + "mappings:\n  - {name: m, source: {amplitude_cohort: c1, amplitude_project: main}, segment: s, destinations: [prod], schedule: daily}\n", nil},
		{"an amplitude mapping without a project", "destinations:" + okDest + okProject + "mappings:\n  - {name: m, source: {amplitude_cohort: c1}, segment: s, destinations: [prod], schedule: daily}\n",
			[]string{`f.yaml:7: mapping "m": source.amplitude_project: required with amplitude_cohort, want the name of a project of amplitude_projects`}},
		{"an amplitude mapping naming an undeclared project", "destinations:" + okDest + okProject + "mappings:\n  - name: m\n    source: {amplitude_cohort: c1, amplitude_project: other}\n    segment: s\n    destinations: [prod]\n    schedule: daily\n",
			[]string{`f.yaml:8: mapping "m": source.amplitude_project: "other": want a declared amplitude project (main)`}},
		{"a project with a csv source", "destinations:" + okDest + okProject + "mappings:\n  - name: m\n    source:\n      csv: a.csv\n      amplitude_project: main\n    segment: s\n    destinations: [prod]\n    schedule: daily\n",
			[]string{`f.yaml:10: mapping "m": source.amplitude_project: only with amplitude_cohort`}},
		{"an eu project, and one behind a proxy", "amplitude_projects:\n  - {name: eu, region: eu, api_key_env: K, secret_key_env: S}\n  - {name: proxy, base_url: \"http://127.0.0.1:8080\", api_key_file: /k, secret_key_file: /s}\n", nil},
		{"project problems, each at its line", "amplitude_projects:\n  - name: a\n    region: mars\n    api_key_env: K\n    api_key_file: /k\n    secret_key: hunter2\n" +
			"  - name: a\n    region: us\n    base_url: \"https://u:hunter2@amplitude.com?x=1\"\n    api_key_env: 1K\n  - {}\n",
			[]string{
				`f.yaml:2: amplitude_project "a": secret_key_env: required, want secret_key_env (an environment variable) or secret_key_file (a file) naming where the key is read`,
				`f.yaml:3: amplitude_project "a": region: "mars": want us or eu`,
				`f.yaml:5: amplitude_project "a": api_key_file: not with api_key_env: want one place to read the key from`,
				`f.yaml:6: amplitude_project "a": secret_key: unknown field, want one of name, region, base_url, api_key_env, api_key_file, secret_key_env, secret_key_file`,
				`f.yaml:7: amplitude_project "a": secret_key_env: required, want secret_key_env (an environment variable) or secret_key_file (a file) naming where the key is read`,
				`f.yaml:7: amplitude_project "a": name: "a": want a name no other amplitude_project has (also at line 2)`,
				`f.yaml:9: amplitude_project "a": base_url: "https://u:xxxxx@amplitude.com?...": want an http:// or https:// URL with a host, without credentials or query`,
				`f.yaml:9: amplitude_project "a": base_url: not with region: want one of the two`,
				`f.yaml:10: amplitude_project "a": api_key_env: "1K": want an environment variable name: letters, digits or '_', not starting with a digit`,
				`f.yaml:11: amplitude_project #3: name: required, want letters, digits, '.', '_' or '-'`,
				`f.yaml:11: amplitude_project #3: region: required, want us or eu, or a base_url`,
				`f.yaml:11: amplitude_project #3: api_key_env: required, want api_key_env (an environment variable) or api_key_file (a file) naming where the key is read`,
				`f.yaml:11: amplitude_project #3: secret_key_env: required, want secret_key_env (an environment variable) or secret_key_file (a file) naming where the key is read`,
			}},
		{"a webhook with a secret file and the default events", notifyMapping("{webhook: {url: \"http://127.0.0.1:8080/hook?team=growth\", secret_file: /run/secrets/hook}}"), nil},
		{"an email to one address", notifyMapping("{email: {to: [ops@example.com], events: [failed]}}"), nil},
		{"a webhook without a secret", notifyMapping("{webhook: {url: \"https://h/x\"}}"),
			[]string{`f.yaml:5: mapping "m": notify.webhook.secret_env: required, want ` + secretRefAdvice}},
		{"a webhook secret from both", notifyMapping("{webhook: {url: \"https://h/x\", secret_env: S, secret_file: /s}}"),
			[]string{`f.yaml:5: mapping "m": notify.webhook.secret_file: not with secret_env: want one place to read the secret from`}},
		{"a webhook secret given in the file is refused", notifyMapping("{webhook: {url: \"https://h/x\", secret: hunter2}}"),
			[]string{`f.yaml:5: mapping "m": notify.webhook.secret: a secret in the file is refused: give ` + secretRefAdvice}},
		{"a webhook URL that is not http", notifyMapping("{webhook: {url: \"ftp://h/x\", secret_env: S}}"),
			[]string{`f.yaml:5: mapping "m": notify.webhook.url: "ftp://h/x": want an http:// or https:// URL with a host, without credentials (the signing secret is given by secret_env or secret_file)`}},
		{"a webhook without a URL", notifyMapping("{webhook: {secret_env: S}}"),
			[]string{`f.yaml:5: mapping "m": notify.webhook.url: required, want an http:// or https:// URL`}},
		{"an unknown event", notifyMapping("{webhook: {url: \"https://h/x\", secret_env: S, events: [done]}}"),
			[]string{`f.yaml:5: mapping "m": notify.webhook.events: "done": want a list of finished, failed, refused, applied, set_aside`}},
		{"no events", notifyMapping("{email: {to: [a@b.c], events: []}}"),
			[]string{`f.yaml:5: mapping "m": notify.email.events: want a list of finished, failed, refused, applied, set_aside (leave events out for finished, failed and refused)`}},
		{"an email without recipients", notifyMapping("{email: {events: [failed]}}"),
			[]string{`f.yaml:5: mapping "m": notify.email.to: required, want a list of email addresses`}},
		{"an address that is not one", notifyMapping("{email: {to: [ops]}}"),
			[]string{`f.yaml:5: mapping "m": notify.email.to: "ops": want email addresses (user@example.com)`}},
		{"an unknown channel", notifyMapping("{slack: {}}"),
			[]string{`f.yaml:5: mapping "m": notify.slack: unknown field, want one of webhook, email`,
				`f.yaml:5: mapping "m": notify: want webhook or email (or no notify)`}},
		{"notify as a list", notifyMapping("[webhook]"),
			[]string{`f.yaml:5: mapping "m": notify: want a mapping of webhook, email, not a list`}},
		{"aliases are followed", "destinations:\n  - &d {name: a, redis: {url: \"redis://h:1\"}}\nmappings:\n  - {name: m, source: {csv: a}, segment: s, destinations: [a], schedule: daily}\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode("f.yaml", []byte(tc.file))
			var got []string
			for _, e := range Errors(err) {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if (c == nil) != (err != nil) {
				t.Errorf("catalog %v with error %v: want exactly one", c, err)
			}
		})
	}
}

func TestErrorsAreTyped(t *testing.T) {
	_, err := Decode("f.yaml", []byte("destinations:"+okDest+"mappings:\n  - name: m\n    source: {csv: a}\n    segment: s\n    destinations: [prod]\n    schedule: every hour\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v: not an *Error", err)
	}
	want := Error{File: "f.yaml", Line: 9, Entry: Entry{Kind: "mapping", Name: "m", Index: 1}, Field: "schedule",
		Problem: `"every hour": want one-time, hourly, daily or a 5-field cron expression (expected exactly 5 fields, found 2: [every hour])`}
	if *e != want {
		t.Errorf("got %+v\nwant %+v", *e, want)
	}
}

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Destination
		want string
	}{
		{"default mode is launchdarkly", Destination{PrefixMode: PrefixDefault}, "launchdarkly"},
		{"zero mode is launchdarkly", Destination{}, "launchdarkly"},
		{"custom mode is the custom prefix", Destination{PrefixMode: PrefixCustom, CustomPrefix: "acc"}, "acc"},
		{"client-side ID mode is the ID as is", Destination{PrefixMode: PrefixClientSideID, ClientSideID: "0123456789abcdef01234567", CustomPrefix: "ignored"}, "0123456789abcdef01234567"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.Prefix(); got != tc.want {
				t.Errorf("Prefix() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		kind           ScheduleKind
		cron           bool
	}{
		{"one-time", "one-time", "one-time", ScheduleOneTime, false},
		{"hourly", "hourly", "hourly", ScheduleHourly, false},
		{"daily", "daily", "daily", ScheduleDaily, false},
		{"cron with blanks collapsed", " 30  6 * *\t1-5 ", "30 6 * * 1-5", ScheduleCron, true},
		{"cron names", "0 0 1 jan mon", "0 0 1 jan mon", ScheduleCron, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchedule(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind != tc.kind || s.String() != tc.want || (s.Cron() != nil) != tc.cron {
				t.Errorf("got %v %q cron=%v; want %v %q cron=%v", s.Kind, s.String(), s.Cron() != nil, tc.kind, tc.want, tc.cron)
			}
		})
	}
	for _, bad := range []string{"", "Hourly", "every hour", "* * * *", "0 0 * * * *", "61 * * * *", "@daily", "@every 1h"} {
		t.Run("refuses "+bad, func(t *testing.T) {
			if _, err := ParseSchedule(bad); err == nil {
				t.Errorf("ParseSchedule(%q) accepted", bad)
			}
		})
	}
}

func TestDecodeIsIndependentOfFileOrder(t *testing.T) {
	a := "destinations:\n  - {name: a, redis: {url: \"redis://h:1\"}}\n  - {name: b, redis: {url: \"redis://h:2\"}}\n" +
		"mappings:\n  - {name: m, source: {csv: x}, segment: s, destinations: [a, b], schedule: daily}\n  - {name: n, source: {csv: y}, segment: t, destinations: [b], schedule: hourly}\n"
	b := "mappings:\n  - {schedule: hourly, destinations: [b], segment: t, source: {csv: y}, name: n}\n  - {name: m, source: {csv: x}, segment: s, destinations: [b, a], schedule: daily}\n" +
		"destinations:\n  - {name: b, redis: {url: \"redis://h:2\"}}\n  - {redis: {url: \"redis://h:1\"}, name: a}\n"
	ca, err := Decode("a.yaml", []byte(a))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := Decode("b.yaml", []byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ca, cb) {
		t.Errorf("reordered file decodes differently:\n%+v\n%+v", ca, cb)
	}
}

func TestMappingHash(t *testing.T) {
	base := Mapping{Name: "m", Source: Source{Kind: SourceCSV, Location: "a.csv"}, Segment: "s", Destinations: []string{"a", "b"},
		IDProperty: "user_id", ContextKind: "user", Schedule: Schedule{Kind: ScheduleHourly}, Generation: 1, MaxShrink: 0.5, Enabled: true}
	// Pinned: a store compares hashes written by an older release.
	if got, want := base.Hash(), pinnedHash; got != want {
		t.Errorf("Hash() = %s, want the pinned %s: changing the encoding makes every stored mapping look changed", got, want)
	}
	for _, tc := range []struct {
		name   string
		change func(*Mapping)
	}{
		{"name", func(m *Mapping) { m.Name = "n" }},
		{"source kind", func(m *Mapping) { m.Source.Kind = SourceAmplitude }},
		{"source location", func(m *Mapping) { m.Source.Location = "b.csv" }},
		{"source project", func(m *Mapping) { m.Source.Project = "main" }},
		{"segment", func(m *Mapping) { m.Segment = "t" }},
		{"destinations", func(m *Mapping) { m.Destinations = []string{"a"} }},
		{"id property", func(m *Mapping) { m.IDProperty = "email" }},
		{"context kind", func(m *Mapping) { m.ContextKind = "account" }},
		{"schedule", func(m *Mapping) { m.Schedule = mustSchedule(t, "0 * * * *") }},
		{"generation", func(m *Mapping) { m.Generation = 2 }},
		{"max shrink", func(m *Mapping) { m.MaxShrink = 0.25 }},
		{"enabled", func(m *Mapping) { m.Enabled = false }},
		{"a webhook", func(m *Mapping) {
			m.Notify.Webhook = &Webhook{URL: "https://h/x", Secret: SecretRef{Env: "S"}, Events: NotifyEvents}
		}},
		{"an email", func(m *Mapping) { m.Notify.Email = &Email{To: []string{"a@b.c"}, Events: NotifyEvents} }},
	} {
		t.Run("changes with "+tc.name, func(t *testing.T) {
			m := base
			m.Destinations = append([]string(nil), base.Destinations...)
			tc.change(&m)
			if m.Hash() == base.Hash() {
				t.Error("hash unchanged")
			}
		})
	}
}

const pinnedHash = "2d1c6cd076575f4a00295786ced08a5ccb6e1b83357a2f702352e383ca16867a"

// TestREADMEExampleIsTheTestdataFile: the README shows the complete mapping
// file; it must be the example the decoder tests read, so it cannot drift
// from the format.
func TestREADMEExampleIsTheTestdataFile(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- mappings-example -->\n```yaml\n")
	if !ok {
		t.Fatal("README.md has no mappings-example block")
	}
	block, _, ok := strings.Cut(after, "```\n")
	if !ok {
		t.Fatal("README.md's mappings-example block is not closed")
	}
	want, err := os.ReadFile("testdata/mappings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if block != string(want) {
		t.Fatalf("README.md's example differs from testdata/mappings.yaml: copy the file into the README")
	}
}

// notifyMapping is a valid file whose mapping's notify is n (at line 5).
func notifyMapping(n string) string {
	return "destinations:" + okDest + "mappings:\n  - {name: m, source: {csv: a}, segment: s, destinations: [prod], schedule: daily, notify: " + n + "}\n"
}

// TestNotifyEncodesAndDecodesBack: a mapping's notifications survive the
// store's encoded form, and only the secret's reference is in it.
func TestNotifyEncodesAndDecodesBack(t *testing.T) {
	c, err := Load("testdata/mappings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Mappings {
		back, err := m.Encode().Mapping()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Notify, m.Notify) {
			t.Errorf("mapping %s: notify %+v decoded back as %+v", m.Name, m.Notify, back.Notify)
		}
	}
}

// TestPushTarget: a push mapping may claim one partner cohort's pushes
// (both integration and cohort), once per destination.
func TestPushTarget(t *testing.T) {
	const head = "destinations:\n  - name: prod\n    redis: {url: \"redis://127.0.0.1:1/0\"}\nmappings:\n"
	for _, tc := range []struct {
		name, mappings, want string
	}{
		{"both", "  - name: a\n    source: {push: true, integration: hightouch, cohort: c9}\n    segment: s\n    destinations: [prod]\n", ""},
		{"only one", "  - name: a\n    source: {push: true, cohort: c9}\n    segment: s\n    destinations: [prod]\n",
			"want both integration and cohort, or neither"},
		{"not with csv", "  - name: a\n    source: {csv: x.csv, integration: hightouch}\n    segment: s\n    destinations: [prod]\n    schedule: hourly\n",
			"source.integration: only with push"},
		{"a cohort with a slash", "  - name: a\n    source: {push: true, integration: hightouch, cohort: c/9}\n    segment: s\n    destinations: [prod]\n",
			"without '/'"},
		{"claimed twice", "  - name: a\n    source: {push: true, integration: hightouch, cohort: c9}\n    segment: s\n    destinations: [prod]\n" +
			"  - name: b\n    source: {push: true, integration: hightouch, cohort: c9}\n    segment: t\n    destinations: [prod]\n",
			`no other mapping receives the pushes of integration "hightouch" cohort "c9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Decode("m.yaml", []byte(head+tc.mappings))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				in, co, ok := c.Mappings[0].PushTarget()
				if !ok || in != "hightouch" || co != "c9" {
					t.Fatalf("PushTarget = %q, %q, %v", in, co, ok)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
