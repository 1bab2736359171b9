package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/internal/segmentlease"
)

// Config places and tunes the token store. The zero value takes every
// default.
type Config struct {
	// Prefix of every key: the control prefix. Default
	// segmentlease.DefaultPrefix. No '{' or '}'.
	Prefix string
	// Timeout bounds each Redis call. Default 5s.
	Timeout time.Duration
	// TouchEvery is how often at most a token's last use is written, per
	// token and process: a busy console must not write on every request.
	// Default DefaultTouchEvery.
	TouchEvery time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultTimeout    = 5 * time.Second
	DefaultTouchEvery = time.Minute
)

// Validate reports every invalid setting as a *setting.Error; the rules
// are segmentlease's, under the same setting names (one control prefix).
func (c Config) Validate() error {
	return (&segmentlease.Config{Prefix: c.Prefix, Timeout: c.Timeout}).Validate()
}

// Prefix starts every token, so that a leaked one is recognisable (secret
// scanners) and told from catalogstore's push tokens (cst_).
const Prefix = "csa_"

// MaxNameBytes bounds a token's name.
const MaxNameBytes = 100

// Errors.
var (
	// ErrNotFound is wrapped by Revoke's error for a token the store does
	// not hold.
	ErrNotFound = errors.New("no such token")
	// ErrUnauthorized is wrapped by Authenticate's error for a token that
	// is malformed, unknown or revoked.
	ErrUnauthorized = errors.New("unknown or revoked token")
)

// Token is a token's record: never its secret.
type Token struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Role     Role      `json:"role"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// stored is a token's record in Redis: the Token and its digest.
type stored struct {
	Token
	Digest string `json:"digest"`
}

// Store keeps tokens in the control Redis: the hash tokensKey holds each
// token's record by id, digestsKey maps each digest to its id (one HGET
// authenticates), lastUsedKey each id to its last use in Unix
// milliseconds. One hash tag keeps the three in one Cluster slot, so a
// create or a revoke is one transaction.
type Store struct {
	rdb redis.UniversalClient
	cfg Config

	mu      sync.Mutex
	touched map[string]time.Time // by id: when this process last wrote its last use
}

// New returns a Store on rdb (standalone or Cluster).
func New(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = segmentlease.DefaultPrefix
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.TouchEvery == 0 {
		cfg.TouchEvery = DefaultTouchEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{rdb: rdb, cfg: cfg, touched: map[string]time.Time{}}, nil
}

func (s *Store) tokensKey() string   { return s.cfg.Prefix + "{auth}:tokens" }
func (s *Store) digestsKey() string  { return s.cfg.Prefix + "{auth}:digests" }
func (s *Store) lastUsedKey() string { return s.cfg.Prefix + "{auth}:last_used" }

// CheckName reports a token name that is empty, too long, not UTF-8, or
// holds control characters or blanks at either end.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameBytes || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) || strings.TrimSpace(name) != name {
		return fmt.Errorf("token name %q: want 1 to %d bytes of UTF-8, without control characters or blanks at either end", name, MaxNameBytes)
	}
	return nil
}

// Create makes a token called name with role and returns its record and
// its secret: the only time the secret exists outside the caller, the
// store keeping its SHA-256. Names need not be unique; ids are.
func (s *Store) Create(ctx context.Context, name string, role Role) (Token, string, error) {
	if err := CheckName(name); err != nil {
		return Token{}, "", err
	}
	if !role.Valid() {
		_, err := ParseRole(string(role))
		return Token{}, "", err
	}
	var raw [32 + 8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Token{}, "", fmt.Errorf("auth: create token: %w", err)
	}
	secret := Prefix + base64.RawURLEncoding.EncodeToString(raw[:32])
	t := stored{Token: Token{ID: hex.EncodeToString(raw[32:]), Name: name, Role: role, Created: s.cfg.Now().UTC().Truncate(time.Millisecond)},
		Digest: digest(secret)}
	b, err := json.Marshal(t)
	if err != nil {
		return Token{}, "", fmt.Errorf("auth: encode token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.tokensKey(), t.ID, b)
		p.HSet(ctx, s.digestsKey(), t.Digest, t.ID)
		return nil
	})
	if err != nil {
		return Token{}, "", fmt.Errorf("auth: store token %q: %w", name, err)
	}
	return t.Token, secret, nil
}

// List returns every token, sorted by name then id, with its last use.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var all, used *redis.MapStringStringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, s.tokensKey())
		used = p.HGetAll(ctx, s.lastUsedKey())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	out := make([]Token, 0, len(all.Val()))
	for id, data := range all.Val() {
		t, err := s.decode(id, data)
		if err != nil {
			return nil, err
		}
		t.LastUsed = lastUsed(used.Val()[id])
		out = append(out, t.Token)
	}
	slices.SortFunc(out, func(a, b Token) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func lastUsed(ms string) time.Time {
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{} // never used (or a value nobody should have written: not worth failing a list)
	}
	return time.UnixMilli(n).UTC()
}

// CorruptError is a stored token record that does not decode.
type CorruptError struct {
	Key, Field string
	Problem    string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("auth: corrupt token record %s field %q: %s", e.Key, e.Field, e.Problem)
}

func (s *Store) decode(id, data string) (stored, error) {
	var t stored
	if err := json.Unmarshal([]byte(data), &t); err != nil {
		return t, &CorruptError{Key: s.tokensKey(), Field: id, Problem: err.Error()}
	}
	if t.ID != id || !t.Role.Valid() || len(t.Digest) != 2*sha256.Size {
		return t, &CorruptError{Key: s.tokensKey(), Field: id, Problem: "id, role or digest is wrong"}
	}
	return t, nil
}

// revoke deletes token ARGV[1]'s record, its digest and its last use: 1,
// or 0 if there was no such token.
var revoke = redis.NewScript(`
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return 0 end
local ok, t = pcall(cjson.decode, rec)
if ok and type(t) == 'table' and type(t.digest) == 'string' then redis.call('HDEL', KEYS[2], t.digest) end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
`)

// Revoke deletes token id: it stops authenticating at once, on every
// replica. An unknown id is an error wrapping ErrNotFound.
func (s *Store) Revoke(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	n, err := revoke.Run(ctx, s.rdb, []string{s.tokensKey(), s.digestsKey(), s.lastUsedKey()}, id).Int()
	if err != nil {
		return fmt.Errorf("auth: revoke token %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("auth: token %q: %w", id, ErrNotFound)
	}
	return nil
}

// Authenticate returns the token whose secret is secret, and records its
// use (at most every TouchEvery); a malformed, unknown or revoked secret
// is an error wrapping ErrUnauthorized. The secret is looked up by its
// digest: a guess learns nothing from the timing of a lookup of a
// SHA-256 it cannot choose.
func (s *Store) Authenticate(ctx context.Context, secret string) (Token, error) {
	if !strings.HasPrefix(secret, Prefix) || len(secret) > 200 {
		return Token{}, ErrUnauthorized
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	id, err := s.rdb.HGet(ctx, s.digestsKey(), digest(secret)).Result()
	if errors.Is(err, redis.Nil) {
		return Token{}, ErrUnauthorized
	}
	if err != nil {
		return Token{}, fmt.Errorf("auth: look up a token: %w", err)
	}
	var rec, used *redis.StringCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HGet(ctx, s.tokensKey(), id)
		used = p.HGet(ctx, s.lastUsedKey(), id)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Token{}, fmt.Errorf("auth: read token %q: %w", id, err)
	}
	data, err := rec.Result()
	if errors.Is(err, redis.Nil) {
		return Token{}, ErrUnauthorized // revoked between the two reads
	}
	if err != nil {
		return Token{}, fmt.Errorf("auth: read token %q: %w", id, err)
	}
	t, err := s.decode(id, data)
	if err != nil {
		return Token{}, err
	}
	if t.Digest != digest(secret) {
		return Token{}, ErrUnauthorized
	}
	t.LastUsed = lastUsed(used.Val())
	if now, ok := s.touchUse(ctx, id); ok {
		t.LastUsed = now.UTC().Truncate(time.Millisecond)
	}
	return t.Token, nil
}

// touch sets token ARGV[1]'s last use to ARGV[2] if it is still there (a
// revoke may have come between its authentication and this).
var touch = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// touchUse records that token id was used now, unless this process did
// within TouchEvery, and says whether it did. A failed write is not the request's failure: the
// last use is informative.
func (s *Store) touchUse(ctx context.Context, id string) (time.Time, bool) {
	now := s.cfg.Now()
	s.mu.Lock()
	if last, ok := s.touched[id]; ok && now.Sub(last) < s.cfg.TouchEvery {
		s.mu.Unlock()
		return time.Time{}, false
	}
	s.touched[id] = now
	s.mu.Unlock()
	if err := touch.Run(ctx, s.rdb, []string{s.tokensKey(), s.lastUsedKey()}, id, now.UnixMilli()).Err(); err != nil {
		s.mu.Lock()
		delete(s.touched, id) // try again next time
		s.mu.Unlock()
		return time.Time{}, false
	}
	return now, true
}

func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
