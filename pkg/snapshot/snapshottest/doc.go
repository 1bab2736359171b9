// Package snapshottest holds the conformance tests of snapshot's Locker and
// SeqAllocator, exported so that every implementation (the local ones in
// package snapshot and the shared ones replicas use) is held to the same
// contract the Store relies on, instead of each package restating it.
package snapshottest
