// Package progress shows a sync's progress on stderr while it runs: a bar
// redrawn in place on a terminal (phase, count, rate and, once the total is
// known, ETA), or plain log lines at a modest interval when stderr is not
// one. It reads producer.Meter, which the run keeps up to date at its
// edges; it never slows the run down beyond that.
package progress
