package catalog

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cohortsync/cohortsync/internal/redisx"
)

func TestRedisConfigResolvesThePassword(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pwFile, crlfFile, emptyFile := write("pw", "s3cret\n"), write("crlf", "s3cret\r\n"), write("empty", "\n")
	missing := filepath.Join(dir, "absent")
	env := map[string]string{"PW": "s3cret", "ODD_PW": "p@ss:w/rd", "EMPTY_PW": ""}
	lookupEnv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	url := func(u string) Destination { return Destination{Name: "prod", Redis: redisx.Config{URL: u}} }
	cluster := Destination{Name: "prod", Redis: redisx.Config{ClusterAddrs: []string{"h:1", "h:2"}, Username: "u", TLS: true}}
	with := func(d Destination, r SecretRef) Destination { d.Password = r; return d }

	for _, tc := range []struct {
		name    string
		d       Destination
		want    redisx.Config
		wantErr string // the whole message; the secret never in it
		is      error  // what the error wraps
	}{
		{"no reference: the Redis as is", url("redis://h:1/2"), redisx.Config{URL: "redis://h:1/2"}, "", nil},
		{"from the environment into the URL", with(url("redis://h:1/2"), SecretRef{Env: "PW"}), redisx.Config{URL: "redis://:s3cret@h:1/2"}, "", nil},
		{"the URL's user is kept", with(url("rediss://app@h:1/2?dial_timeout=3s"), SecretRef{Env: "PW"}), redisx.Config{URL: "rediss://app:s3cret@h:1/2?dial_timeout=3s"}, "", nil},
		{"special characters are escaped in the URL", with(url("redis://h:1"), SecretRef{Env: "ODD_PW"}), redisx.Config{URL: "redis://:p%40ss%3Aw%2Frd@h:1"}, "", nil},
		{"from a file, its final newline dropped, into a Cluster's password", with(cluster, SecretRef{File: pwFile}),
			redisx.Config{ClusterAddrs: []string{"h:1", "h:2"}, Username: "u", Password: "s3cret", TLS: true}, "", nil},
		{"a CRLF file", with(cluster, SecretRef{File: crlfFile}), redisx.Config{ClusterAddrs: []string{"h:1", "h:2"}, Username: "u", Password: "s3cret", TLS: true}, "", nil},
		{"an unset variable", with(url("redis://h:1"), SecretRef{Env: "NOPE"}), redisx.Config{},
			`destination "prod": redis password: environment variable NOPE: not set`, ErrSecretUnset},
		{"an empty variable", with(url("redis://h:1"), SecretRef{Env: "EMPTY_PW"}), redisx.Config{},
			`destination "prod": redis password: environment variable EMPTY_PW: empty`, ErrSecretEmpty},
		{"a missing file", with(cluster, SecretRef{File: missing}), redisx.Config{},
			`destination "prod": redis password: file ` + missing + `: no such file or directory`, fs.ErrNotExist},
		{"an empty file", with(cluster, SecretRef{File: emptyFile}), redisx.Config{},
			`destination "prod": redis password: file ` + emptyFile + `: empty`, ErrSecretEmpty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.d.RedisConfig(lookupEnv, os.ReadFile)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("RedisConfig = %+v, want %+v", got, tc.want)
				}
				if err := got.Validate(); err != nil {
					t.Errorf("the resolved config is invalid: %v", err)
				}
				return
			}
			var se *SecretError
			if !errors.As(err, &se) || se.Destination != "prod" || se.Ref != tc.d.Password {
				t.Fatalf("err = %#v, want a *SecretError of destination prod and %v", err, tc.d.Password)
			}
			if err.Error() != tc.wantErr || !errors.Is(err, tc.is) {
				t.Errorf("err = %q, want %q wrapping %v", err, tc.wantErr, tc.is)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
	t.Run("the destination's addresses are not shared with the result", func(t *testing.T) {
		got, err := cluster.RedisConfig(lookupEnv, os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		got.ClusterAddrs[0] = "changed:1"
		if cluster.Redis.ClusterAddrs[0] != "h:1" {
			t.Error("RedisConfig's addresses alias the destination's")
		}
	})
}

func TestRedacted(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Destination
		want string
	}{
		{"a URL without password as is", Destination{Redis: redisx.Config{URL: "redis://app@h:1/2"}}, "redis://app@h:1/2"},
		{"a password in a URL masked", Destination{Redis: redisx.Config{URL: "rediss://app:s3cret@h:1/2"}}, "rediss://app:xxxxx@h:1/2"},
		{"a Cluster's addresses, not its password", Destination{Redis: redisx.Config{ClusterAddrs: []string{"a:1", "b:2"}, Password: "s3cret"}}, "cluster a:1,b:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.Redacted(); got != tc.want {
				t.Errorf("Redacted() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSecretRefString(t *testing.T) {
	for r, want := range map[SecretRef]string{{}: "none", {Env: "PW"}: "env PW", {File: "/run/pw"}: "file /run/pw"} {
		if got := r.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", r, got, want)
		}
	}
}

func TestDestinationEncodeRoundTripsAndHash(t *testing.T) {
	c, err := Load("testdata/mappings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range c.Destinations {
		if got := d.Encode().Destination(); !reflect.DeepEqual(got, d) {
			t.Errorf("round trip of %s:\n%+v\nwant\n%+v", d.Name, got, d)
		}
	}
	base := Destination{Name: "d", Environment: "e", Redis: redisx.Config{URL: "redis://h:1/0"}, Password: SecretRef{Env: "PW"}, PrefixMode: PrefixCustom, CustomPrefix: "p"}
	// Pinned: a store compares hashes written by an older release.
	if got, want := base.Hash(), pinnedDestinationHash; got != want {
		t.Errorf("Hash() = %s, want the pinned %s: changing the encoding makes every stored destination look changed", got, want)
	}
	withPassword := base
	withPassword.Redis.Password = "s3cret"
	if withPassword.Hash() != base.Hash() || strings.Contains(string(mustJSON(t, withPassword.Encode())), "s3cret") {
		t.Error("a password set on the Redis config is encoded")
	}
	for _, tc := range []struct {
		name   string
		change func(*Destination)
	}{
		{"name", func(d *Destination) { d.Name = "x" }},
		{"environment", func(d *Destination) { d.Environment = "x" }},
		{"url", func(d *Destination) { d.Redis.URL = "redis://h:1/1" }},
		{"cluster addrs", func(d *Destination) { d.Redis = redisx.Config{ClusterAddrs: []string{"h:1"}} }},
		{"username", func(d *Destination) { d.Redis.Username = "u" }},
		{"tls", func(d *Destination) { d.Redis.TLS = true }},
		{"password env", func(d *Destination) { d.Password.Env = "OTHER" }},
		{"password file", func(d *Destination) { d.Password = SecretRef{File: "PW"} }},
		{"prefix mode", func(d *Destination) { d.PrefixMode = PrefixDefault }},
		{"custom prefix", func(d *Destination) { d.CustomPrefix = "q" }},
		{"client-side id", func(d *Destination) { d.ClientSideID = "0123456789abcdef01234567" }},
		{"fan-in", func(d *Destination) { d.FanIn = true }},
	} {
		t.Run("changes with "+tc.name, func(t *testing.T) {
			d := base
			tc.change(&d)
			if d.Hash() == base.Hash() {
				t.Error("hash unchanged")
			}
		})
	}
}

const pinnedDestinationHash = "07d8de5b256bee3bc696706f86814f71f6bbbe236e622a451925db08ef4ab195"

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAmplitudeProjectKeys(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(keyFile, []byte("s3cret-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AK": "api-123", "EMPTY": ""}
	lookupEnv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		name        string
		p           AmplitudeProject
		api, secret string
		err         string
		is          error
	}{
		{name: "env and file", p: AmplitudeProject{Name: "main", APIKey: SecretRef{Env: "AK"}, SecretKey: SecretRef{File: keyFile}}, api: "api-123", secret: "s3cret-key"},
		{name: "an unset variable", p: AmplitudeProject{Name: "main", APIKey: SecretRef{Env: "NOPE"}, SecretKey: SecretRef{File: keyFile}},
			err: `amplitude project "main": api key: environment variable NOPE: not set`, is: ErrSecretUnset},
		{name: "an empty secret key", p: AmplitudeProject{Name: "main", APIKey: SecretRef{Env: "AK"}, SecretKey: SecretRef{Env: "EMPTY"}},
			err: `amplitude project "main": secret key: environment variable EMPTY: empty`, is: ErrSecretEmpty},
		{name: "a missing file", p: AmplitudeProject{Name: "main", APIKey: SecretRef{Env: "AK"}, SecretKey: SecretRef{File: filepath.Join(dir, "absent")}},
			err: `amplitude project "main": secret key: file ` + filepath.Join(dir, "absent") + `: no such file or directory`, is: fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, secret, err := tc.p.Keys(lookupEnv, os.ReadFile)
			if tc.err == "" {
				if err != nil || api != tc.api || secret != tc.secret {
					t.Fatalf("Keys = %q, %q, %v; want %q, %q", api, secret, err, tc.api, tc.secret)
				}
				return
			}
			var se *SecretError
			if err == nil || err.Error() != tc.err || !errors.Is(err, tc.is) || !errors.As(err, &se) || strings.Contains(err.Error(), "api-123") {
				t.Fatalf("Keys error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestAmplitudeProjectEncodeRoundTripsAndHash(t *testing.T) {
	c, err := Load("testdata/mappings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.AmplitudeProjects) == 0 {
		t.Fatal("the example declares no amplitude project")
	}
	for _, p := range c.AmplitudeProjects {
		if got := p.Encode().AmplitudeProject(); !reflect.DeepEqual(got, p) {
			t.Errorf("round trip of %s:\n%+v\nwant\n%+v", p.Name, got, p)
		}
	}
	if p, ok := c.AmplitudeProject("main"); !ok || p.BaseURL != "https://amplitude.com" {
		t.Errorf("AmplitudeProject(main) = %+v, %v", p, ok)
	}
	base := c.AmplitudeProjects[0]
	for name, change := range map[string]func(*AmplitudeProject){
		"name":            func(p *AmplitudeProject) { p.Name = "x" },
		"region":          func(p *AmplitudeProject) { p.Region, p.BaseURL = AmplitudeEU, AmplitudeBaseURLs[AmplitudeEU] },
		"base url":        func(p *AmplitudeProject) { p.Region, p.BaseURL = "", "http://proxy:1" },
		"api key env":     func(p *AmplitudeProject) { p.APIKey = SecretRef{Env: "OTHER"} },
		"secret key file": func(p *AmplitudeProject) { p.SecretKey = SecretRef{File: "/other"} },
	} {
		p := base
		change(&p)
		if p.Hash() == base.Hash() {
			t.Errorf("hash unchanged with %s", name)
		}
	}
}
