package runstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Delivery is one notification of a run: to whom, how many attempts, and
// how it ended. The notifier records it once it is final.
type Delivery struct {
	// ID is the delivery's id (the webhook's Cohortsync-Delivery header,
	// the email's Message-ID), the same across its attempts.
	ID string `json:"id"`
	// Destination is the destination whose run it tells of.
	Destination string `json:"destination"`
	// Channel is "webhook" or "email".
	Channel string `json:"channel"`
	// Target is the webhook's URL (its query masked) or the recipients.
	Target string `json:"target"`
	// Event is finished, failed or refused.
	Event string `json:"event"`
	// Status is "delivered" or "failed".
	Status string `json:"status"`
	// Attempts counts the requests made (SMTP sessions for an email).
	Attempts int `json:"attempts"`
	// Error is why it failed, the last attempt's error; "" when delivered.
	Error string `json:"error,omitempty"`
	// At is when it ended; Took how long it took, retries included.
	At   time.Time     `json:"at"`
	Took time.Duration `json:"took_ns"`
}

// MaxDeliveries bounds the deliveries kept per run: a run has a few
// (each destination times each channel); the bound keeps a misbehaving
// caller from growing a key without end.
const MaxDeliveries = 100

func (s *Store) deliveriesKey(id string) string { return s.cfg.Prefix + "{runs}:deliveries:" + id }

// AddDelivery appends d to the deliveries of run id, kept as long as a
// run record (the retention from now).
func (s *Store) AddDelivery(ctx context.Context, id string, d Delivery) error {
	if id == "" {
		return fmt.Errorf("runstore: a delivery needs its run's id")
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("runstore: encode delivery %s of run %s: %w", d.ID, id, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := s.deliveriesKey(id)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, key, b)
		p.LTrim(ctx, key, -MaxDeliveries, -1)
		p.PExpire(ctx, key, s.cfg.Retention)
		return nil
	})
	if err != nil {
		return fmt.Errorf("runstore: record delivery %s of run %s: %w", d.ID, id, err)
	}
	return nil
}

// Deliveries returns the deliveries of run id in the order they ended;
// none for a run without any (or past the retention).
func (s *Store) Deliveries(ctx context.Context, id string) ([]Delivery, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := s.deliveriesKey(id)
	raw, err := s.rdb.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("runstore: read deliveries of run %s: %w", id, err)
	}
	out := make([]Delivery, 0, len(raw))
	for i, r := range raw {
		var d Delivery
		if err := json.Unmarshal([]byte(r), &d); err != nil {
			return nil, fmt.Errorf("runstore: %s item %d does not decode: %w", key, i, err)
		}
		out = append(out, d)
	}
	return out, nil
}
