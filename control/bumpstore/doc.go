// Package bumpstore keeps the generation bumps of mappings, shared by every
// replica in the control Redis: which mapping's segment moves from which
// generation to which, how far it got (built, finished) and the runs that
// built the new generation in each destination.
//
// A bump builds generation N+1 beside N (a full first sync of the
// mapping's source into N+1's keys, N untouched), moves the stored mapping
// to N+1 so that its later runs keep N+1 current, and removes N's members
// only once the user confirms that evaluators read N+1: the generation
// lives in the flag data, which cohortsync does not see. Begin and Finish
// are the rules of those steps; the Store only keeps records.
//
// Keys share the {bumps} hash tag (one Cluster slot); a finished bump is
// kept for the run history's retention, then expires.
package bumpstore
