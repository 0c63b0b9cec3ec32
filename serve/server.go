// Package serve is `skiff serve`: it verifies webhooks from GitLab, GitHub, a Docker registry or anything
// that signs its body, turns them into deploy jobs, runs them through the fleet engine (one at a time per
// app, the newest waiting event of an app superseding the older one, max_jobs across apps), keeps jobs and
// their logs in an embedded bbolt store that survives restarts, and serves a bearer-token API, Prometheus
// metrics and a status page. It prints nothing: the caller gets a log function.
package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/inventory"
)

// Config configures a Server.
type Config struct {
	Inventory *inventory.Inventory
	// State is the job store file.
	State string
	// Token is the bearer token of the API and the status page; it must not be empty.
	Token string
	// Secret looks up the secret a trigger's secret_env names; nil means none is set.
	Secret func(name string) string
	// MaxJobs is how many jobs of different apps run at once; 0 means the inventory's [serve] max_jobs.
	MaxJobs int
	// Engine starts a fleet engine for one job (or one read of the apps' state) that records origin in the
	// targets' lock and history and sends its events to events.
	Engine func(origin string, events func(fleet.Event)) *fleet.Engine
	// Logf receives one line per webhook answered and job started or finished; nil discards them.
	Logf func(format string, args ...any)
}

// Server holds the queue, the store and the HTTP handlers of `skiff serve`.
type Server struct {
	cfg      Config
	store    *store
	triggers map[string]*inventory.Trigger
	metrics  *metrics
	apps     *appsView

	mu       sync.Mutex
	waiting  map[string]uint64 // app -> its queued job
	running  map[string]uint64 // app -> its running job
	live     map[uint64]*liveLog
	lastRun  map[string]time.Time // app -> when its last deploy started
	draining bool

	jobsCtx    context.Context
	cancelJobs context.CancelFunc
	jobs       sync.WaitGroup
	started    time.Time
}

// New opens the job store, marks the jobs a previous run left running as interrupted and readies the queue.
// Call Start to run queued jobs.
func New(cfg Config) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("serve: the API token is empty")
	}
	if cfg.Engine == nil {
		return nil, errors.New("serve: no engine")
	}
	if cfg.Secret == nil {
		cfg.Secret = func(string) string { return "" }
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 1
		if s := cfg.Inventory.Serve; s != nil && s.MaxJobs > 0 {
			cfg.MaxJobs = s.MaxJobs
		}
	}
	st, err := openStore(cfg.State)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, store: st, triggers: map[string]*inventory.Trigger{},
		metrics: newMetrics(), running: map[string]uint64{}, live: map[uint64]*liveLog{}, lastRun: map[string]time.Time{},
		started: time.Now(),
	}
	for _, t := range cfg.Inventory.Triggers {
		s.triggers[t.Name] = t
	}
	s.apps = newAppsView(s)
	waiting, interrupted, err := st.recover(time.Now())
	if err != nil {
		st.close()
		return nil, err
	}
	s.waiting = waiting
	for _, j := range interrupted {
		cfg.Logf("job %d (%s) was cut short by a stop: interrupted", j.ID, j.App)
		s.metrics.jobDone(j.App, StatusInterrupted, 0)
		s.clearLockLater(j)
	}
	s.jobsCtx, s.cancelJobs = context.WithCancel(context.Background())
	return s, nil
}

// Start runs the queued jobs and reads every app's live state; from now on queued jobs start as soon as
// their app and a slot are free.
func (s *Server) Start() {
	s.mu.Lock()
	s.dispatch()
	s.mu.Unlock()
	s.apps.refreshAll()
}

// Drain stops starting jobs and waits for the running ones to finish. When ctx ends first, the running
// jobs are cancelled (they end interrupted, each host rolled back or unlocked by its deploy) and Drain
// waits for that, then returns ctx's error.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.jobs.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.cancelJobs()
		<-done
		return fmt.Errorf("drain: running jobs cancelled: %w", ctx.Err())
	}
}

// Running returns how many jobs run now.
func (s *Server) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// Close cancels what still runs and closes the store.
func (s *Server) Close() error {
	s.cancelJobs()
	s.jobs.Wait()
	s.apps.wait()
	return s.store.close()
}
