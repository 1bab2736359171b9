package snapshot_test

import (
	"testing"

	"github.com/cohortsync/cohortsync/pkg/snapshot"
	"github.com/cohortsync/cohortsync/pkg/snapshot/snapshottest"
)

func TestFileLockerConformance(t *testing.T) {
	snapshottest.LockerConformance(t, func(t *testing.T) snapshot.Locker {
		return snapshot.FileLocker{StateDir: t.TempDir()}
	})
}

func TestStateSeqConformance(t *testing.T) {
	snapshottest.SeqAllocatorConformance(t, func(*testing.T) snapshot.SeqAllocator { return snapshot.StateSeq{} })
}
