package retry

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// fakeClock is the clock of the backoff and the timer of its waits: a wait
// advances the clock by its duration and ends at once.
type fakeClock struct {
	now time.Time
	c   chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), c: make(chan time.Time, 1)}
}

func (f *fakeClock) Now() time.Time { return f.now }
func (f *fakeClock) Start(d time.Duration) {
	f.now = f.now.Add(d)
	f.c <- f.now
}
func (f *fakeClock) Stop()               {}
func (f *fakeClock) C() <-chan time.Time { return f.c }

var errTransient = errors.New("connection refused")

func TestDo(t *testing.T) {
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name string
		p    Policy
		// fail returns the error of attempt n (from 1), nil for success.
		fail      func(n int) error
		wantCalls int // 0: at least 2, checked by check
		wantErr   string
		wantIs    []error
		// waitMin and waitMax bound every wait notified.
		waitMin, waitMax time.Duration
		// elapsedMax bounds the clock's advance over the whole call.
		elapsedMax time.Duration
	}{
		{name: "success at once calls op once and never waits",
			fail: func(int) error { return nil }, wantCalls: 1},
		{name: "transient errors are retried until success",
			p:         Policy{Initial: time.Second, Max: 2 * time.Second, Timeout: time.Minute},
			fail:      func(n int) error { return errorsUntil(n, 4) },
			wantCalls: 4, waitMin: 500 * time.Millisecond, waitMax: 3 * time.Second},
		{name: "a permanent error stops at once and is returned unwrapped, named",
			p:         Policy{Initial: time.Second, Timeout: time.Minute},
			fail:      func(int) error { return Permanent(errBoom) },
			wantCalls: 1, wantErr: "write: boom", wantIs: []error{errBoom}},
		{name: "a permanent error after transient ones stops there",
			p: Policy{Initial: time.Second, Timeout: time.Minute},
			fail: func(n int) error {
				if n == 3 {
					return Permanent(errBoom)
				}
				return errTransient
			},
			wantCalls: 3, wantErr: "write: boom", wantIs: []error{errBoom}},
		{name: "timeout bounds the retries and the last error is returned, named",
			p:       Policy{Initial: time.Second, Max: time.Second, Timeout: 10 * time.Second},
			fail:    func(int) error { return errTransient },
			wantErr: "write: connection refused", wantIs: []error{errTransient},
			waitMin: 500 * time.Millisecond, waitMax: 1500 * time.Millisecond, elapsedMax: 10 * time.Second},
		{name: "a wait asked for with After is honoured when longer than the backoff",
			p: Policy{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, Timeout: time.Minute},
			fail: func(n int) error {
				if n < 3 {
					return After(errTransient, 7*time.Second)
				}
				return nil
			},
			wantCalls: 3, waitMin: 7 * time.Second, waitMax: 7 * time.Second},
		{name: "a wait asked for past the timeout gives up at once with the error",
			p:         Policy{Initial: time.Second, Timeout: 10 * time.Second},
			fail:      func(int) error { return After(errTransient, time.Hour) },
			wantCalls: 1, wantErr: "write: connection refused", wantIs: []error{errTransient}, elapsedMax: time.Nanosecond},
		{name: "zero policy takes the defaults",
			fail:      func(n int) error { return errorsUntil(n, 2) },
			wantCalls: 2, waitMin: DefaultInitial / 2, waitMax: DefaultInitial * 3 / 2},
		{name: "waits grow up to max",
			p:         Policy{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, Timeout: time.Hour},
			fail:      func(n int) error { return errorsUntil(n, 30) },
			wantCalls: 30, waitMin: 5 * time.Millisecond, waitMax: 60 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			start := clk.now
			calls := 0
			var waits []time.Duration
			err := do(context.Background(), tc.p, "write", func() error {
				calls++
				return tc.fail(calls)
			}, func(err error, d time.Duration) {
				if err == nil {
					t.Error("notify without an error")
				}
				waits = append(waits, d)
			}, clk, clk)

			if tc.wantCalls > 0 && calls != tc.wantCalls {
				t.Errorf("op called %d times, want %d", calls, tc.wantCalls)
			}
			if tc.wantCalls == 0 && calls < 2 {
				t.Errorf("op called %d times, want retries", calls)
			}
			if len(waits) != calls-1 { // every failure but the last is followed by a wait
				t.Errorf("%d waits notified for %d calls", len(waits), calls)
			}
			for _, w := range waits {
				if w < tc.waitMin || tc.waitMax > 0 && w > tc.waitMax {
					t.Errorf("wait %v outside [%v, %v]", w, tc.waitMin, tc.waitMax)
				}
			}
			if tc.elapsedMax > 0 && clk.now.Sub(start) > tc.elapsedMax {
				t.Errorf("waited %v in all, more than the timeout %v", clk.now.Sub(start), tc.elapsedMax)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("err = %v, want %s", err, tc.wantErr)
			}
			if IsPermanent(err) {
				t.Errorf("returned error still marked permanent: %v", err)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("err %v does not wrap %v", err, target)
				}
			}
		})
	}
}

func errorsUntil(n, success int) error {
	if n < success {
		return errTransient
	}
	return nil
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	t.Run("context already done: one attempt, both errors wrapped", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := 0
		err := Do(ctx, Policy{Initial: time.Hour}, "fetch", func() error { calls++; return io.ErrUnexpectedEOF }, nil)
		if calls != 1 {
			t.Errorf("op called %d times, want 1", calls)
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(err.Error(), "fetch: ") {
			t.Fatalf("err = %v, want fetch: context canceled wrapping the last error", err)
		}
	})
	t.Run("context ends during a wait: Do returns at once", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		start := time.Now()
		err := Do(ctx, Policy{Initial: time.Hour, Max: time.Hour, Timeout: 2 * time.Hour}, "fetch",
			func() error { return errTransient },
			func(error, time.Duration) { cancel() })
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Do returned after %v", d)
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errTransient) {
			t.Fatalf("err = %v, want context canceled and the last error", err)
		}
		if want := "fetch: context canceled (last error: connection refused)"; err.Error() != want {
			t.Fatalf("err = %q, want %q", err, want)
		}
	})
	t.Run("op's own context error is not repeated", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		err := Do(ctx, Policy{Initial: time.Millisecond}, "write", func() error { cancel(); return ctx.Err() }, nil)
		if want := "write: context canceled"; err == nil || err.Error() != want {
			t.Fatalf("err = %v, want %s", err, want)
		}
	})
}

func TestDoRealWaitsAreShort(t *testing.T) {
	calls := 0
	start := time.Now()
	err := Do(context.Background(), Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond, Timeout: time.Second}, "ping",
		func() error { calls++; return errorsUntil(calls, 3) }, nil)
	if err != nil || calls != 3 {
		t.Fatalf("err = %v after %d calls, want success on the third", err, calls)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v", d)
	}
}
