package catalogstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/setting"
)

func TestConfigValidate(t *testing.T) {
	// Keyed by what each case shows; bad is the names of the invalid
	// settings, none if valid.
	tests := map[string]struct {
		cfg Config
		bad []string
	}{
		"the zero value takes the defaults":                 {Config{}, nil},
		"a prefix and a timeout":                            {Config{Prefix: "acme:ctl:", Timeout: time.Second}, nil},
		"a prefix with an opening brace would move the tag": {Config{Prefix: "a{b:"}, []string{"control-prefix"}},
		"a prefix with a closing brace":                     {Config{Prefix: "a}b:"}, []string{"control-prefix"}},
		"a negative timeout":                                {Config{Timeout: -time.Second}, []string{"control-timeout"}},
		"every invalid setting is reported, in field order": {Config{Prefix: "{", Timeout: -1}, []string{"control-prefix", "control-timeout"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, e := range setting.Errors(tt.cfg.Validate()) {
				got = append(got, e.Name)
			}
			if n := len(setting.Leaves(tt.cfg.Validate())); n != len(got) {
				t.Errorf("%d errors, %d of them *setting.Error", n, len(got))
			}
			if !reflect.DeepEqual(got, tt.bad) {
				t.Errorf("invalid settings = %v, want %v", got, tt.bad)
			}
			if _, err := New(nil, tt.cfg); (err != nil) != (tt.bad != nil) {
				t.Errorf("New error = %v, want one iff settings are invalid", err)
			}
		})
	}
}

func TestDefaultsAndKeyLayout(t *testing.T) {
	s, err := New(nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	// One hash tag, so that one script can write them all on a Cluster.
	for got, want := range map[string]string{
		s.cfg.mappingsKey():     "cohortsync:control:{catalog}:mappings",
		s.cfg.destinationsKey(): "cohortsync:control:{catalog}:destinations",
		s.cfg.versionKey():      "cohortsync:control:{catalog}:version",
	} {
		if got != want {
			t.Errorf("key = %q, want %q", got, want)
		}
	}
	if s.cfg.Timeout != DefaultTimeout {
		t.Errorf("timeout = %v, want %v", s.cfg.Timeout, DefaultTimeout)
	}
}
