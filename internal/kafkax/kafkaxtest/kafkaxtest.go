// Package kafkaxtest gives tests the kafkax.Factory of the test's Kafka
// (pkg/testenv: an in-process kfake, or the real broker of `make test`),
// built and closed one way everywhere, as internal/app does for a process.
// It lives beside kafkax rather than in pkg/testenv because kafkax's own
// tests use testenv.
package kafkaxtest

import (
	"testing"

	"github.com/cohortsync/cohortsync/internal/kafkax"
	"github.com/cohortsync/cohortsync/pkg/testenv"
)

// Kafka returns a Factory for the test's Kafka (testenv.Kafka), closed when
// the test ends; its Brokers are the test's brokers.
func Kafka(t testing.TB) *kafkax.Factory {
	t.Helper()
	brokers, _ := testenv.Kafka(t)
	return Factory(t, brokers...)
}

// Factory returns a plaintext Factory for brokers, closed when the test
// ends. A broker that is not host:port fails the test.
func Factory(t testing.TB, brokers ...string) *kafkax.Factory {
	t.Helper()
	f, err := kafkax.New(kafkax.Config{Brokers: brokers})
	if err != nil {
		t.Fatalf("kafkax.New(%q): %v", brokers, err)
	}
	t.Cleanup(func() { _ = f.Close() }) // Close never fails
	return f
}
