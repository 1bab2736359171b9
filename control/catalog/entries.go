package catalog

import (
	"cmp"
	"fmt"
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
	dests []*destEntry
	maps  []*mapEntry
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
	entry     Entry
	line      int
	lines     map[string]int
	destLines []int
}

var (
	destinationFields = []string{"name", "environment", "redis", "prefix", "client_side_id", "fan_in"}
	redisFields       = []string{"url", "cluster_addrs", "username", "password_env", "password_file", "tls", "password"}
	mappingFields     = []string{"name", "source", "segment", "destinations", "id_property", "context_kind", "schedule", "generation", "max_shrink", "enabled"}
	sourceFields      = []string{"csv", "amplitude_cohort", "push"}
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
var redisWords = strings.NewReplacer("--redis-url", "url", "--redis-cluster-addrs", "cluster_addrs")

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
		}
	})
	if n.Kind != yaml.MappingNode {
		return me
	}
	for _, f := range [...]struct{ key, want string }{
		{"name", keyForm}, {"source", "one of " + strings.Join(sourceFields, ", ")},
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
	e, count := me.entry, 0
	d.fields(n, e, "source.", sourceFields, func(key string, v *yaml.Node) {
		count++
		field := "source." + key
		switch key {
		case "csv":
			me.Source = Source{Kind: SourceCSV, Location: d.text(v, e, field, validText, "a CSV path or http(s) URL")}
			if me.Source.Location == "" && !d.reported(v.Line) {
				d.add(v.Line, e, field, "required, want a CSV path or http(s) URL")
			}
		case "amplitude_cohort":
			me.Source = Source{Kind: SourceAmplitude, Location: d.text(v, e, field, validText, "an Amplitude cohort id")}
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
		d.add(n.Line, e, "source", "want exactly one of %s, not %d", strings.Join(sourceFields, ", "), count)
	}
}
