package kafkax

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/cohortsync/cohortsync/internal/setting"
)

// Config is how to reach and authenticate to the Kafka cluster. The names
// in the field comments are the settings' names in *setting.Error values
// (the flags; their environment twins are the same in capitals with
// underscores).
type Config struct {
	// Brokers are the bootstrap brokers, host:port (kafka-brokers).
	// Required.
	Brokers []string
	// ClientID identifies this process in the brokers' logs and quotas
	// (kafka-client-id). Default kafka-go's "<program>@<host>
	// (github.com/segmentio/kafka-go)".
	ClientID string
	// DialTimeout bounds opening a connection, TLS and SASL handshakes
	// included (kafka-dial-timeout). Default 10s.
	DialTimeout time.Duration
	// TLS encrypts the connections and optionally authenticates this client
	// with a certificate.
	TLS TLSConfig
	// SASL authenticates this client with a user name and password.
	SASL SASLConfig
}

// TLSConfig configures TLS to the brokers. Every field but Enabled
// requires Enabled: a CA file given without it would otherwise be ignored
// and the connection made in plaintext.
type TLSConfig struct {
	// Enabled connects with TLS (kafka-tls). Default false.
	Enabled bool
	// CAFile is a PEM file of the CA certificates the brokers' certificates
	// are checked against (kafka-tls-ca-file). Default the system's roots.
	CAFile string
	// CertFile and KeyFile are the PEM certificate and private key of this
	// client, for brokers requiring mutual TLS (kafka-tls-cert-file,
	// kafka-tls-key-file). Both or neither. Default none.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must carry
	// (kafka-tls-server-name). Default each broker's host name.
	ServerName string
	// InsecureSkipVerify accepts any certificate the brokers present
	// (kafka-tls-insecure-skip-verify): for tests only, it defeats TLS's
	// protection against impersonation. Default false.
	InsecureSkipVerify bool
}

// SASL mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// SASLConfig configures SASL authentication. PLAIN sends the password as
// is: use it with TLS.
type SASLConfig struct {
	// Mechanism is "" (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	// (kafka-sasl-mechanism). Default "".
	Mechanism string
	// Username and Password are the credentials (kafka-sasl-username,
	// kafka-sasl-password). Required with a mechanism.
	Username, Password string
}

// DefaultDialTimeout is the default of Config.DialTimeout.
const DefaultDialTimeout = 10 * time.Second

const mechanismForm = "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)"

// Validate checks the settings, reading the TLS files, and reports every
// invalid one as a *setting.Error.
func (c *Config) Validate() error {
	_, _, errs := c.load()
	return errors.Join(errs...)
}

// load builds the TLS configuration and the SASL mechanism of c, nil when
// not enabled, or returns every problem.
func (c *Config) load() (*tls.Config, sasl.Mechanism, []error) {
	errs := CheckBrokers("kafka-brokers", c.Brokers)
	if c.DialTimeout < 0 {
		errs = append(errs, setting.Invalid("kafka-dial-timeout", c.DialTimeout, "a positive duration (0: the default %v)", DefaultDialTimeout))
	}
	tc, terrs := c.TLS.load()
	mech, serrs := c.SASL.load()
	errs = append(append(errs, terrs...), serrs...)
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return tc, mech, nil
}

func (t *TLSConfig) load() (*tls.Config, []error) {
	if !t.Enabled {
		var errs []error
		for _, s := range []struct{ name, value string }{
			{"kafka-tls-ca-file", t.CAFile}, {"kafka-tls-cert-file", t.CertFile},
			{"kafka-tls-key-file", t.KeyFile}, {"kafka-tls-server-name", t.ServerName},
		} {
			if s.value != "" {
				errs = append(errs, setting.Invalid(s.name, s.value, "nothing unless --kafka-tls is set"))
			}
		}
		if t.InsecureSkipVerify {
			errs = append(errs, setting.Invalid("kafka-tls-insecure-skip-verify", true, "false unless --kafka-tls is set"))
		}
		return nil, errs
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as for tests only
	}
	var errs []error
	if t.CAFile != "" {
		pool, err := loadCAs(t.CAFile)
		if err != nil {
			errs = append(errs, setting.Invalid("kafka-tls-ca-file", t.CAFile, "a readable PEM file of CA certificates (%v)", err))
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		errs = append(errs, setting.Missing("kafka-tls-key-file", "the PEM private key of --kafka-tls-cert-file %s", t.CertFile))
	case t.CertFile == "" && t.KeyFile != "":
		errs = append(errs, setting.Missing("kafka-tls-cert-file", "the PEM certificate of --kafka-tls-key-file %s", t.KeyFile))
	case t.CertFile != "":
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			errs = append(errs, setting.Invalid("kafka-tls-cert-file", t.CertFile,
				"a readable PEM certificate matching the key in --kafka-tls-key-file %s (%v)", t.KeyFile, err))
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// loadCAs reads a pool of PEM certificates; a file with none is an error,
// or every broker would fail verification with a less helpful message.
func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

func (s *SASLConfig) load() (sasl.Mechanism, []error) {
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" {
			// Name the mechanism, not the credentials: the password must
			// not end up in an error message.
			return nil, []error{setting.Missing("kafka-sasl-mechanism", "%s when a SASL user name or password is set", mechanismForm)}
		}
		return nil, nil
	}
	var errs []error
	if s.Username == "" {
		errs = append(errs, setting.Missing("kafka-sasl-username", "the SASL user name for --kafka-sasl-mechanism %s", s.Mechanism))
	}
	if s.Password == "" {
		errs = append(errs, setting.Missing("kafka-sasl-password", "the SASL password for --kafka-sasl-mechanism %s", s.Mechanism))
	}
	var algo scram.Algorithm
	switch s.Mechanism {
	case MechanismPlain:
	case MechanismScramSHA256:
		algo = scram.SHA256
	case MechanismScramSHA512:
		algo = scram.SHA512
	default:
		errs = append(errs, setting.Invalid("kafka-sasl-mechanism", s.Mechanism, mechanismForm))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if algo == nil {
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	}
	m, err := scram.Mechanism(algo, s.Username, s.Password)
	if err != nil {
		// SASLprep refused the user name or the password; its error may
		// quote the password, so it is not passed on.
		return nil, []error{setting.Invalid("kafka-sasl-username", s.Username, "credentials SCRAM's SASLprep accepts (no control or prohibited characters in the user name or the password)")}
	}
	return m, nil
}
