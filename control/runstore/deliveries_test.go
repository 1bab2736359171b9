package runstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// TestDeliveries: a run's deliveries are read back in the order they were
// recorded, expire with the run's retention, and are bounded.
func TestDeliveries(t *testing.T) {
	for _, b := range testenv.RedisBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := t.Context()
			prefix := testenv.Name(t) + ":"
			testenv.DropPrefix(t, b.Client, testenv.Name(t))
			s, err := New(b.Client, Config{Prefix: prefix, Retention: 48 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			const run = "20261207T120000Z-abc"
			at := time.Date(2026, 12, 7, 12, 0, 1, 0, time.UTC)
			web := Delivery{ID: "d1", Destination: "production", Channel: "webhook", Target: "https://h/x", Event: "failed",
				Status: "failed", Attempts: 3, Error: "HTTP 500", At: at, Took: 2 * time.Second}
			mail := Delivery{ID: "d2", Destination: "production", Channel: "email", Target: "ops@example.com", Event: "failed",
				Status: "delivered", Attempts: 1, At: at.Add(time.Second), Took: time.Second}
			for _, d := range []Delivery{web, mail} {
				if err := s.AddDelivery(ctx, run, d); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Deliveries(ctx, run)
			if err != nil || len(got) != 2 || got[0] != web || got[1] != mail {
				t.Fatalf("Deliveries = %+v, %v; want %+v then %+v", got, err, web, mail)
			}
			ttl, err := b.Client.PTTL(ctx, prefix+"{runs}:deliveries:"+run).Result()
			if err != nil || ttl <= 47*time.Hour || ttl > 48*time.Hour {
				t.Fatalf("TTL = %v, %v; want the retention, 48h", ttl, err)
			}
			if none, err := s.Deliveries(ctx, "20261207T120000Z-none"); err != nil || len(none) != 0 {
				t.Fatalf("Deliveries of a run without any = %+v, %v", none, err)
			}
			if err := s.AddDelivery(ctx, "", web); err == nil {
				t.Fatal("AddDelivery without a run id: no error")
			}
			for i := range MaxDeliveries {
				if err := s.AddDelivery(ctx, run, Delivery{ID: fmt.Sprint("n", i)}); err != nil {
					t.Fatal(err)
				}
			}
			got, err = s.Deliveries(ctx, run)
			if err != nil || len(got) != MaxDeliveries || got[0].ID != "n0" {
				t.Fatalf("after %d more: %d deliveries (first %+v), %v; want the last %d", MaxDeliveries, len(got), got[0], err, MaxDeliveries)
			}
		})
	}
}
