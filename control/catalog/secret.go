package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	neturl "net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/cohortsync/cohortsync/internal/redisx"
)

// SecretRef says where a secret is read when it is needed: an environment
// variable or a file, at most one of the two. Only the reference is in the
// mappings file and the store; the secret stays where the deployment keeps
// its secrets (a Kubernetes Secret mounted as a file or an environment
// variable), so nobody reading the file or the store learns it.
type SecretRef struct {
	// Env is the name of the environment variable holding the secret.
	Env string
	// File is the path of the file holding the secret; a final newline is
	// not part of it.
	File string
}

// IsZero tells whether r names no secret.
func (r SecretRef) IsZero() bool { return r == SecretRef{} }

// String says where the secret is read, for display: "env NAME", "file
// PATH", or "none".
func (r SecretRef) String() string {
	switch {
	case r.Env != "":
		return "env " + r.Env
	case r.File != "":
		return "file " + r.File
	}
	return "none"
}

// envNamePattern is the portable form of an environment variable's name.
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

const envNameForm = "an environment variable name: letters, digits or '_', not starting with a digit"

// Errors of a secret that cannot be read; a SecretError wraps one of them
// or the error of reading the file.
var (
	ErrSecretUnset = errors.New("not set")
	ErrSecretEmpty = errors.New("empty")
)

// SecretError is a secret that cannot be read: a destination's Redis
// password, or an Amplitude project's key. It names the owner and the
// variable or file, never the secret.
type SecretError struct {
	// Destination is the destination's name, for a Redis password.
	Destination string
	// Project is the Amplitude project's name, for one of its keys.
	Project string
	// Owner names any other owner, e.g. `mapping "beta"` for its
	// webhook's secret, or "smtp" for the SMTP password.
	Owner string
	// Secret says which secret, e.g. "redis password" or "secret key".
	Secret string
	// Ref is where the secret was to be read.
	Ref SecretRef
	// Err is ErrSecretUnset, ErrSecretEmpty, or the file's read error.
	Err error
}

func (e *SecretError) Error() string {
	where := "environment variable " + e.Ref.Env
	if e.Ref.Env == "" {
		where = "file " + e.Ref.File
	}
	err := e.Err
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == e.Ref.File {
		err = pe.Err // the path is named already
	}
	owner := fmt.Sprintf("destination %q", e.Destination)
	if e.Project != "" {
		owner = fmt.Sprintf("amplitude project %q", e.Project)
	}
	if e.Owner != "" {
		owner = e.Owner
	}
	what := e.Secret
	if what == "" {
		what = "redis password"
	}
	return fmt.Sprintf("%s: %s: %s: %v", owner, what, where, err)
}

func (e *SecretError) Unwrap() error { return e.Err }

// Read reads the secret r names for owner (see SecretError.Owner), what
// being which secret: one that cannot be read, or is empty, is a
// *SecretError naming the variable or file, never the secret.
func (r SecretRef) Read(owner, what string, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (string, error) {
	if r.IsZero() {
		return "", &SecretError{Owner: owner, Secret: what, Ref: r, Err: ErrSecretUnset}
	}
	s, err := r.read(lookupEnv, readFile)
	if err != nil {
		return "", &SecretError{Owner: owner, Secret: what, Ref: r, Err: err}
	}
	return s, nil
}

// read reads the secret r names: lookupEnv reads the environment
// (os.LookupEnv) and readFile reads files (os.ReadFile). It returns
// ErrSecretUnset, ErrSecretEmpty or the file's error, to be wrapped in a
// *SecretError by the caller.
func (r SecretRef) read(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (string, error) {
	var secret string
	if r.Env != "" {
		v, ok := lookupEnv(r.Env)
		if !ok {
			return "", ErrSecretUnset
		}
		secret = v
	} else {
		b, err := readFile(r.File)
		if err != nil {
			return "", err
		}
		// Files written by editors and echo end with a newline that is
		// not part of the secret.
		secret = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	}
	if secret == "" {
		return "", ErrSecretEmpty
	}
	return secret, nil
}

// RedisConfig is the configuration to connect to d's Redis, with its
// password read from where d.Password says: lookupEnv reads the
// environment (os.LookupEnv) and readFile reads files (os.ReadFile). A
// password that cannot be read, or is empty, is a *SecretError. Without a
// password reference it is d.Redis as is.
func (d Destination) RedisConfig(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (redisx.Config, error) {
	cfg := d.Redis
	cfg.ClusterAddrs = slices.Clone(cfg.ClusterAddrs)
	if d.Password.IsZero() {
		return cfg, nil
	}
	password, err := d.Password.read(lookupEnv, readFile)
	if err != nil {
		return redisx.Config{}, &SecretError{Destination: d.Name, Ref: d.Password, Err: err}
	}
	if cfg.URL == "" {
		cfg.Password = password
		return cfg, nil
	}
	u, err := neturl.Parse(cfg.URL)
	if err != nil {
		// The decoder accepted the URL; a Destination built otherwise may
		// not be. The URL holds no password yet, so the error is safe.
		return redisx.Config{}, fmt.Errorf("destination %q: redis url: %w", d.Name, err)
	}
	u.User = neturl.UserPassword(u.User.Username(), password)
	cfg.URL = u.String()
	return cfg, nil
}

// Keys reads p's API key and secret key from where p says, like
// Destination.RedisConfig reads a password. A key that cannot be read, or
// is empty, is a *SecretError.
func (p AmplitudeProject) Keys(lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (apiKey, secretKey string, err error) {
	apiKey, err = p.APIKey.read(lookupEnv, readFile)
	if err != nil {
		return "", "", &SecretError{Project: p.Name, Secret: "api key", Ref: p.APIKey, Err: err}
	}
	secretKey, err = p.SecretKey.read(lookupEnv, readFile)
	if err != nil {
		return "", "", &SecretError{Project: p.Name, Secret: "secret key", Ref: p.SecretKey, Err: err}
	}
	return apiKey, secretKey, nil
}

// Redacted is d's Redis as shown to users: the URL with any password
// masked, or "cluster " and the Cluster's addresses.
func (d Destination) Redacted() string {
	if d.Redis.URL != "" {
		return redisx.RedactURL(d.Redis.URL)
	}
	return "cluster " + strings.Join(d.Redis.ClusterAddrs, ",")
}

// urlPassword tells whether a Redis URL carries a password.
func urlPassword(url string) bool {
	u, err := neturl.Parse(url)
	if err != nil {
		// Unparsable: redisx's checks report it; a password in it still
		// must not pass, so look for user:password@ by hand.
		return redisx.RedactURL(url) != url
	}
	_, ok := u.User.Password()
	return ok
}
