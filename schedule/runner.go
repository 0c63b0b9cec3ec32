// Package schedule runs the [[schedules]] of an inventory on their cron specs for `skiff cron`. It wraps
// github.com/robfig/cron/v3 and adds what a long-running deploy scheduler needs and robfig does not do by
// default: a run of a schedule never overlaps the previous run of the same schedule (the tick is skipped and
// reported), a panicking job is recovered and reported instead of killing the process, every run is reported
// once with its result and duration, a reload that fails keeps the schedules that were running, and stopping
// waits for running jobs up to a deadline and then cancels them.
//
// The package prints nothing: what a run does (Options.Run) and where its report goes (Options.Log) are the
// caller's.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/skiffdeploy/skiff/inventory"
)

// Job is what one run of a schedule does. inv is the inventory the schedule was loaded from, so that the
// job can resolve the schedule's app and hosts against the same file. ctx is cancelled when the runner is
// stopped and its stop deadline passes.
type Job func(ctx context.Context, inv *inventory.Inventory, s *inventory.Schedule) error

// The results an Event reports.
const (
	// ResultOK is a run whose job returned nil.
	ResultOK = "ok"
	// ResultError is a run whose job returned an error.
	ResultError = "error"
	// ResultSkipped is a tick that did not run because the previous run of the same schedule was still
	// running, or whose job returned ErrSkip.
	ResultSkipped = "skipped"
	// ResultPanic is a run whose job panicked; the panic was recovered.
	ResultPanic = "panic"
)

// Event reports one run, or one skipped tick, of a schedule. The runner reports exactly one Event per tick.
type Event struct {
	// Schedule is the schedule's name.
	Schedule string
	// Job is the schedule's job (prune, check, deploy or exec).
	Job string
	// Start is when the run started, or when the skipped tick fired.
	Start time.Time
	// Duration is how long the run took; zero for a skipped tick.
	Duration time.Duration
	// Result is one of ResultOK, ResultError, ResultSkipped and ResultPanic.
	Result string
	// Error is the job's error, the panic value, or why the run was skipped; empty for ResultOK.
	Error string
	// Stack is the goroutine stack of a panic; empty otherwise.
	Stack string
}

// Planned is a schedule's next run, as Next reports it.
type Planned struct {
	// Name, Job and Spec are the schedule's name, job and cron spec.
	Name, Job, Spec string
	// Next is the next time the schedule fires after now, or the zero time when its spec never matches.
	Next time.Time
}

// Options configure a Runner.
type Options struct {
	// Run is what every run of every schedule does. It is required.
	Run Job
	// Log receives one Event per tick. The runner serializes its calls. Nil discards them.
	Log func(Event)
	// CancelGrace is how long Stop still waits for jobs after their context was cancelled, so that jobs
	// which honour the cancellation get their result reported. Zero means 10 seconds.
	CancelGrace time.Duration
	// Now returns the current time; nil means time.Now. It dates Events and is the reference of Next.
	Now func() time.Time
}

// entry is one loaded schedule.
type entry struct {
	s    *inventory.Schedule
	spec cron.Schedule
	id   cron.EntryID
}

// Runner runs the schedules of one inventory. Create it with New, give it schedules with Load, then Start
// and finally Stop it. Its methods are safe for concurrent use.
type Runner struct {
	opts   Options
	cron   *cron.Cron
	ctx    context.Context
	cancel context.CancelFunc
	logMu  sync.Mutex
	wg     sync.WaitGroup

	mu       sync.Mutex
	inv      *inventory.Inventory
	entries  []entry
	running  map[string]time.Time // schedule name -> start of its current run
	stopping bool
}

// New returns a Runner with no schedules.
func New(opts Options) *Runner {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CancelGrace <= 0 {
		opts.CancelGrace = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{
		opts:    opts,
		cron:    cron.New(cron.WithLogger(cron.DiscardLogger)),
		ctx:     ctx,
		cancel:  cancel,
		running: map[string]time.Time{},
	}
}

// ErrSkip, returned by a Job or wrapped in its error, reports the run as skipped instead of failed: the job
// decided not to do its work, for instance because the runner is stopping while the job waited for its turn.
var ErrSkip = errors.New("skipped")

// ErrStopped is returned by Load after Stop.
var ErrStopped = errors.New("schedule: runner is stopped")

// Load replaces the runner's schedules with those of inv. Every spec is parsed first; when one does not
// parse, Load returns an *inventory.Error naming that schedule and the runner keeps its old schedules, so a
// broken reload never leaves the runner with fewer schedules than before. Runs in progress are not
// interrupted, and a schedule that keeps its name across the reload does not start while its previous run
// is still going.
func (r *Runner) Load(inv *inventory.Inventory) error {
	if inv == nil {
		return errors.New("schedule: no inventory")
	}
	if r.opts.Run == nil {
		return errors.New("schedule: Options.Run is not set")
	}
	entries := make([]entry, 0, len(inv.Schedules))
	seen := map[string]int{}
	for i, s := range inv.Schedules {
		key := fmt.Sprintf("schedules[%d]", i)
		if s == nil || s.Name == "" {
			return &inventory.Error{File: inv.File, Key: key + ".name", Msg: "is required"}
		}
		if j, dup := seen[s.Name]; dup {
			return &inventory.Error{File: inv.File, Key: key + ".name", Msg: fmt.Sprintf("duplicate schedule name %q (also schedules[%d])", s.Name, j)}
		}
		seen[s.Name] = i
		spec, err := inventory.ParseCron(s.Cron)
		if err != nil {
			return &inventory.Error{File: inv.File, Key: key + ".cron", Msg: fmt.Sprintf("schedule %q: %v", s.Name, err)}
		}
		entries = append(entries, entry{s: s, spec: spec})
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return ErrStopped
	}
	for _, e := range r.entries {
		r.cron.Remove(e.id)
	}
	for i := range entries {
		e := &entries[i]
		e.id = r.cron.Schedule(e.spec, r.job(inv, e.s))
	}
	r.inv, r.entries = inv, entries
	return nil
}

// Start starts firing the loaded schedules. It does nothing when the runner is already started or stopped.
func (r *Runner) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopping {
		r.cron.Start()
	}
}

// Running returns the names of the schedules whose job is running, sorted.
func (r *Runner) Running() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.running))
	for n := range r.running {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Stop stops firing schedules, then waits for the running jobs to return. When ctx ends first, the jobs'
// context is cancelled, Stop waits up to Options.CancelGrace more for them and returns an error wrapping
// ctx.Err() that names the schedules that were still running at the deadline. After Stop, Start and Load do
// nothing.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
	r.cron.Stop()

	// No job can begin after stopping is set (begin checks it), so wg no longer grows.
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
	}
	late := r.Running()
	r.cancel()
	timer := time.NewTimer(r.opts.CancelGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
	return fmt.Errorf("schedule: stopped with %s still running at the deadline, their jobs were cancelled: %w",
		strings.Join(late, ", "), ctx.Err())
}

// Next returns, for each loaded schedule in file order, the next time it fires after now.
func (r *Runner) Next() []Planned {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Planned, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, Planned{Name: e.s.Name, Job: e.s.Job, Spec: e.s.Cron, Next: e.spec.Next(now)})
	}
	return out
}

// job is the cron job of schedule s: it skips the tick when s is already running, runs Options.Run with
// panics recovered, and reports one Event either way.
func (r *Runner) job(inv *inventory.Inventory, s *inventory.Schedule) cron.Job {
	return cron.FuncJob(func() {
		start := r.opts.Now()
		since, ok := r.begin(s.Name, start)
		if !ok {
			return
		}
		if !since.IsZero() {
			r.log(Event{Schedule: s.Name, Job: s.Job, Start: start, Result: ResultSkipped,
				Error: "previous run still running (started " + since.Format(time.RFC3339) + ")"})
			return
		}
		defer r.end(s.Name)
		began := time.Now()
		ev := r.call(inv, s)
		ev.Schedule, ev.Job, ev.Start, ev.Duration = s.Name, s.Job, start, time.Since(began)
		r.log(ev)
	})
}

// begin marks schedule name as running. It returns ok=false when the runner is stopping (the tick is
// dropped), and the start of the current run when one is already going (the tick is skipped).
func (r *Runner) begin(name string, now time.Time) (since time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return time.Time{}, false
	}
	if t, busy := r.running[name]; busy {
		return t, true
	}
	r.running[name] = now
	r.wg.Add(1)
	return time.Time{}, true
}

func (r *Runner) end(name string) {
	r.mu.Lock()
	delete(r.running, name)
	r.mu.Unlock()
	r.wg.Done()
}

// call runs the job once and turns its outcome, or its panic, into an Event.
func (r *Runner) call(inv *inventory.Inventory, s *inventory.Schedule) (ev Event) {
	defer func() {
		if v := recover(); v != nil {
			ev = Event{Result: ResultPanic, Error: fmt.Sprintf("panic: %v", v), Stack: string(debug.Stack())}
		}
	}()
	err := r.opts.Run(r.ctx, inv, s)
	switch {
	case errors.Is(err, ErrSkip):
		return Event{Result: ResultSkipped, Error: err.Error()}
	case err != nil:
		return Event{Result: ResultError, Error: err.Error()}
	}
	return Event{Result: ResultOK}
}

func (r *Runner) log(ev Event) {
	if r.opts.Log == nil {
		return
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	r.opts.Log(ev)
}
