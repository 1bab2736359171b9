package amplitude

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/cohortsync/cohortsync/pkg/cohortcsv"
	"github.com/cohortsync/cohortsync/producer/source"
	"github.com/cohortsync/cohortsync/producer/source/csvhttp"
)

// Kind is the source label of a sync from Amplitude.
const Kind = "amplitude"

// Columns every export has; any other mapped property is a user property,
// requested with props=1&propKeys=P.
const (
	ColumnUserID      = "user_id"
	ColumnAmplitudeID = "amplitude_id"
)

// Source is one export of a cohort. It is read once.
type Source struct {
	c        *Client
	cohortID string
	property string
	read     bool
}

var _ source.Source = (*Source)(nil)

// Source returns the export of cohort cohortID whose members are keyed by
// property: ColumnUserID, ColumnAmplitudeID, or a user property ("" is
// ColumnUserID).
func (c *Client) Source(cohortID, property string) *Source {
	if property == "" {
		property = ColumnUserID
	}
	return &Source{c: c, cohortID: cohortID, property: property}
}

// Name says which cohort of which host, e.g. "amplitude cohort 7khm89cz at
// amplitude.com".
func (s *Source) Name() string { return "amplitude cohort " + s.cohortID + " at " + s.c.host }

// Kind is "amplitude".
func (s *Source) Kind() string { return Kind }

// Read exports the cohort and yields its members.
func (s *Source) Read(ctx context.Context, emit func(key string) error, exclude func(source.Exclusion) error) (source.Stats, error) {
	if s.read {
		return source.Stats{}, errors.New(s.Name() + ": already read")
	}
	s.read = true
	if err := ctx.Err(); err != nil {
		return source.Stats{}, err
	}
	rid, err := s.request(ctx)
	if err != nil {
		return source.Stats{}, fmt.Errorf("%s: %w", s.Name(), err)
	}
	if err := s.wait(ctx, rid); err != nil {
		return source.Stats{}, fmt.Errorf("%s: export %s: %w", s.Name(), rid, err)
	}
	body, err := s.c.download(ctx, rid)
	if err != nil {
		return source.Stats{}, fmt.Errorf("%s: export %s: %w", s.Name(), rid, err)
	}
	defer func() { _ = body.Close() }() // read in full or failed: nothing to lose
	var onExclusion func(cohortcsv.Exclusion) error
	if exclude != nil {
		onExclusion = func(e cohortcsv.Exclusion) error {
			return exclude(source.Exclusion{Row: e.Row, Line: e.Line, Value: e.Value, Reason: e.Reason, Detail: e.Detail})
		}
	}
	st, err := cohortcsv.Read(ctx, body, cohortcsv.Options{IDColumn: s.property}, emit, onExclusion)
	if err != nil {
		err = fmt.Errorf("%s: export %s: %w", s.Name(), rid, err)
	}
	return source.Stats{Rows: st.Rows, Keys: st.Keys, Excluded: st.Excluded}, err
}

// request starts the export and returns its request id.
func (s *Source) request(ctx context.Context) (string, error) {
	q := url.Values{"props": {"0"}}
	if s.property != ColumnUserID && s.property != ColumnAmplitudeID {
		q.Set("props", "1")
		q.Set("propKeys", s.property)
	}
	var body struct {
		RequestID string `json:"request_id"`
	}
	if _, err := s.c.getJSON(ctx, "/api/5/cohorts/request/"+url.PathEscape(s.cohortID)+"?"+q.Encode(), &body,
		http.StatusAccepted, http.StatusOK); err != nil {
		return "", fmt.Errorf("request export: %w", err)
	}
	if body.RequestID == "" {
		return "", errors.New("request export: the answer has no request_id")
	}
	return body.RequestID, nil
}

// Export statuses.
const (
	statusInProgress = "JOB INPROGRESS"
	statusCompleted  = "JOB COMPLETED"
)

// ErrExportTimeout is wrapped when an export stays in progress past
// Options.PollTimeout.
var ErrExportTimeout = errors.New("export still in progress")

// wait polls the export's status until it completed.
func (s *Source) wait(ctx context.Context, rid string) error {
	deadline := time.Now().Add(s.c.opts.PollTimeout)
	for polls := 1; ; polls++ {
		var body struct {
			AsyncStatus string `json:"async_status"`
		}
		status, err := s.c.getJSON(ctx, "/api/5/cohorts/request-status/"+url.PathEscape(rid), &body,
			http.StatusAccepted, http.StatusOK)
		if err != nil {
			return err
		}
		switch {
		case status == http.StatusOK && body.AsyncStatus == statusCompleted:
			return nil
		case status == http.StatusOK || (body.AsyncStatus != "" && body.AsyncStatus != statusInProgress):
			return fmt.Errorf("export status %d %q", status, body.AsyncStatus)
		}
		if time.Now().Add(s.c.opts.PollInterval).After(deadline) {
			return fmt.Errorf("%w after %d polls in %v", ErrExportTimeout, polls, s.c.opts.PollTimeout)
		}
		t := time.NewTimer(s.c.opts.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// download opens the export's file: inline, or through a 302 to a
// presigned URL, asked again when that URL expired.
func (c *Client) download(ctx context.Context, rid string) (io.ReadCloser, error) {
	path := "/api/5/cohorts/request/" + url.PathEscape(rid) + "/file"
	var expired error
	for range c.opts.MaxReasks + 1 {
		resp, err := c.get(ctx, c.base+path, c.host+path, true, http.StatusOK, http.StatusFound,
			http.StatusMovedPermanently, http.StatusSeeOther, http.StatusTemporaryRedirect)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode == http.StatusOK {
			return resp, nil // holds its slot until read: a request in progress
		}
		loc, err := resp.Location()
		_ = resp.Close() // a redirect's body says nothing
		if err != nil {
			return nil, fmt.Errorf("GET %s: %d without a usable Location: %w", c.host+path, resp.StatusCode, err)
		}
		// The presigned URL is storage, not the API: no credentials, no
		// project slot.
		name := csvhttp.Redact(loc.String())
		file, err := c.get(ctx, loc.String(), name, false, http.StatusOK)
		if err == nil {
			return file, nil
		}
		var se *csvhttp.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusForbidden {
			return nil, err
		}
		expired = err // S3 answers 403 "Request has expired": ask for a fresh URL
	}
	return nil, fmt.Errorf("presigned URL refused after %d fresh ones: %w", c.opts.MaxReasks, expired)
}
