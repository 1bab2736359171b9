package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/app"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/internal/setting"
)

func newDestinations(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "destinations",
		Short: "Inspect and test the stored destinations (preview)",
		Long: `Shows the destinations stored by mappings apply and tests that one can be
reached. A destination is a Redis (standalone or Cluster) and a key prefix,
serving one LaunchDarkly environment.

` + storeHelp,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newDestinationsList(lookup), newDestinationsShow(lookup), newDestinationsTest(lookup), newDestinationsToken(lookup))
	return cmd
}

func newDestinationsList(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the stored destinations",
		Long: `Prints a table of the stored destinations: name, environment, Redis, key
prefix, where the Redis password is read from (never the password) and
whether the prefix is shared deliberately (fan-in).`,
		Args: cobra.NoArgs,
	}
	return storeCommand(lookup, cmd, nil, func() error { return nil }, func(cmd *cobra.Command, _ []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.DestinationsList(cmd.Context(), rc, sc, cmd.OutOrStdout())
	})
}

func newDestinationsShow(lookup func(string) (string, bool)) *cobra.Command {
	return showCommand(lookup, &cobra.Command{
		Use:   "show NAME",
		Short: "Print one stored destination",
		Long: `Prints the stored destination NAME as an entry of the mappings file,
normalised: its environment written out, its password as the variable or
file it is read from.`,
		Args: cobra.ExactArgs(1),
	}, app.DestinationsShow)
}

// defaultTestTimeout is destinations test's --timeout.
const defaultTestTimeout = 5 * time.Second

func newDestinationsTest(lookup func(string) (string, bool)) *cobra.Command {
	timeout := defaultTestTimeout
	cmd := &cobra.Command{
		Use:   "test NAME",
		Short: "Check that a stored destination's Redis can be reached",
		Long: `Reads the Redis password of the stored destination NAME from its variable or
file (in this process's environment), connects to its Redis, sends PING and
reads <prefix>:big_segments_synchronized_on (absent is fine), all within
--timeout. Prints "destination NAME: connected (redis ..., prefix ...)" and
exits 0, or prints "destination NAME: not connected: " and the exact error
and exits 1.`,
		Args: cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, func(s *setting.Set) {
		s.Duration(&timeout, "timeout", "DESTINATIONS_TEST_TIMEOUT", "bound on the whole test of the destination: connecting, PING and the read")
	}, func() error {
		if timeout <= 0 {
			return setting.Invalid("timeout", timeout, "a positive duration")
		}
		return nil
	}, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.DestinationsTest(cmd.Context(), rc, sc, args[0], timeout, lookup, cmd.OutOrStdout())
	})
}

func newDestinationsToken(lookup func(string) (string, bool)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token NAME",
		Short: "Create or rotate the push token of a stored destination",
		Long: `Creates a new token for partners pushing to the destination NAME through
serve's receiver (Authorization: <token>), replacing the previous one,
which stops working at once. The token is printed once, here: the store
keeps only its SHA-256.`,
		Args: cobra.ExactArgs(1),
	}
	return storeCommand(lookup, cmd, nil, func() error { return nil }, func(cmd *cobra.Command, args []string, rc redisx.Config, sc catalogstore.Config) error {
		return app.DestinationsToken(cmd.Context(), rc, sc, args[0], cmd.OutOrStdout())
	})
}
