//go:build unix

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// FileLocker locks a segment with flock on the file "lock" in the segment's
// directory under StateDir (the directory Open uses), creating it if needed.
// The kernel releases a flock when its holder dies, so a crash never leaves
// a stale lock; the pid written into the file only serves the error message.
type FileLocker struct {
	StateDir string
}

// Lock takes the segment's flock without waiting.
func (l FileLocker) Lock(ctx context.Context, id SegmentID) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	dir := filepath.Join(l.StateDir, id.dirName())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := lockFile(filepath.Join(dir, lockFileName))
	if err != nil {
		return nil, err
	}
	return &fileLease{f: f}, nil
}

// fileLease is a held flock.
type fileLease struct {
	f    *os.File
	once sync.Once
	err  error
}

// Check returns nil: a flock is held until its file is closed, so it cannot
// be lost while the process lives.
func (*fileLease) Check(context.Context) error { return nil }

func (l *fileLease) Unlock() error {
	l.once.Do(func() { l.err = unlockFile(l.f) })
	return l.err
}

// lockFile takes an exclusive flock on path without waiting.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path) // best effort, for the message only
		_ = f.Close()                  // not locked: nothing to release
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w (holder pid %s, lock file %s)", ErrLocked, pid, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Closing releases the lock; the write error is the one to report.
	if err := f.Truncate(0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write lock file: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write lock file: %w", err)
	}
	return f, nil
}

// unlockFile releases the lock by closing the file (which drops the flock).
func unlockFile(f *os.File) error {
	if err := f.Close(); err != nil {
		return fmt.Errorf("release lock: %w", err)
	}
	return nil
}
