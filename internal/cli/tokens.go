package cli

import (
	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/auth"
	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
)

func newTokens(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "The admin API's bearer tokens",
		Long: `The admin API (served by serve under /api/v1 on --http-addr) takes a bearer
token, Authorization: Bearer <token>, with a role:

  admin   everything: also tokens, deleting destinations, erasing a context
  writer  what a reader may, plus mappings (create, update, delete, pause,
          resume, sync now), list-segment edits, creating and updating
          destinations
  reader  reads everything but the tokens

Tokens are kept in the control Redis as a SHA-256 digest with their name,
role, creation and last use; a token is shown once, when created. Create the
first admin token here; the API's POST /api/v1/tokens makes the others.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newTokensCreate(lookup), newTokensList(lookup), newTokensRevoke(lookup))
	return cmd
}

func newTokensCreate(lookup func(string) (string, bool)) *cobra.Command {
	var name, role string
	cmd := &cobra.Command{
		Use:   "create --name NAME --role admin|writer|reader",
		Short: "Create a token and print it, the only time it is shown",
		Long: `Creates an admin API token and prints it on stdout (its id and role on
stderr). Only its SHA-256 is stored: keep it in a secret store now.`,
		Args: cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.String(&name, "name", "", "what the token is for, e.g. ci or console (required)")
		s.String(&role, "role", "", "admin, writer or reader (required)")
	}, func() error {
		if name == "" {
			return setting.Missing("name", "what the token is for")
		}
		if err := auth.CheckName(name); err != nil {
			return setting.Invalid("name", name, "1 to %d bytes, without control characters or blanks at either end", auth.MaxNameBytes)
		}
		if role == "" {
			return setting.Missing("role", "admin, writer or reader")
		}
		if _, err := auth.ParseRole(role); err != nil {
			return setting.Invalid("role", role, "admin, writer or reader")
		}
		return nil
	}, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.TokensCreate(cmd.Context(), rc, sc, name, auth.Role(role), cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
}

func newTokensList(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens: id, name, role, created, last used (never a secret)",
		Args:  cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, nil, func() error { return nil }, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.TokensList(cmd.Context(), rc, sc, cmd.OutOrStdout())
	})
}

func newTokensRevoke(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: it stops working at once, on every replica",
		Args:  cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, nil, func() error { return nil }, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.TokensRevoke(cmd.Context(), rc, sc, args[0], cmd.OutOrStdout())
	})
}
