package app

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/redisx"
)

// withTokens runs f on the admin API's token store in the control Redis.
func withTokens(rc redisx.Config, sc catalogstore.Config, f func(*auth.Store) error) error {
	setRedisLogger(quietRedis{})
	return withRedis(rc, func(rdb redis.UniversalClient) error {
		s, err := auth.New(rdb, auth.Config{Prefix: sc.Prefix, Timeout: sc.Timeout})
		if err != nil {
			return err
		}
		return f(s)
	})
}

// TokensCreate makes an admin API token called name with role and writes
// its secret to stdout, the only time it is shown (the store keeps its
// SHA-256), and its id and role to stderr.
func TokensCreate(ctx context.Context, rc redisx.Config, sc catalogstore.Config, name string, role auth.Role, stdout, stderr io.Writer) error {
	return withTokens(rc, sc, func(s *auth.Store) error {
		t, secret, err := s.Create(ctx, name, role)
		if err != nil {
			return err
		}
		if err := say(stdout, "%s\n", secret); err != nil {
			return err
		}
		return say(stderr, "token %s (%s, role %s) created; its secret above is shown this once\n", t.ID, t.Name, t.Role)
	})
}

// TokensList writes a table of the admin API's tokens: never a secret.
func TokensList(ctx context.Context, rc redisx.Config, sc catalogstore.Config, stdout io.Writer) error {
	return withTokens(rc, sc, func(s *auth.Store) error {
		ts, err := s.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(w, "ID\tNAME\tROLE\tCREATED\tLAST-USED")
		for _, t := range ts {
			used := "never"
			if !t.LastUsed.IsZero() {
				used = t.LastUsed.UTC().Format(time.RFC3339)
			}
			_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.Created.UTC().Format(time.RFC3339), used)
		}
		return flush(w)
	})
}

// TokensRevoke revokes the admin API token id: it stops working at once.
func TokensRevoke(ctx context.Context, rc redisx.Config, sc catalogstore.Config, id string, stdout io.Writer) error {
	return withTokens(rc, sc, func(s *auth.Store) error {
		if err := s.Revoke(ctx, id); err != nil {
			return err
		}
		return say(stdout, "token %s: revoked\n", id)
	})
}
