package kafkax

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/internal/setting"
)

func TestConfigValidate(t *testing.T) {
	ca := newTestCA(t)
	otherCA := newTestCA(t)
	cert, key := ca.issue(t, "client", "client.test", true)
	_, otherKey := otherCA.issue(t, "other-client", "client.test", true)
	garbage := writeFile(t, ca.dir, "garbage.pem", "not a certificate\n")
	missing := filepath.Join(ca.dir, "missing.pem")
	brokers := []string{"127.0.0.1:9092"}
	tlsOn := func(tc TLSConfig) TLSConfig { tc.Enabled = true; return tc }

	for _, tc := range []struct {
		name string
		cfg  Config
		// want lists, in order, "name" or "name=value" of every
		// *setting.Error, and substrings of its message.
		want []string
		// contains are substrings the whole error must have.
		contains []string
		// absent are substrings it must not have.
		absent []string
	}{
		{name: "brokers only is valid", cfg: Config{Brokers: brokers}},
		{name: "TLS with the system roots is valid", cfg: Config{Brokers: brokers, TLS: TLSConfig{Enabled: true}}},
		{name: "TLS with a CA, a client certificate and a server name is valid",
			cfg: Config{Brokers: brokers, ClientID: "cohortsync", DialTimeout: time.Second,
				TLS: TLSConfig{Enabled: true, CAFile: ca.CAFile, CertFile: cert, KeyFile: key, ServerName: "broker.test"}}},
		{name: "every SASL mechanism with credentials is valid",
			cfg: Config{Brokers: brokers, SASL: SASLConfig{Mechanism: MechanismScramSHA512, Username: "u", Password: "p"}}},
		{name: "missing brokers and a negative dial timeout are both reported",
			cfg:  Config{DialTimeout: -time.Second},
			want: []string{"kafka-brokers", "kafka-dial-timeout=-1s"}},
		{name: "a bad broker address is named",
			cfg:  Config{Brokers: []string{"kafka"}},
			want: []string{"kafka-brokers=kafka"}},
		{name: "TLS files without --kafka-tls are refused rather than ignored",
			cfg: Config{Brokers: brokers, TLS: TLSConfig{CAFile: ca.CAFile, CertFile: cert, KeyFile: key, ServerName: "b", InsecureSkipVerify: true}},
			want: []string{"kafka-tls-ca-file=" + ca.CAFile, "kafka-tls-cert-file=" + cert, "kafka-tls-key-file=" + key,
				"kafka-tls-server-name=b", "kafka-tls-insecure-skip-verify=true"}},
		{name: "an unreadable CA file is named with its path",
			cfg:      Config{Brokers: brokers, TLS: tlsOn(TLSConfig{CAFile: missing})},
			want:     []string{"kafka-tls-ca-file=" + missing},
			contains: []string{"no such file"}},
		{name: "a CA file without PEM certificates is named with its path",
			cfg:      Config{Brokers: brokers, TLS: tlsOn(TLSConfig{CAFile: garbage})},
			want:     []string{"kafka-tls-ca-file=" + garbage},
			contains: []string{"no PEM certificate in " + garbage}},
		{name: "a certificate without its key asks for the key",
			cfg:      Config{Brokers: brokers, TLS: tlsOn(TLSConfig{CertFile: cert})},
			want:     []string{"kafka-tls-key-file"},
			contains: []string{"--kafka-tls-key-file: required, want the PEM private key of --kafka-tls-cert-file " + cert}},
		{name: "a key without its certificate asks for the certificate",
			cfg:  Config{Brokers: brokers, TLS: tlsOn(TLSConfig{KeyFile: key})},
			want: []string{"kafka-tls-cert-file"}},
		{name: "a certificate that does not match its key is named with both paths",
			cfg:      Config{Brokers: brokers, TLS: tlsOn(TLSConfig{CertFile: cert, KeyFile: otherKey})},
			want:     []string{"kafka-tls-cert-file=" + cert},
			contains: []string{otherKey}},
		{name: "a certificate file that is not PEM is named",
			cfg:  Config{Brokers: brokers, TLS: tlsOn(TLSConfig{CertFile: garbage, KeyFile: key})},
			want: []string{"kafka-tls-cert-file=" + garbage}},
		{name: "an unknown mechanism is named with the ones accepted",
			cfg:      Config{Brokers: brokers, SASL: SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}},
			want:     []string{"kafka-sasl-mechanism=GSSAPI"},
			contains: []string{"PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"}},
		{name: "mechanism names are exact",
			cfg:  Config{Brokers: brokers, SASL: SASLConfig{Mechanism: "plain", Username: "u", Password: "p"}},
			want: []string{"kafka-sasl-mechanism=plain"}},
		{name: "a mechanism without credentials asks for both",
			cfg:  Config{Brokers: brokers, SASL: SASLConfig{Mechanism: MechanismPlain}},
			want: []string{"kafka-sasl-username", "kafka-sasl-password"}},
		{name: "a mechanism without a password asks for it",
			cfg:  Config{Brokers: brokers, SASL: SASLConfig{Mechanism: MechanismScramSHA256, Username: "u"}},
			want: []string{"kafka-sasl-password"}},
		{name: "credentials without a mechanism ask for one and never quote the password",
			cfg:    Config{Brokers: brokers, SASL: SASLConfig{Username: "u", Password: "s3cret"}},
			want:   []string{"kafka-sasl-mechanism"},
			absent: []string{"s3cret"}},
		{name: "credentials SCRAM refuses are reported without the password",
			cfg:    Config{Brokers: brokers, SASL: SASLConfig{Mechanism: MechanismScramSHA256, Username: "u", Password: "s3cret\u0007"}},
			want:   []string{"kafka-sasl-username=u"},
			absent: []string{"s3cret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, newErr := New(tc.cfg)
			if (err == nil) != (newErr == nil) {
				t.Fatalf("Validate() = %v but New() = %v", err, newErr)
			}
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %v", tc.want)
			}
			serrs := setting.Errors(err)
			if len(serrs) != len(setting.Leaves(err)) {
				t.Errorf("some errors are not *setting.Error: %v", err)
			}
			var got []string
			for _, se := range serrs {
				g := se.Name
				if !se.Missing {
					g += "=" + se.Value
				}
				got = append(got, g)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("setting errors:\n%s\nwant:\n%s\n(%v)", strings.Join(got, "\n"), strings.Join(tc.want, "\n"), err)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error has %q:\n%v", s, err)
				}
			}
		})
	}
}
