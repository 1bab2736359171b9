package progress

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/cohortsync/cohortsync/internal/setting"
	"github.com/cohortsync/cohortsync/producer"
)

// Mode says how progress is shown.
type Mode string

// Modes.
const (
	// Auto is Bar on a terminal, Log otherwise (Resolve).
	Auto Mode = "auto"
	Bar  Mode = "bar"
	Log  Mode = "log"
	// None shows nothing (the zero Mode too).
	None Mode = "none"
)

// Validate reports a Mode that is none of the four as a *setting.Error.
func (m Mode) Validate() error {
	switch m {
	case Auto, Bar, Log, None, "":
		return nil
	}
	return setting.Invalid("progress", m, "auto, bar, log or none")
}

// Resolve returns Bar or Log for Auto, depending on whether the output is
// a terminal; other modes are returned as they are.
func (m Mode) Resolve(terminal bool) Mode {
	switch {
	case m != Auto:
		return m
	case terminal:
		return Bar
	}
	return Log
}

// IsTerminal tells whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Config tunes a Reporter. The zero value takes every default.
type Config struct {
	// Mode is Bar, Log or None (Auto is resolved by the caller, which
	// knows the output; here it is Log). Default None.
	Mode Mode
	// Redraw is how often the bar is redrawn. Default 200ms.
	Redraw time.Duration
	// LogEvery is how often a log line is written in Log mode, besides one
	// at each phase change. Default 10s.
	LogEvery time.Duration
	// Width is the bar's width in columns. Default 20.
	Width int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultRedraw   = 200 * time.Millisecond
	DefaultLogEvery = 10 * time.Second
	DefaultWidth    = 20
)

// Reader is what a Reporter shows (producer.Meter).
type Reader interface{ Read() producer.Progress }

// Reporter shows the progress of one sync at a time. Start it, Watch
// each destination's meter as its sync begins, and Stop it once the
// command is done, whatever the outcome.
type Reporter struct {
	cfg Config
	out io.Writer

	mu      sync.Mutex
	log     *slog.Logger
	cur     *watched
	shown   string // the bar on screen, "" if none
	stopped bool

	cancel context.CancelFunc
	done   chan struct{}
}

// watched is the sync shown.
type watched struct {
	what, name string // "destination", "production"
	meter      Reader
	phase      producer.Phase
	since      time.Time // the phase began (seen)
	logged     time.Time // last log line
	recent     window    // of the count, for its rate
}

// New returns a Reporter writing to out (the terminal, stderr).
func New(out io.Writer, cfg Config) *Reporter {
	if cfg.Mode == "" || cfg.Mode == Auto {
		cfg.Mode = map[Mode]Mode{"": None, Auto: Log}[cfg.Mode]
	}
	if cfg.Redraw <= 0 {
		cfg.Redraw = DefaultRedraw
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = DefaultLogEvery
	}
	if cfg.Width <= 0 {
		cfg.Width = DefaultWidth
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reporter{cfg: cfg, out: out, log: slog.New(slog.DiscardHandler)}
}

// Writer is out for whatever else the command writes there meanwhile (its
// logs): in Bar mode the bar is cleared before each write and redrawn
// after it, so that a log line never lands in the middle of the bar.
func (r *Reporter) Writer() io.Writer {
	if r.cfg.Mode != Bar {
		return r.out
	}
	return writerFunc(func(p []byte) (int, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.shown != "" {
			if _, err := io.WriteString(r.out, "\r"+clearLine); err != nil {
				return 0, err
			}
		}
		n, err := r.out.Write(p)
		if err == nil && r.shown != "" {
			_, err = io.WriteString(r.out, "\r"+r.shown+clearLine)
		}
		return n, err
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// clearLine erases from the cursor to the end of the line.
const clearLine = "\x1b[K"

// columns is the width of the terminal out is, 0 when unknown: a bar
// longer than the line would wrap, and the carriage return would then
// redraw only its last part.
func columns(out io.Writer) int {
	f, ok := out.(*os.File)
	if !ok {
		return 0
	}
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return w
}

// fit cuts line to less than cols columns (cols 0: no limit).
func fit(line string, cols int) string {
	if cols <= 0 {
		return line
	}
	runes := []rune(line)
	if len(runes) < cols {
		return line
	}
	return string(runes[:cols-1])
}

// Start begins drawing (Bar) or logging (Log, through log) until Stop or
// ctx's end.
func (r *Reporter) Start(ctx context.Context, log *slog.Logger) {
	if log != nil {
		r.log = log
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	if r.cfg.Mode == None {
		close(r.done)
		return
	}
	every := r.cfg.Redraw
	if r.cfg.Mode == Log {
		every = min(r.cfg.LogEvery, time.Second) // phase changes are logged within a second
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.tick(ctx)
			}
		}
	}()
}

// Watch shows meter from now on, the sync of what (segment, destination)
// name. The sync shown before keeps its last state on its own line.
func (r *Reporter) Watch(what, name string, meter Reader) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.cfg.Mode == None {
		return
	}
	r.show(context.Background(), true)
	r.cur = &watched{what: what, name: name, meter: meter}
}

// Stop draws the last state and ends the bar's line (Bar) or logs it
// (Log); nothing is written once it returns. Idempotent; call it on every
// path, errors and cancellation included.
func (r *Reporter) Stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.stopped = true
	r.show(context.Background(), true)
}

func (r *Reporter) tick(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped {
		r.show(ctx, false)
	}
}

// show draws or logs the current sync; final ends its line (or logs it
// whatever the interval) and forgets it.
func (r *Reporter) show(ctx context.Context, final bool) {
	w := r.cur
	if w == nil {
		return
	}
	now := r.cfg.Now()
	p := w.meter.Read()
	if p.Run == "" { // not started (yet): nothing to show
		if final {
			r.cur = nil
		}
		return
	}
	changed := p.Phase != w.phase
	w.recent.add(now, p.Done, continues(w.phase, p.Phase))
	if changed {
		w.phase, w.since = p.Phase, now
	}
	s := sample{what: w.what, name: w.name, p: p, elapsed: now.Sub(w.since), perSecond: w.recent.rate()}
	switch r.cfg.Mode {
	case Bar:
		line := fit(s.bar(r.cfg.Width), columns(r.out))
		end := clearLine
		if final {
			end += "\n"
			r.cur = nil
		}
		// A terminal that fails a write loses a frame, nothing more.
		_, _ = io.WriteString(r.out, "\r"+line+end)
		r.shown = line
		if final {
			r.shown = ""
		}
	case Log:
		if final || changed || now.Sub(w.logged) >= r.cfg.LogEvery {
			r.log.InfoContext(ctx, "sync progress", s.attrs()...)
			w.logged = now
		}
		if final {
			r.cur = nil
		}
	}
}
