package catalogstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Push tokens: each destination may have one token that partners pushing
// to its environment present (the receiver's Authorization). Only the
// token's SHA-256 is stored, in the hash tokensKey by destination name;
// the token itself is shown once, by RotateToken.

// tokensKey is the hash of every destination's push-token digest.
func (c Config) tokensKey() string { return c.Prefix + "{catalog}:tokens" }

// tokenPrefix starts every token, so a leaked one is recognisable (secret
// scanners) and a mistyped header is told from a token.
const tokenPrefix = "cst_"

// setToken stores ARGV[2] as the digest of destination ARGV[1] if that
// destination (a field of KEYS[1]) exists; the catalog hash tag keeps both
// keys in one Cluster slot.
var setToken = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// RotateToken creates a new push token for the destination called name,
// replacing its previous one (which stops working at once), and returns
// it: the only time it is readable. It fails with ErrNotFound for an
// unknown destination.
func (s *Store) RotateToken(ctx context.Context, name string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("catalogstore: token for %q: %w", name, err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ok, err := setToken.Run(ctx, s.rdb, []string{s.cfg.destinationsKey(), s.cfg.tokensKey()}, name, digest(token)).Int()
	if err != nil {
		return "", fmt.Errorf("catalogstore: token for %q: %w", name, err)
	}
	if ok == 0 {
		return "", notFound(kindDestination, name)
	}
	return token, nil
}

// TokenOwner returns the name of the destination whose push token is
// token, or "" if none. Every stored digest is compared in constant time,
// so neither the timing of one comparison nor the number made tells how
// close a guess was.
func (s *Store) TokenOwner(ctx context.Context, token string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	all, err := s.rdb.HGetAll(ctx, s.cfg.tokensKey()).Result()
	if err != nil {
		return "", fmt.Errorf("catalogstore: read push tokens: %w", err)
	}
	got := sha256.Sum256([]byte(token))
	owner := ""
	for name, d := range all {
		want, err := hex.DecodeString(d)
		if err != nil || len(want) != sha256.Size {
			return "", &CorruptError{Key: s.cfg.tokensKey(), Field: name, Problem: "not a SHA-256 digest"}
		}
		if subtle.ConstantTimeCompare(got[:], want) == 1 {
			owner = name
		}
	}
	return owner, nil
}

func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
