// Package bench measures cohortsync end to end against real services and,
// in the same run on the same machine, the references it is judged by: raw
// pipelined Redis writes and raw kafka-go produce. Figures are reported as
// rates and as ratios to the references, because absolute numbers move with
// the machine and ratios move only with our code. BENCHMARKS.md records the
// output of scripts/bench.sh, which runs this against a real broker and Redis.
package bench
