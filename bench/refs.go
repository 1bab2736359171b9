package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cohortsync/cohortsync/pkg/bigsegments"
)

// ErrNoRedisCLI says redis-cli, the reference of the apply rate, is not
// installed.
var ErrNoRedisCLI = errors.New("redis-cli is not on PATH (it ships with redis-server, e.g. the redis-tools package); it is the apply rate's reference")

// pipeReplies parses redis-cli --pipe's last line, "errors: 0, replies: N".
var pipeReplies = regexp.MustCompile(`errors: (\d+), replies: (\d+)`)

// Pipe times `redis-cli --pipe < file` against the standalone server of
// url: the bare layout written as fast as Redis takes it. file holds n
// commands (WriteIncludeSADDs); cli is the redis-cli executable ("" for
// redis-cli from PATH). It returns commands per second.
func Pipe(ctx context.Context, cli, url, file string, n int) (float64, error) {
	if cli == "" {
		cli = "redis-cli"
	}
	path, err := exec.LookPath(cli)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrNoRedisCLI, err)
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return 0, fmt.Errorf("redis-cli --pipe: the Redis URL: %w", err)
	}
	if opts.TLSConfig != nil {
		return 0, errors.New("redis-cli --pipe: a rediss:// URL is not supported by the reference; point it at a plain listener")
	}
	host, port, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return 0, fmt.Errorf("redis-cli --pipe: address %q: %w", opts.Addr, err)
	}
	in, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer func() { _ = in.Close() }() // read-only
	args := []string{"-h", host, "-p", port, "-n", strconv.Itoa(opts.DB), "--pipe"}
	if opts.Username != "" {
		args = append(args, "--user", opts.Username)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = in
	// The password goes in the environment: arguments show in process lists.
	cmd.Env = os.Environ()
	if opts.Password != "" {
		cmd.Env = append(cmd.Env, "REDISCLI_AUTH="+opts.Password)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("redis-cli --pipe: %w: %s", err, bytes.TrimSpace(out.Bytes()))
	}
	m := pipeReplies.FindSubmatch(out.Bytes())
	if m == nil {
		return 0, fmt.Errorf("redis-cli --pipe: no \"errors: E, replies: N\" in its output: %s", bytes.TrimSpace(out.Bytes()))
	}
	if string(m[1]) != "0" || string(m[2]) != strconv.Itoa(n) {
		return 0, fmt.Errorf("redis-cli --pipe: %s errors and %s replies, want 0 and %d", m[1], m[2], n)
	}
	return float64(n) / d.Seconds(), nil
}

// SortComm times what the Unix tools do for a re-sync: sort each key file
// (LC_ALL=C, byte order) and list the lines in only one of them
// (comm -3). It returns the time and the number of lines comm printed.
func SortComm(ctx context.Context, dir, before, after string) (time.Duration, int, error) {
	run := func(out *os.File, name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = out, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
		}
		return nil
	}
	sortedBefore, sortedAfter := filepath.Join(dir, "before.sorted"), filepath.Join(dir, "after.sorted")
	diff, err := os.CreateTemp(dir, "comm-")
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = diff.Close(); _ = os.Remove(diff.Name()) }() // scratch
	start := time.Now()
	err = errors.Join(
		run(nil, "sort", "-T", dir, "-o", sortedBefore, before),
		run(nil, "sort", "-T", dir, "-o", sortedAfter, after))
	if err == nil {
		err = run(diff, "comm", "-3", sortedBefore, sortedAfter)
	}
	d := time.Since(start)
	_ = os.Remove(sortedBefore) // scratch
	_ = os.Remove(sortedAfter)
	if err != nil {
		return 0, 0, err
	}
	b, err := os.ReadFile(diff.Name())
	if err != nil {
		return 0, 0, err
	}
	return d, bytes.Count(b, []byte("\n")), nil
}

// RawSADD writes the include sets of n members Key(i) with pipelined SADDs
// of batch commands each, under prefix, and returns commands per second:
// the rate of the Redis at hand for the bare layout, from Go.
func RawSADD(ctx context.Context, rdb redis.UniversalClient, prefix, ref string, n, batch int) (float64, error) {
	start := time.Now()
	for i := 0; i < n; i += batch {
		p := rdb.Pipeline()
		for j := i; j < min(i+batch, n); j++ {
			p.SAdd(ctx, bigsegments.IncludeKey(prefix, Key(j)), ref)
		}
		if _, err := p.Exec(ctx); err != nil {
			return 0, fmt.Errorf("raw pipelined SADD: %w", err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
