package catalog

import (
	"cmp"
	"fmt"
	neturl "net/url"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
)

// file is what one file declared, in file order, with the lines the checks
// across entries report at.
type file struct {
	dests    []*destEntry
	maps     []*mapEntry
	projects []*projectEntry
}

type projectEntry struct {
	AmplitudeProject
	entry Entry
	lines map[string]int
}

type destEntry struct {
	Destination
	entry Entry
	line  int
	lines map[string]int
	// storage is where the destination's keys live, one "host:port/db" per
	// server, empty when its Redis settings are invalid.
	storage []string
}

type mapEntry struct {
	Mapping
	entry       Entry
	line        int
	lines       map[string]int
	destLines   []int
	projectLine int // of source.amplitude_project
}

var (
	destinationFields = []string{"name", "environment", "redis", "prefix", "client_side_id", "fan_in"}
	redisFields       = []string{"url", "cluster_addrs", "username", "password_env", "password_file", "tls", "tls_ca_file", "tls_cert_file", "tls_key_file", "password"}
	mappingFields     = []string{"name", "source", "segment", "destinations", "id_property", "context_kind", "schedule", "generation", "max_shrink", "enabled", "notify"}
	sourceFields      = []string{"csv", "amplitude_cohort", "push", "amplitude_project", "integration", "cohort"}
	sourceKinds       = sourceFields[:3]
	projectFields     = []string{"name", "region", "base_url", "api_key_env", "api_key_file", "secret_key_env", "secret_key_file"}
)

func isKey(s string) bool { return keyPattern.MatchString(s) }

func (d *decoder) destination(n *yaml.Node, e Entry) *destEntry {
	de := &destEntry{entry: e, line: n.Line}
	var redisNode *yaml.Node
	de.lines = d.fields(n, e, "", destinationFields, func(key string, v *yaml.Node) {
		switch key {
		case "name":
			de.Name = d.text(v, e, key, isKey, keyForm)
		case "environment":
			de.Environment = d.text(v, e, key, validText, textForm)
		case "redis":
			redisNode = v
			d.redis(v, de)
		case "prefix":
			de.CustomPrefix = d.text(v, e, key, validPrefix, prefixForm)
			de.PrefixMode = PrefixCustom
		case "client_side_id":
			de.ClientSideID = d.text(v, e, key, clientSideIDPattern.MatchString, "an environment's client-side ID, 24 hexadecimal digits")
			de.PrefixMode = PrefixClientSideID
		case "fan_in":
			d.value(v, e, key, &de.FanIn, "true or false")
		}
	})
	if n.Kind != yaml.MappingNode {
		return de
	}
	if _, ok := de.lines["name"]; !ok {
		d.required(n, e, "name", keyForm)
	}
	if redisNode == nil {
		d.required(n, e, "redis", "url or cluster_addrs")
	}
	pl, hasPrefix := de.lines["prefix"]
	if _, hasID := de.lines["client_side_id"]; hasID && hasPrefix {
		d.add(pl, e, "prefix", "not with client_side_id: want one prefix (client_side_id is the prefix)")
	}
	de.PrefixMode = cmp.Or(de.PrefixMode, PrefixDefault)
	de.Environment = cmp.Or(de.Environment, de.Name)
	return de
}

// prefixForm is what a custom prefix may be.
const prefixForm = textForm + ", without ':', '{' or '}'"

// validPrefix refuses the characters that would make a prefix's keys
// collide with another prefix's (':' joins a prefix to the rest) or change
// their Cluster slot (a '{...}' hash tag).
func validPrefix(s string) bool {
	return validText(s) && !strings.ContainsAny(s, ":{}")
}

// secretAdvice is how a file gives a Redis password.
const secretAdvice = "password_env (an environment variable) or password_file (a file) naming where the password is read"

// redis decodes a destination's redis settings and checks them with
// redisx's own rules, renamed to the file's fields. A password itself is
// refused: the file is reviewed like code and copied into the store, so it
// names where the password is instead.
func (d *decoder) redis(n *yaml.Node, de *destEntry) {
	e, cfg := de.entry, &de.Redis
	lines := d.fields(n, e, "redis.", redisFields, func(key string, v *yaml.Node) {
		field := "redis." + key
		switch key {
		case "url":
			cfg.URL, _ = d.scalar(v, e, field, "a redis:// or rediss:// URL")
			if cfg.URL != "" && urlPassword(cfg.URL) {
				d.add(v.Line, e, field, "%s", invalid(redisx.RedactURL(cfg.URL), "a URL without a password: give %s", secretAdvice))
			}
		case "cluster_addrs":
			cfg.ClusterAddrs, _ = d.texts(v, e, field, func(string) bool { return true }, "host:port")
		case "username":
			cfg.Username, _ = d.scalar(v, e, field, "a user name")
		case "password":
			d.add(v.Line, e, field, "a password in the file is refused: give %s", secretAdvice)
		case "password_env":
			de.Password.Env = d.text(v, e, field, envNamePattern.MatchString, envNameForm)
		case "password_file":
			de.Password.File = d.text(v, e, field, validText, "a file path: "+textForm)
		case "tls":
			d.value(v, e, field, &cfg.TLS, "true or false")
		case "tls_ca_file":
			cfg.TLSCAFile = d.text(v, e, field, validText, "a file path: "+textForm)
		case "tls_cert_file":
			cfg.TLSCertFile = d.text(v, e, field, validText, "a file path: "+textForm)
		case "tls_key_file":
			cfg.TLSKeyFile = d.text(v, e, field, validText, "a file path: "+textForm)
		}
	})
	if n.Kind != yaml.MappingNode {
		return
	}
	if fl, ok := lines["password_file"]; ok {
		if _, ok := lines["password_env"]; ok {
			d.add(fl, e, "redis.password_file", "not with password_env: want one place to read the password from")
		}
	}
	// An empty reference is a mistake, not "no password".
	if l, ok := lines["password_env"]; ok && de.Password.Env == "" && !d.reported(l) {
		d.add(l, e, "redis.password_env", "required, want %s", envNameForm)
	}
	if l, ok := lines["password_file"]; ok && de.Password.File == "" && !d.reported(l) {
		d.add(l, e, "redis.password_file", "required, want a file path")
	}
	errs := setting.Errors(cfg.Validate())
	for _, se := range errs {
		key := strings.ReplaceAll(strings.TrimPrefix(se.Name, "redis-"), "-", "_")
		line, ok := lines[key]
		if !ok {
			line = n.Line
		}
		if se.Missing {
			d.add(line, e, "redis", "want url or cluster_addrs")
			continue
		}
		d.add(line, e, "redis."+key, "%s", invalid(se.Value, "%s", redisWords.Replace(se.Want)))
	}
	if len(errs) == 0 {
		de.storage = storage(*cfg)
	}
}

// redisWords turns redisx's flag names into the file's field names.
var redisWords = strings.NewReplacer("--redis-url", "url", "--redis-cluster-addrs", "cluster_addrs", "--redis-tls-cert-file", "tls_cert_file", "--redis-tls", "tls")

// Storage identifies where d writes: one "host:port/db prefix" per Redis
// server it may write (a URL's, or each Cluster address given), so that
// two destinations on one server and prefix are found whichever way each
// names it. Empty for Redis settings that do not parse.
func (d Destination) Storage() []string {
	var out []string
	for _, s := range storage(d.Redis) {
		out = append(out, s+" "+d.Prefix())
	}
	return out
}

// storage identifies the servers a valid Redis config writes to, so that
// two destinations on one server are found whichever way each names it (a
// URL, or a Cluster master among its addresses).
func storage(cfg redisx.Config) []string {
	if cfg.URL != "" {
		opts, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil
		}
		return []string{fmt.Sprintf("%s/%d", strings.ToLower(opts.Addr), opts.DB)}
	}
	var out []string
	for _, a := range cfg.ClusterAddrs {
		out = append(out, strings.ToLower(a)+"/0")
	}
	return out
}

func (d *decoder) mapping(n *yaml.Node, e Entry) *mapEntry {
	me := &mapEntry{entry: e, line: n.Line}
	me.Enabled = true
	var schedule string
	me.lines = d.fields(n, e, "", mappingFields, func(key string, v *yaml.Node) {
		switch key {
		case "name":
			me.Name = d.text(v, e, key, isKey, keyForm)
		case "source":
			d.source(v, me)
		case "segment":
			me.Segment = d.text(v, e, key, isKey, "a segment key: "+keyForm)
		case "destinations":
			me.Destinations, me.destLines = d.texts(v, e, key, isKey, "destination names")
		case "id_property":
			me.IDProperty = d.text(v, e, key, validText, textForm)
		case "context_kind":
			me.ContextKind = d.text(v, e, key, validKind, "a context kind: "+keyForm+", not kind or multi")
		case "schedule":
			schedule, _ = d.scalar(v, e, key, scheduleForm)
		case "generation":
			if d.value(v, e, key, &me.Generation, "an integer >= 1") && me.Generation < 1 {
				d.add(v.Line, e, key, "%s", invalid(v.Value, "an integer >= 1"))
			}
		case "max_shrink":
			if d.value(v, e, key, &me.MaxShrink, "a fraction in [0, 1), 0 for off") && !(me.MaxShrink >= 0 && me.MaxShrink < 1) {
				d.add(v.Line, e, key, "%s", invalid(v.Value, "a fraction in [0, 1), 0 for off"))
			}
		case "enabled":
			d.value(v, e, key, &me.Enabled, "true or false")
		case "notify":
			d.notify(v, me)
		}
	})
	if n.Kind != yaml.MappingNode {
		return me
	}
	for _, f := range [...]struct{ key, want string }{
		{"name", keyForm}, {"source", "one of " + strings.Join(sourceKinds, ", ")},
		{"segment", "a segment key: " + keyForm}, {"destinations", "a list of destination names"},
	} {
		if _, ok := me.lines[f.key]; !ok {
			d.required(n, e, f.key, f.want)
		}
	}
	if line, ok := me.lines["destinations"]; ok && len(me.Destinations) == 0 && !d.reported(line) {
		d.add(line, e, "destinations", "want at least one destination name")
	}
	d.schedule(n, me, schedule)
	me.IDProperty = cmp.Or(me.IDProperty, DefaultIDProperty)
	me.ContextKind = cmp.Or(me.ContextKind, DefaultContextKind)
	me.Generation = cmp.Or(me.Generation, DefaultGeneration)
	return me
}

// reported tells whether a problem was already reported at line, so that
// one mistake is not reported twice.
func (d *decoder) reported(line int) bool {
	return slices.ContainsFunc(d.errs, func(e *Error) bool { return e.Line == line })
}

func validPushCohort(s string) bool { return validText(s) && !strings.Contains(s, "/") }

func validKind(s string) bool { return keyPattern.MatchString(s) && s != "kind" && s != "multi" }

func (d *decoder) schedule(n *yaml.Node, me *mapEntry, spec string) {
	line, given := me.lines["schedule"]
	switch {
	case me.Source.Kind == SourcePush && given:
		d.add(line, me.entry, "schedule", "%s", invalid(spec, "nothing with a push source (it runs when a push arrives)"))
	case me.Source.Kind == SourcePush:
		me.Schedule = Schedule{Kind: ScheduleOnPush}
	case !given:
		d.required(n, me.entry, "schedule", scheduleForm)
	default:
		s, err := ParseSchedule(spec)
		if err != nil {
			d.add(line, me.entry, "schedule", "%s", invalid(spec, "%s", strings.TrimPrefix(err.Error(), "want ")))
		}
		me.Schedule = s
	}
}

func (d *decoder) source(n *yaml.Node, me *mapEntry) {
	e, count, projectLine := me.entry, 0, 0
	var integration, cohort string
	pushLines := map[string]int{}
	d.fields(n, e, "source.", sourceFields, func(key string, v *yaml.Node) {
		count++
		field := "source." + key
		switch key {
		case "integration":
			count-- // with push, not a source of its own
			integration, pushLines[key] = d.text(v, e, field, isKey, "a partner's integration key (the {integrationKey} of its pushes)"), v.Line
		case "cohort":
			count--
			cohort, pushLines[key] = d.text(v, e, field, validPushCohort, "the partner's cohort id, "+textForm+", without '/'"), v.Line
		case "csv":
			me.Source = Source{Kind: SourceCSV, Location: d.text(v, e, field, validText, "a CSV path or http(s) URL")}
			if me.Source.Location == "" && !d.reported(v.Line) {
				d.add(v.Line, e, field, "required, want a CSV path or http(s) URL")
			}
		case "amplitude_project":
			count-- // with amplitude_cohort, not a source of its own
			me.Source.Project = d.text(v, e, field, isKey, "an Amplitude project's name: "+keyForm)
			projectLine = v.Line
		case "amplitude_cohort":
			me.Source = Source{Kind: SourceAmplitude, Location: d.text(v, e, field, validText, "an Amplitude cohort id"), Project: me.Source.Project}
			if me.Source.Location == "" && !d.reported(v.Line) {
				d.add(v.Line, e, field, "required, want an Amplitude cohort id")
			}
		case "push":
			var on bool
			if d.value(v, e, field, &on, "true") && !on {
				d.add(v.Line, e, field, "%s", invalid(v.Value, "true (or another source)"))
			}
			me.Source = Source{Kind: SourcePush}
		}
	})
	if n.Kind == yaml.MappingNode && count != 1 {
		d.add(n.Line, e, "source", "want exactly one of %s, not %d", strings.Join(sourceKinds, ", "), count)
	}
	for _, f := range [...]string{"integration", "cohort"} {
		if line, ok := pushLines[f]; ok && me.Source.Kind != SourcePush {
			d.add(line, e, "source."+f, "only with push")
		}
	}
	if me.Source.Kind == SourcePush && len(pushLines) > 0 {
		switch {
		case integration != "" && cohort != "":
			me.Source.Location = integration + "/" + cohort
		case len(pushLines) == 1 && !d.reported(n.Line):
			d.add(n.Line, e, "source", "want both integration and cohort, or neither (then pushes go to <integration>-<cohort>)")
		}
	}
	switch {
	case projectLine > 0 && me.Source.Kind != SourceAmplitude:
		me.Source.Project = ""
		d.add(projectLine, e, "source.amplitude_project", "only with amplitude_cohort")
	case me.Source.Kind == SourceAmplitude && projectLine == 0:
		d.add(n.Line, e, "source.amplitude_project", "required with amplitude_cohort, want the name of a project of amplitude_projects")
	case me.Source.Kind == SourceAmplitude:
		me.projectLine = projectLine
	}
}

// keyAdvice is how a file gives an Amplitude project's key k.
func keyAdvice(k string) string {
	return k + "_env (an environment variable) or " + k + "_file (a file) naming where the key is read"
}

func (d *decoder) project(n *yaml.Node, e Entry) *projectEntry {
	pe := &projectEntry{entry: e}
	refs := map[string]*string{
		"api_key_env": &pe.APIKey.Env, "api_key_file": &pe.APIKey.File,
		"secret_key_env": &pe.SecretKey.Env, "secret_key_file": &pe.SecretKey.File,
	}
	pe.lines = d.fields(n, e, "", projectFields, func(key string, v *yaml.Node) {
		switch key {
		case "name":
			pe.Name = d.text(v, e, key, isKey, keyForm)
		case "region":
			pe.Region = d.text(v, e, key, func(s string) bool { return AmplitudeBaseURLs[s] != "" }, "us or eu")
		case "base_url":
			// Not d.text: a refused URL is shown redacted, it may hold a key.
			if u, ok := d.scalar(v, e, key, "a URL"); ok && validBaseURL(u) {
				pe.BaseURL = u
			} else if ok {
				d.add(v.Line, e, key, "%s", invalid(redactURL(u), "an http:// or https:// URL with a host, without credentials or query"))
			}
		case "api_key_env", "secret_key_env":
			*refs[key] = d.text(v, e, key, envNamePattern.MatchString, envNameForm)
		case "api_key_file", "secret_key_file":
			*refs[key] = d.text(v, e, key, validText, "a file path: "+textForm)
		}
	})
	if n.Kind != yaml.MappingNode {
		return pe
	}
	if _, ok := pe.lines["name"]; !ok {
		d.required(n, e, "name", keyForm)
	}
	_, hasRegion := pe.lines["region"]
	bl, hasBase := pe.lines["base_url"]
	switch {
	case hasRegion && hasBase:
		d.add(bl, e, "base_url", "not with region: want one of the two")
	case !hasRegion && !hasBase:
		d.required(n, e, "region", "us or eu, or a base_url")
	case hasRegion && pe.Region != "":
		pe.BaseURL = AmplitudeBaseURLs[pe.Region]
	}
	d.secretPair(n, e, "", "api_key", "key", pe.lines, pe.APIKey, keyAdvice("api_key"))
	d.secretPair(n, e, "", "secret_key", "key", pe.lines, pe.SecretKey, keyAdvice("secret_key"))
	return pe
}

// secretPair checks the <k>_env and <k>_file fields (under path) of
// mapping n giving one required secret, what, decoded into ref: exactly
// one of the two, not empty.
func (d *decoder) secretPair(n *yaml.Node, e Entry, path, k, what string, lines map[string]int, ref SecretRef, advice string) {
	el, hasEnv := lines[k+"_env"]
	fl, hasFile := lines[k+"_file"]
	switch {
	case hasEnv && hasFile:
		d.add(fl, e, path+k+"_file", "not with %s_env: want one place to read the %s from", k, what)
	case !hasEnv && !hasFile:
		d.required(n, e, path+k+"_env", advice)
	case hasEnv && ref.Env == "" && !d.reported(el):
		d.add(el, e, path+k+"_env", "required, want %s", envNameForm)
	case hasFile && ref.File == "" && !d.reported(fl):
		d.add(fl, e, path+k+"_file", "required, want a file path")
	}
}

// redactURL masks a URL's password and query, for messages.
func redactURL(s string) string {
	u, err := neturl.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = neturl.UserPassword(u.User.Username(), "xxxxx")
	}
	if u.RawQuery != "" {
		u.RawQuery = "..."
	}
	return u.String()
}

// validBaseURL accepts what an Amplitude client can call: http(s), a
// host, no credentials (they are read from the key references) and no
// query.
func validBaseURL(s string) bool {
	u, err := neturl.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == ""
}
