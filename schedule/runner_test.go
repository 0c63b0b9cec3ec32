package schedule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/inventory"
)

// recorder collects the Events of a Runner and lets a test wait for one.
type recorder struct {
	mu     sync.Mutex
	events []Event
	added  chan struct{}
}

func newRecorder() *recorder { return &recorder{added: make(chan struct{}, 1000)} }

func (r *recorder) log(ev Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.added <- struct{}{}
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// waitFor returns the first Event that matches, waiting for it up to a generous bound.
func (r *recorder) waitFor(t *testing.T, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		for _, ev := range r.all() {
			if match(ev) {
				return ev
			}
		}
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("no event %s; got %+v", what, r.all())
		}
	}
}

func result(name, res string) func(Event) bool {
	return func(ev Event) bool { return ev.Schedule == name && ev.Result == res }
}

func invWith(scheds ...*inventory.Schedule) *inventory.Inventory {
	return &inventory.Inventory{File: "hosts.toml", Schedules: scheds}
}

func every(name string) *inventory.Schedule {
	return &inventory.Schedule{Name: name, Cron: "@every 1s", Job: inventory.JobCheck}
}

// start builds, loads and starts a Runner, and stops it at the end of the test.
func start(t *testing.T, run Job, inv *inventory.Inventory) (*Runner, *recorder) {
	t.Helper()
	rec := newRecorder()
	r := New(Options{Run: run, Log: rec.log})
	if err := r.Load(inv); err != nil {
		t.Fatalf("Load: %v", err)
	}
	r.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = r.Stop(ctx)
	})
	return r, rec
}

func TestRunner_RunsSchedule(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []*inventory.Schedule
	var gotInv *inventory.Inventory
	inv := invWith(every("tick"))
	_, rec := start(t, func(ctx context.Context, inv *inventory.Inventory, s *inventory.Schedule) error {
		mu.Lock()
		defer mu.Unlock()
		got, gotInv = append(got, s), inv
		return nil
	}, inv)

	ev := rec.waitFor(t, "ok run", result("tick", ResultOK))
	if ev.Job != inventory.JobCheck || ev.Error != "" || ev.Start.IsZero() {
		t.Errorf("event = %+v", ev)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || got[0] != inv.Schedules[0] || gotInv != inv {
		t.Errorf("job got schedule %v and inventory %p, want %v and %p", got, gotInv, inv.Schedules[0], inv)
	}
}

func TestRunner_ReportsJobError(t *testing.T) {
	t.Parallel()
	_, rec := start(t, func(context.Context, *inventory.Inventory, *inventory.Schedule) error {
		return errors.New("exit 4: web1: connection refused")
	}, invWith(every("failing")))

	ev := rec.waitFor(t, "error run", result("failing", ResultError))
	if ev.Error != "exit 4: web1: connection refused" {
		t.Errorf("Error = %q", ev.Error)
	}
}

func TestRunner_ReportsJobSkip(t *testing.T) {
	t.Parallel()
	_, rec := start(t, func(context.Context, *inventory.Inventory, *inventory.Schedule) error {
		return fmt.Errorf("%w: cron is stopping", ErrSkip)
	}, invWith(every("declined")))

	ev := rec.waitFor(t, "skipped run", result("declined", ResultSkipped))
	if ev.Error != "skipped: cron is stopping" {
		t.Errorf("Error = %q", ev.Error)
	}
}

func TestRunner_SkipsOverlappingRun(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	_, rec := start(t, func(ctx context.Context, _ *inventory.Inventory, _ *inventory.Schedule) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, invWith(every("slow")))

	ev := rec.waitFor(t, "skipped tick", result("slow", ResultSkipped))
	if !strings.Contains(ev.Error, "still running") {
		t.Errorf("skip reason = %q", ev.Error)
	}
	close(release)
	rec.waitFor(t, "ok run after release", result("slow", ResultOK))
}

func TestRunner_RecoversPanic(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	_, rec := start(t, func(context.Context, *inventory.Inventory, *inventory.Schedule) error {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			panic("boom")
		}
		return nil
	}, invWith(every("crashy")))

	ev := rec.waitFor(t, "panic", result("crashy", ResultPanic))
	if ev.Error != "panic: boom" || !strings.Contains(ev.Stack, "goroutine") {
		t.Errorf("panic event = %+v", ev)
	}
	rec.waitFor(t, "ok run after the panic", result("crashy", ResultOK))
}

func TestRunner_StopWaitsForRunningJob(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	var jobErr error
	r, rec := start(t, func(ctx context.Context, _ *inventory.Inventory, _ *inventory.Schedule) error {
		once.Do(func() { close(started) })
		<-release
		jobErr = ctx.Err()
		return nil
	}, invWith(every("long")))
	<-started

	stopped := make(chan error)
	go func() { stopped <- r.Stop(context.Background()) }()
	if got := r.Running(); len(got) != 1 || got[0] != "long" {
		t.Errorf("Running() = %v, want [long]", got)
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if jobErr != nil {
		t.Errorf("job context was cancelled (%v) although Stop had no deadline", jobErr)
	}
	if evs := rec.all(); len(evs) == 0 || evs[len(evs)-1].Result != ResultOK {
		t.Errorf("events after Stop = %+v, want the run reported ok before Stop returned", evs)
	}
	if err := r.Load(invWith(every("late"))); !errors.Is(err, ErrStopped) {
		t.Errorf("Load after Stop = %v, want ErrStopped", err)
	}
}

func TestRunner_StopDeadlineCancelsJobs(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	var once sync.Once
	r, rec := start(t, func(ctx context.Context, _ *inventory.Inventory, _ *inventory.Schedule) error {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return ctx.Err()
	}, invWith(every("stuck")))
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := r.Stop(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stuck") {
		t.Fatalf("Stop = %v, want an error naming stuck and wrapping context.Canceled", err)
	}
	ev := rec.waitFor(t, "cancelled run", result("stuck", ResultError))
	if ev.Error != context.Canceled.Error() {
		t.Errorf("cancelled run error = %q", ev.Error)
	}
}

func TestRunner_LoadKeepsOldSchedulesOnError(t *testing.T) {
	tests := []struct {
		name    string
		inv     *inventory.Inventory
		wantKey string
	}{
		{"time zone without schedule", invWith(&inventory.Schedule{Name: "bad", Cron: "CRON_TZ=UTC"}), "schedules[0].cron"},
		{"TZ without schedule", invWith(&inventory.Schedule{Name: "bad", Cron: "TZ=Europe/Paris"}), "schedules[0].cron"},
		{"unknown time zone", invWith(&inventory.Schedule{Name: "bad", Cron: "CRON_TZ=Nowhere/Atlantis 0 3 * * *"}), "schedules[0].cron"},
		{"garbage", invWith(every("ok"), &inventory.Schedule{Name: "bad", Cron: "every day at 3"}), "schedules[1].cron"},
		{"too many fields", invWith(&inventory.Schedule{Name: "bad", Cron: "0 0 3 * * * *"}), "schedules[0].cron"},
		{"empty spec", invWith(&inventory.Schedule{Name: "bad", Cron: ""}), "schedules[0].cron"},
		{"duplicate name", invWith(every("twice"), every("twice")), "schedules[1].name"},
		{"no name", invWith(&inventory.Schedule{Cron: "@daily"}), "schedules[0].name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Options{Run: func(context.Context, *inventory.Inventory, *inventory.Schedule) error { return nil }})
			if err := r.Load(invWith(&inventory.Schedule{Name: "old", Cron: "@daily", Job: inventory.JobPrune})); err != nil {
				t.Fatalf("first Load: %v", err)
			}
			err := r.Load(tc.inv)
			var ie *inventory.Error
			if !errors.As(err, &ie) {
				t.Fatalf("Load = %v, want an *inventory.Error", err)
			}
			if ie.File != "hosts.toml" || ie.Key != tc.wantKey {
				t.Errorf("error at %s %s, want hosts.toml %s (%v)", ie.File, ie.Key, tc.wantKey, err)
			}
			if next := r.Next(); len(next) != 1 || next[0].Name != "old" {
				t.Errorf("Next() after a failed Load = %+v, want the old schedule", next)
			}
		})
	}
}

func TestRunner_ReloadKeepsOverlapGuard(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	var once sync.Once
	r, rec := start(t, func(ctx context.Context, _ *inventory.Inventory, _ *inventory.Schedule) error {
		once.Do(func() { close(started) })
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, invWith(every("sync")))
	<-started

	if err := r.Load(invWith(every("sync"))); err != nil {
		t.Fatalf("reload: %v", err)
	}
	rec.waitFor(t, "skipped tick of the reloaded schedule", result("sync", ResultSkipped))
	close(release)
}

func TestRunner_Next(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 15, 30, 0, time.UTC)
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skipf("no time zone data: %v", err)
	}
	tests := []struct {
		name string
		spec string
		want time.Time
	}{
		{"five fields with time zone", "CRON_TZ=UTC 0 3 * * *", time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)},
		{"seconds field", "TZ=UTC 45 15 10 * * *", time.Date(2026, 11, 22, 10, 15, 45, 0, time.UTC)},
		{"other time zone", "CRON_TZ=Europe/Paris 0 12 * * *", time.Date(2026, 11, 22, 12, 0, 0, 0, paris)},
		{"every", "@every 90s", now.Add(90 * time.Second)},
		{"never", "TZ=UTC 0 0 30 2 *", time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Options{
				Run: func(context.Context, *inventory.Inventory, *inventory.Schedule) error { return nil },
				Now: func() time.Time { return now },
			})
			if err := r.Load(invWith(&inventory.Schedule{Name: "s", Cron: tc.spec, Job: inventory.JobPrune})); err != nil {
				t.Fatalf("Load: %v", err)
			}
			next := r.Next()
			if len(next) != 1 {
				t.Fatalf("Next() = %+v", next)
			}
			p := next[0]
			if p.Name != "s" || p.Job != inventory.JobPrune || p.Spec != tc.spec || !p.Next.Equal(tc.want) {
				t.Errorf("Next() = %+v, want next %v", p, tc.want)
			}
		})
	}
}

func TestParse_NeverPanics(t *testing.T) {
	tests := []struct {
		name string
		spec string
		ok   bool
	}{
		{"descriptor", "@daily", true},
		{"every", "@every 1s", true},
		{"five fields", "*/5 * * * *", true},
		{"six fields", "0 */5 * * * *", true},
		{"time zone", "CRON_TZ=UTC 0 3 * * *", true},
		{"bare CRON_TZ", "CRON_TZ=UTC", false},
		{"bare TZ", "TZ=", false},
		{"time zone then tab", "CRON_TZ=UTC\t0 3 * * *", false},
		{"empty", "", false},
		{"bad descriptor", "@fortnightly", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inventory.ParseCron(tc.spec)
			if (err == nil) != tc.ok {
				t.Errorf("ParseCron(%q) error = %v, want ok=%v", tc.spec, err, tc.ok)
			}
		})
	}
}
