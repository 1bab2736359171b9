package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/cohortsync/cohortsync/control/catalogstore"
	"github.com/cohortsync/cohortsync/internal/redisx"
	"github.com/cohortsync/cohortsync/producer/source/amplitude"
)

// AmplitudeCohorts writes a table of the cohorts of the stored Amplitude
// project called project to stdout: id, name, size, last computed and
// archived. The project's keys are read from where it says, through
// lookupEnv (the command's environment) or its file, within timeout.
func AmplitudeCohorts(ctx context.Context, rc redisx.Config, sc catalogstore.Config, project string, timeout time.Duration,
	lookupEnv func(string) (string, bool), stdout io.Writer) error {
	return withStore(rc, sc, func(s *catalogstore.Store) error {
		p, err := s.AmplitudeProject(ctx, project)
		if err != nil {
			return err
		}
		apiKey, secretKey, err := p.Keys(lookupEnv, os.ReadFile)
		if err != nil {
			return err
		}
		c, err := amplitude.New(p.BaseURL, amplitude.Credentials{APIKey: apiKey, SecretKey: secretKey}, amplitude.Options{})
		if err != nil {
			return fmt.Errorf("amplitude project %q: %w", p.Name, err)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cohorts, err := c.ListCohorts(ctx)
		if err != nil {
			return fmt.Errorf("amplitude project %q: %w", p.Name, err)
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(w, "ID\tNAME\tSIZE\tLAST-COMPUTED\tARCHIVED")
		for _, co := range cohorts {
			last := "never"
			if !co.LastComputed.IsZero() {
				last = co.LastComputed.UTC().Format(time.RFC3339)
			}
			_, _ = fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%t\n", co.ID, co.Name, co.Size, last, co.Archived)
		}
		return flush(w)
	})
}
