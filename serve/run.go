package serve

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/inventory"
)

// run deploys one job through a fleet engine of its own, its events going to the job's log, and records the
// result.
func (s *Server) run(j *Job, log *liveLog) {
	ctx := s.jobsCtx
	stopFlush := s.flushLog(j.ID, log)
	defer func() {
		stopFlush()
		s.finish(j, log)
	}()
	s.cfg.Logf("job %d (%s) started: %s", j.ID, j.App, describe(j))
	log.addf("job %d: %s, from trigger %s (delivery %s)", j.ID, describe(j), j.Trigger, j.Delivery)
	rep, err := s.deploy(ctx, j, log)
	if rep != nil {
		j.Hosts = rep.Hosts
	}
	switch {
	case ctx.Err() != nil:
		j.Status, j.Error = StatusInterrupted, "cancelled: skiff serve was stopped"
	case err != nil:
		j.Status, j.Error = StatusFailed, err.Error()
	case !rep.OK():
		j.Status, j.Error = StatusFailed, rep.FailedHosts()
	default:
		j.Status = StatusOK
	}
	if j.Error != "" {
		log.addf("%s: %s", j.Status, j.Error)
	} else {
		log.addf("%s", j.Status)
	}
}

// deploy sends the job's request to a fresh engine; a source app's commit is fetched first.
func (s *Server) deploy(ctx context.Context, j *Job, log *liveLog) (*fleet.Report, error) {
	app, ok := s.cfg.Inventory.Apps[j.App]
	if !ok {
		return nil, fmt.Errorf("no app %q in the inventory", j.App)
	}
	req := fleet.DeployRequest{App: j.App, Tag: j.Tag}
	if app.Kind != inventory.KindImage {
		t := s.triggers[j.Trigger]
		if t == nil || t.Repo == "" {
			return nil, fmt.Errorf("trigger %q has no repo to fetch app %s from", j.Trigger, j.App)
		}
		dir, commit, err := fetchTree(ctx, s.gitCache(), j.App, t.Repo, j.Ref, j.SHA, log.addf)
		if err != nil {
			return nil, err
		}
		req.Source, req.Revision, j.Revision = dir, commit, commit
	} else {
		j.Revision = j.SHA
		req.Revision = j.SHA
	}
	if err := s.nextSecond(ctx, j.App); err != nil {
		return nil, err
	}
	e := s.cfg.Engine(j.Origin(), func(ev fleet.Event) {
		if line, ok := formatEvent(ev); ok {
			log.add(line)
		}
	})
	defer e.Close()
	return e.Deploy(ctx, req)
}

// nextSecond waits, when the app's previous deploy started in this same second, for the next one: release
// ids are the start time to the second, and two jobs of an app can follow each other that fast.
func (s *Server) nextSecond(ctx context.Context, app string) error {
	s.mu.Lock()
	prev := s.lastRun[app]
	s.mu.Unlock()
	if now := time.Now(); now.Unix() <= prev.Unix() {
		select {
		case <-time.After(prev.Truncate(time.Second).Add(time.Second).Sub(now)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	s.lastRun[app] = time.Now()
	s.mu.Unlock()
	return nil
}

// gitCache is the directory of fetched source trees, next to the job store.
func (s *Server) gitCache() string {
	return filepath.Join(filepath.Dir(s.cfg.State), "skiff-serve-src")
}

// flushLog stores the job's log every two seconds while it runs, so a crash keeps most of it.
func (s *Server) flushLog(id uint64, log *liveLog) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		n := 0
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if b := log.bytes(); len(b) != n {
					n = len(b)
					_ = s.store.putLog(id, b)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// describe says what a job deploys.
func describe(j *Job) string {
	var parts []string
	if j.Tag != "" {
		parts = append(parts, "tag "+j.Tag)
	}
	if j.Ref != "" {
		parts = append(parts, "ref "+j.Ref)
	}
	if j.SHA != "" {
		parts = append(parts, "commit "+j.SHA)
	}
	return "deploy " + j.App + " " + strings.Join(parts, ", ")
}

// formatEvent renders an engine event as one log line. Of a step's progress events only its end makes a
// line: the log is read later, not watched like a terminal.
func formatEvent(ev fleet.Event) (string, bool) {
	ts := ev.Time.UTC().Format("15:04:05")
	switch ev.Kind {
	case fleet.EventStart:
		return ts + " hosts: " + strings.Join(ev.Hosts, ", "), true
	case fleet.EventProgress:
		p := ev.Progress
		if !p.Done {
			return "", false
		}
		line := fmt.Sprintf("%s %s: %s done in %s", ts, ev.Host, p.Step, p.Elapsed.Round(time.Millisecond))
		if p.BytesTotal > 0 || p.FilesTotal > 0 {
			line += fmt.Sprintf(" (%d file(s), %s)", p.Files, deploy.HumanSize(p.Bytes))
		}
		return line, true
	case fleet.EventDone:
		r := ev.Result
		if r.OK {
			after := ""
			if r.Outcome != nil && r.Outcome.After != "" {
				after = " release " + r.Outcome.After
			}
			return fmt.Sprintf("%s %s: ok%s (%s)", ts, ev.Host, after, time.Duration(r.DurationMS)*time.Millisecond), true
		}
		return fmt.Sprintf("%s %s: FAILED: %s", ts, ev.Host, r.Error), true
	case fleet.EventLine:
		return ts + " " + ev.Host + " | " + ev.Text, true
	}
	if ev.Host != "" {
		return ts + " " + ev.Host + ": " + ev.Text, true
	}
	return ts + " " + ev.Text, true
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// clearLockLater removes, once the app's timeout has passed since the job started, the lock an interrupted
// job left on its hosts: only a stale lock that carries the job's own origin, so another run's lock stays.
// A lock of the job's that is not stale yet (it was taken a moment after the job started) is tried again.
func (s *Server) clearLockLater(j *Job) {
	app, ok := s.cfg.Inventory.Apps[j.App]
	if !ok || j.Started == nil {
		return
	}
	wait := time.Until(j.Started.Add(app.Timeout.Duration + time.Second))
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		for try := 0; try < 10; try++ {
			select {
			case <-time.After(wait):
			case <-s.jobsCtx.Done():
				return
			}
			again, err := s.clearLock(j)
			if err != nil {
				s.cfg.Logf("job %d (%s): clearing its lock: %v", j.ID, j.App, err)
			}
			if !again {
				return
			}
			wait = 3 * time.Second
		}
	}()
}

// clearLock removes the stale locks of job j; again is true when one of its locks is not stale yet.
func (s *Server) clearLock(j *Job) (again bool, err error) {
	ctx, cancel := context.WithTimeout(s.jobsCtx, 2*time.Minute)
	defer cancel()
	e := s.cfg.Engine(j.Origin(), nil)
	defer e.Close()
	rep, err := e.ReleaseStaleLock(ctx, fleet.AppRequest{App: j.App}, j.Origin())
	if err != nil {
		return false, err
	}
	for _, h := range rep.Hosts {
		switch {
		case h.Released != "":
			s.cfg.Logf("job %d (%s): removed the lock it left on %s", j.ID, j.App, h.Host)
		case strings.Contains(h.Lock, "origin "+j.Origin()+")"):
			again = true
		case h.Err != nil && !errors.Is(h.Err, context.Canceled):
			err = h.Err
		}
	}
	return again, err
}
