package progresstest

import (
	"sync"

	"github.com/cohortsync/cohortsync/producer"
)

// Meter reads what the test last set; safe for concurrent use (the
// reporter and the run recorder read it from their own goroutines). The
// zero value reads a run not started yet.
type Meter struct {
	mu sync.Mutex
	p  producer.Progress
}

// Read returns the reading last set.
func (m *Meter) Read() producer.Progress {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p
}

// Set makes p the reading.
func (m *Meter) Set(p producer.Progress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p = p
}
