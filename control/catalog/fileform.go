package catalog

import "github.com/cohortsync/cohortsync/internal/redisx"

// FileMapping is a mapping as the mappings file spells it, normalised
// (every default written out): what mappings show prints and the admin
// API answers, an entry that can be pasted back into the file.
type FileMapping struct {
	Name         string         `yaml:"name" json:"name"`
	Source       map[string]any `yaml:"source" json:"source"`
	Segment      string         `yaml:"segment" json:"segment"`
	Destinations []string       `yaml:"destinations,flow" json:"destinations"`
	IDProperty   string         `yaml:"id_property" json:"id_property"`
	ContextKind  string         `yaml:"context_kind" json:"context_kind"`
	// Schedule is absent for a push source, which declares none.
	Schedule   string  `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	Generation int     `yaml:"generation" json:"generation"`
	MaxShrink  float64 `yaml:"max_shrink" json:"max_shrink"`
	Enabled    bool    `yaml:"enabled" json:"enabled"`
	// Notify is absent when the mapping tells nobody.
	Notify *FileNotify `yaml:"notify,omitempty" json:"notify,omitempty"`
}

// FileNotify is a mapping's notify as the mappings file spells it.
type FileNotify struct {
	Webhook *FileWebhook `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	Email   *FileEmail   `yaml:"email,omitempty" json:"email,omitempty"`
}

// FileWebhook is a notify webhook in the file's form: where its signing
// secret is read, never the secret.
type FileWebhook struct {
	URL        string   `yaml:"url" json:"url"`
	SecretEnv  string   `yaml:"secret_env,omitempty" json:"secret_env,omitempty"`
	SecretFile string   `yaml:"secret_file,omitempty" json:"secret_file,omitempty"`
	Events     []string `yaml:"events,flow" json:"events"`
}

// FileEmail is a notify email in the file's form.
type FileEmail struct {
	To     []string `yaml:"to,flow" json:"to"`
	Events []string `yaml:"events,flow" json:"events"`
}

// FileForm is m in the mappings file's form.
func (m Mapping) FileForm() FileMapping {
	f := FileMapping{Name: m.Name, Segment: m.Segment, Destinations: m.Destinations, IDProperty: m.IDProperty,
		ContextKind: m.ContextKind, Generation: m.Generation, MaxShrink: m.MaxShrink, Enabled: m.Enabled, Notify: m.Notify.FileForm()}
	switch m.Source.Kind {
	case SourcePush:
		f.Source = map[string]any{"push": true}
		if in, co, ok := m.PushTarget(); ok {
			f.Source["integration"], f.Source["cohort"] = in, co
		}
	case SourceAmplitude:
		f.Source = map[string]any{"amplitude_cohort": m.Source.Location, "amplitude_project": m.Source.Project}
	default:
		f.Source = map[string]any{string(m.Source.Kind): m.Source.Location}
	}
	if m.Schedule.Kind != ScheduleOnPush {
		f.Schedule = m.Schedule.String()
	}
	return f
}

// FileForm is n in the file's form, nil when n tells nobody.
func (n Notify) FileForm() *FileNotify {
	if n.IsZero() {
		return nil
	}
	f := &FileNotify{}
	if w := n.Webhook; w != nil {
		f.Webhook = &FileWebhook{URL: w.URL, SecretEnv: w.Secret.Env, SecretFile: w.Secret.File, Events: EventNames(w.Events)}
	}
	if e := n.Email; e != nil {
		f.Email = &FileEmail{To: e.To, Events: EventNames(e.Events)}
	}
	return f
}

// FileDestination is a destination as the mappings file spells it, its
// Redis URL redacted: where the password is read, never the password.
type FileDestination struct {
	Name        string    `yaml:"name" json:"name"`
	Environment string    `yaml:"environment" json:"environment"`
	Redis       FileRedis `yaml:"redis" json:"redis"`
	// Prefix and ClientSideID are absent for the default prefix.
	Prefix       string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	ClientSideID string `yaml:"client_side_id,omitempty" json:"client_side_id,omitempty"`
	FanIn        bool   `yaml:"fan_in" json:"fan_in"`
}

// FileRedis is a destination's redis in the file's form.
type FileRedis struct {
	URL          string   `yaml:"url,omitempty" json:"url,omitempty"`
	ClusterAddrs []string `yaml:"cluster_addrs,omitempty,flow" json:"cluster_addrs,omitempty"`
	Username     string   `yaml:"username,omitempty" json:"username,omitempty"`
	PasswordEnv  string   `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	PasswordFile string   `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// TLS is a Cluster's only: a URL says it by its scheme.
	TLS         *bool  `yaml:"tls,omitempty" json:"tls,omitempty"`
	TLSCAFile   string `yaml:"tls_ca_file,omitempty" json:"tls_ca_file,omitempty"`
	TLSCertFile string `yaml:"tls_cert_file,omitempty" json:"tls_cert_file,omitempty"`
	TLSKeyFile  string `yaml:"tls_key_file,omitempty" json:"tls_key_file,omitempty"`
}

// FileForm is d in the mappings file's form.
func (d Destination) FileForm() FileDestination {
	f := FileDestination{Name: d.Name, Environment: d.Environment, FanIn: d.FanIn, Redis: FileRedis{
		URL: redisx.RedactURL(d.Redis.URL), ClusterAddrs: d.Redis.ClusterAddrs, Username: d.Redis.Username,
		PasswordEnv: d.Password.Env, PasswordFile: d.Password.File,
		TLSCAFile: d.Redis.TLSCAFile, TLSCertFile: d.Redis.TLSCertFile, TLSKeyFile: d.Redis.TLSKeyFile,
	}}
	if len(d.Redis.ClusterAddrs) > 0 {
		tls := d.Redis.TLS
		f.Redis.TLS = &tls
	}
	switch d.PrefixMode {
	case PrefixCustom:
		f.Prefix = d.CustomPrefix
	case PrefixClientSideID:
		f.ClientSideID = d.ClientSideID
	}
	return f
}
