package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// Catalog is every destination and mapping of one deployment, normalised:
// defaults applied and both lists sorted by name, so two equal catalogs are
// equal value by value whatever the order of the file they came from.
type Catalog struct {
	Destinations []Destination
	Mappings     []Mapping
	// AmplitudeProjects are the Amplitude projects mappings pull cohorts
	// from; nil or empty when none is declared.
	AmplitudeProjects []AmplitudeProject
}

// AmplitudeProject returns the Amplitude project called name.
func (c *Catalog) AmplitudeProject(name string) (AmplitudeProject, bool) {
	i, ok := slices.BinarySearchFunc(c.AmplitudeProjects, name, func(p AmplitudeProject, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return AmplitudeProject{}, false
	}
	return c.AmplitudeProjects[i], true
}

// Destination returns the destination called name.
func (c *Catalog) Destination(name string) (Destination, bool) {
	i, ok := slices.BinarySearchFunc(c.Destinations, name, func(d Destination, n string) int { return strings.Compare(d.Name, n) })
	if !ok {
		return Destination{}, false
	}
	return c.Destinations[i], true
}

// ForEnvironment returns the destination serving environment env: the
// consumer's way from an event to the Redis and prefix it is written to. An
// environment with no destination has none (no default prefix), so that
// its events are refused rather than written where another environment
// reads.
func (c *Catalog) ForEnvironment(env string) (Destination, bool) {
	for _, d := range c.Destinations {
		if d.Environment == env {
			return d, true
		}
	}
	return Destination{}, false
}

// PrefixMode says where a destination's key prefix comes from.
type PrefixMode string

// Prefix modes.
const (
	// PrefixDefault is "launchdarkly", the SDKs' prefix when none is
	// configured.
	PrefixDefault PrefixMode = "default"
	// PrefixCustom is a prefix the team chose.
	PrefixCustom PrefixMode = "custom"
	// PrefixClientSideID is the environment's client-side ID: the prefix
	// LaunchDarkly's own persistent store integration writes under, so a
	// team can swap that writer for cohortsync without touching SDK
	// configuration.
	PrefixClientSideID PrefixMode = "client-side-id"
)

// Destination is one place membership is written to: a Redis and a key
// prefix, serving one LaunchDarkly environment.
type Destination struct {
	// Name identifies the destination in mappings. Required.
	Name string
	// Environment is the environment whose events the destination receives
	// (the env of every event). Default Name: a destination is named by the
	// environment it serves. At most one destination per environment.
	Environment string
	// Redis is the server or Cluster written to; see redisx.Config. Its
	// password is not in it (neither in URL nor in Password): Password
	// says where to read it, and RedisConfig adds it when connecting.
	Redis redisx.Config
	// Password is where the Redis password is read when connecting, so
	// that neither the file nor the store holds the secret itself. Zero:
	// no password.
	Password SecretRef
	// PrefixMode selects the key prefix: PrefixCustom with CustomPrefix,
	// PrefixClientSideID with ClientSideID, otherwise PrefixDefault.
	// Default PrefixDefault.
	PrefixMode PrefixMode
	// CustomPrefix is the prefix of PrefixCustom.
	CustomPrefix string
	// ClientSideID is the environment's client-side ID (24 hexadecimal
	// digits), the prefix of PrefixClientSideID.
	ClientSideID string
	// FanIn declares that the destination deliberately shares its Redis and
	// prefix with other destinations (several environments reading one set
	// of segments). Sharing is refused unless every destination sharing
	// sets it. Default false.
	FanIn bool
}

// Prefix is the key prefix the destination's segments are written under.
func (d Destination) Prefix() string {
	switch d.PrefixMode {
	case PrefixCustom:
		return d.CustomPrefix
	case PrefixClientSideID:
		// LaunchDarkly's documented rule for its persistent store
		// integrations: the prefix is the client-side ID itself, nothing
		// added.
		return d.ClientSideID
	}
	return bigsegments.DefaultPrefix
}

// SourceKind is where a mapping's cohort comes from.
type SourceKind string

// Source kinds.
const (
	// SourceCSV reads a CSV file from a path or an http(s) URL.
	SourceCSV SourceKind = "csv"
	// SourceAmplitude exports an Amplitude cohort by id.
	SourceAmplitude SourceKind = "amplitude"
	// SourcePush receives the cohort from a partner's push (the receiver);
	// it has no schedule.
	SourcePush SourceKind = "push"
)

// Source is a mapping's cohort.
type Source struct {
	Kind SourceKind
	// Location is the CSV path or URL, or the Amplitude cohort id; for
	// SourcePush, "<integration>/<cohort>" when the mapping claims the pushes
	// of one partner cohort (PushTarget), else empty.
	Location string
	// Project is the name of the AmplitudeProject of SourceAmplitude;
	// empty for the other kinds.
	Project string
}

// Amplitude regions, the hosts of Amplitude's data centers.
const (
	AmplitudeUS = "us"
	AmplitudeEU = "eu"
)

// AmplitudeBaseURLs are the API hosts of the Amplitude regions.
var AmplitudeBaseURLs = map[string]string{
	AmplitudeUS: "https://amplitude.com",
	AmplitudeEU: "https://analytics.eu.amplitude.com",
}

// PushTarget is the partner integration and cohort whose pushes m
// receives, when m is a push mapping that names them (source.integration
// and source.cohort): the receiver then writes them into m's segment,
// generation and context kind instead of "<integration>-<cohort>".
func (m Mapping) PushTarget() (integration, cohort string, ok bool) {
	if m.Source.Kind != SourcePush {
		return "", "", false
	}
	return strings.Cut(m.Source.Location, "/")
}

// AmplitudeProject is an Amplitude project cohorts are exported from: its
// API host and where its keys are read, never the keys themselves.
type AmplitudeProject struct {
	// Name identifies the project in mappings. Required.
	Name string
	// Region is AmplitudeUS or AmplitudeEU, or "" when BaseURL was given
	// (a proxy's, a test's).
	Region string
	// BaseURL is the API's base URL: the region's host, or the one given.
	BaseURL string
	// APIKey and SecretKey are where the project's keys are read, for
	// HTTP Basic auth. Both required.
	APIKey    SecretRef
	SecretKey SecretRef
}

// Hash is a digest of the project's whole content, like Mapping.Hash.
func (p AmplitudeProject) Hash() string { return hashJSON(p.Encode()) }

// EncodedAmplitudeProject is a project's stable JSON form: what Hash
// covers and what a store keeps. It holds where the keys are read, never
// the keys.
type EncodedAmplitudeProject struct {
	Name          string `json:"name"`
	Region        string `json:"region"`
	BaseURL       string `json:"base_url"`
	APIKeyEnv     string `json:"api_key_env"`
	APIKeyFile    string `json:"api_key_file"`
	SecretKeyEnv  string `json:"secret_key_env"`
	SecretKeyFile string `json:"secret_key_file"`
}

// Encode is p's EncodedAmplitudeProject form.
func (p AmplitudeProject) Encode() EncodedAmplitudeProject {
	return EncodedAmplitudeProject{Name: p.Name, Region: p.Region, BaseURL: p.BaseURL,
		APIKeyEnv: p.APIKey.Env, APIKeyFile: p.APIKey.File, SecretKeyEnv: p.SecretKey.Env, SecretKeyFile: p.SecretKey.File}
}

// AmplitudeProject is the project e encodes; e is trusted (validated when
// decoded from a file, and a store checks it against its Hash).
func (e EncodedAmplitudeProject) AmplitudeProject() AmplitudeProject {
	return AmplitudeProject{Name: e.Name, Region: e.Region, BaseURL: e.BaseURL,
		APIKey: SecretRef{Env: e.APIKeyEnv, File: e.APIKeyFile}, SecretKey: SecretRef{Env: e.SecretKeyEnv, File: e.SecretKeyFile}}
}

// Defaults of a mapping.
const (
	DefaultIDProperty  = "user_id"
	DefaultContextKind = "user"
	DefaultGeneration  = 1
)

// Mapping is one cohort kept in sync with one segment in one or more
// destinations.
type Mapping struct {
	// Name identifies the mapping (sync --mapping NAME). Required.
	Name string
	// Source is the cohort. Required.
	Source Source
	// Segment is the segment key. Required.
	Segment string
	// Destinations are the names of the destinations written to, sorted;
	// several fan one cohort out to several environments. At least one.
	Destinations []string
	// IDProperty is the cohort property whose value becomes the context
	// key. Default DefaultIDProperty.
	IDProperty string
	// ContextKind is the kind of the contexts (the segment's
	// unboundedContextKind). Default DefaultContextKind.
	ContextKind string
	// Schedule says when the mapping runs. Required, except for a push
	// source, which runs when a push arrives.
	Schedule Schedule
	// Generation is the segment's generation, >= 1. Default 1.
	Generation int
	// MaxShrink refuses a run whose cohort lost more than this fraction of
	// the last synced members, in [0, 1); 0 turns the guard off (the
	// producer's --max-shrink). Default 0.
	MaxShrink float64
	// Enabled is false for a paused mapping. Default true.
	Enabled bool
	// Notify says who is told when a run ends. Default nobody.
	Notify Notify
}

// Hash is a digest of the mapping's whole content (hex SHA-256): equal
// mappings have equal hashes, and any change of any field changes it, so a
// store can tell "unchanged" from "changed" without comparing fields. It is
// stable across releases as long as the fields are.
func (m Mapping) Hash() string { return hashJSON(m.Encode()) }

// hashJSON is the hex SHA-256 of v's JSON, an Encoded form.
func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// The encoded forms hold strings, ints, a finite float and bools,
		// which always marshal.
		panic("catalog: hashing: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Encoded is a mapping's stable JSON form: what Hash covers and what a
// store keeps, independent of how Mapping's fields are named or ordered in
// Go. Renaming its JSON names changes every hash and stored record.
type Encoded struct {
	Name           string `json:"name"`
	SourceKind     string `json:"source_kind"`
	SourceLocation string `json:"source_location"`
	// SourceProject is omitted when empty, so that the records and hashes
	// of mappings stored before Amplitude projects existed are unchanged.
	SourceProject string   `json:"source_project,omitempty"`
	Segment       string   `json:"segment"`
	Destinations  []string `json:"destinations"`
	IDProperty    string   `json:"id_property"`
	ContextKind   string   `json:"context_kind"`
	Schedule      string   `json:"schedule"`
	Generation    int      `json:"generation"`
	MaxShrink     float64  `json:"max_shrink"`
	Enabled       bool     `json:"enabled"`
	// Notify is omitted when nobody is told, so that the records and
	// hashes of mappings stored before notifications existed are
	// unchanged.
	Notify *EncodedNotify `json:"notify,omitempty"`
}

// Encode is m's Encoded form.
func (m Mapping) Encode() Encoded {
	return Encoded{
		Name: m.Name, SourceKind: string(m.Source.Kind), SourceLocation: m.Source.Location, SourceProject: m.Source.Project,
		Segment: m.Segment, Destinations: m.Destinations, IDProperty: m.IDProperty,
		ContextKind: m.ContextKind, Schedule: m.Schedule.String(), Generation: m.Generation,
		MaxShrink: m.MaxShrink, Enabled: m.Enabled, Notify: m.Notify.encode(),
	}
}

// Mapping is the mapping e encodes. It fails only on a schedule that does
// not parse; e is trusted otherwise (it was validated when decoded from a
// file, and a store checks it against its Hash).
func (e Encoded) Mapping() (Mapping, error) {
	m := Mapping{
		Name: e.Name, Source: Source{Kind: SourceKind(e.SourceKind), Location: e.SourceLocation, Project: e.SourceProject},
		Segment: e.Segment, Destinations: e.Destinations, IDProperty: e.IDProperty,
		ContextKind: e.ContextKind, Generation: e.Generation, MaxShrink: e.MaxShrink, Enabled: e.Enabled,
		Notify: e.Notify.notify(),
	}
	if e.Schedule == string(ScheduleOnPush) {
		m.Schedule = Schedule{Kind: ScheduleOnPush}
		return m, nil
	}
	s, err := ParseSchedule(e.Schedule)
	if err != nil {
		return Mapping{}, fmt.Errorf("schedule %q: %w", e.Schedule, err)
	}
	m.Schedule = s
	return m, nil
}

// Hash is a digest of the destination's whole content, like Mapping.Hash.
func (d Destination) Hash() string { return hashJSON(d.Encode()) }

// EncodedDestination is a destination's stable JSON form: what Hash covers
// and what a store keeps. It holds where the Redis password is read, never
// the password: a Destination's Redis.Password (set by no file) is not
// encoded. Renaming its JSON names changes every hash and stored record.
type EncodedDestination struct {
	Name              string   `json:"name"`
	Environment       string   `json:"environment"`
	RedisURL          string   `json:"redis_url"`
	RedisClusterAddrs []string `json:"redis_cluster_addrs"`
	RedisUsername     string   `json:"redis_username"`
	RedisTLS          bool     `json:"redis_tls"`
	// Added later, omitted when empty: the hashes of destinations without
	// them did not change.
	RedisTLSCAFile   string `json:"redis_tls_ca_file,omitempty"`
	RedisTLSCertFile string `json:"redis_tls_cert_file,omitempty"`
	RedisTLSKeyFile  string `json:"redis_tls_key_file,omitempty"`
	PasswordEnv      string `json:"password_env"`
	PasswordFile     string `json:"password_file"`
	PrefixMode       string `json:"prefix_mode"`
	CustomPrefix     string `json:"custom_prefix"`
	ClientSideID     string `json:"client_side_id"`
	FanIn            bool   `json:"fan_in"`
}

// Encode is d's EncodedDestination form.
func (d Destination) Encode() EncodedDestination {
	return EncodedDestination{
		Name: d.Name, Environment: d.Environment, RedisURL: d.Redis.URL, RedisClusterAddrs: d.Redis.ClusterAddrs,
		RedisUsername: d.Redis.Username, RedisTLS: d.Redis.TLS, PasswordEnv: d.Password.Env, PasswordFile: d.Password.File,
		RedisTLSCAFile: d.Redis.TLSCAFile, RedisTLSCertFile: d.Redis.TLSCertFile, RedisTLSKeyFile: d.Redis.TLSKeyFile,
		PrefixMode: string(d.PrefixMode), CustomPrefix: d.CustomPrefix, ClientSideID: d.ClientSideID, FanIn: d.FanIn,
	}
}

// Destination is the destination e encodes; e is trusted (validated when
// decoded from a file, and a store checks it against its Hash).
func (e EncodedDestination) Destination() Destination {
	return Destination{
		Name: e.Name, Environment: e.Environment,
		Redis: redisx.Config{URL: e.RedisURL, ClusterAddrs: e.RedisClusterAddrs, Username: e.RedisUsername, TLS: e.RedisTLS,
			TLSCAFile: e.RedisTLSCAFile, TLSCertFile: e.RedisTLSCertFile, TLSKeyFile: e.RedisTLSKeyFile},
		Password:   SecretRef{Env: e.PasswordEnv, File: e.PasswordFile},
		PrefixMode: PrefixMode(e.PrefixMode), CustomPrefix: e.CustomPrefix, ClientSideID: e.ClientSideID, FanIn: e.FanIn,
	}
}

// keyPattern is LaunchDarkly's rule for keys (segments, and so names a
// user types on the command line) and for context kinds.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

const keyForm = "letters, digits, '.', '_' or '-'"

// clientSideIDPattern is the form of LaunchDarkly client-side IDs.
var clientSideIDPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

// validText accepts what may go in an event or a Redis key: non-empty
// UTF-8, no control characters, no blanks at either end, at most 1024 bytes.
func validText(s string) bool {
	return s != "" && len(s) <= 1024 && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) && strings.TrimSpace(s) == s
}

const textForm = "non-empty UTF-8 of at most 1024 bytes, without control characters or blanks at either end"
