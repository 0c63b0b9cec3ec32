package serve

import (
	"errors"
	"time"
)

// enqueue stores a job for ev unless its delivery was seen before; the app's waiting job, if any, is
// superseded by it. It returns the job's id and whether it is new (false for a duplicate, whose id is the
// job the first delivery queued, or 0).
func (s *Server) enqueue(trigger, app string, ev Event) (uint64, bool, error) {
	if id, ok, err := s.store.seen(trigger, ev.Delivery); err != nil || ok {
		return id, false, err
	}
	j := &Job{
		App: app, Trigger: trigger, Delivery: ev.Delivery, What: ev.What,
		Tag: ev.Tag, Ref: ev.Ref, SHA: ev.SHA, Status: StatusQueued, Created: time.Now().UTC(),
	}
	superseded, err := s.store.add(j)
	if errors.Is(err, errDuplicate) {
		return j.ID, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if superseded != 0 {
		s.cfg.Logf("job %d (%s) superseded by job %d", superseded, app, j.ID)
		s.metrics.jobDone(app, StatusSuperseded, 0)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Ids grow in the order the store took the events, so the largest is the app's newest; an older one that
	// arrives here late was superseded in the store already.
	if j.ID > s.waiting[app] {
		s.waiting[app] = j.ID
	}
	s.dispatch()
	return j.ID, true, nil
}

// dispatch starts waiting jobs, oldest first, while slots are free: one job per app, MaxJobs in all, none
// once draining. The caller holds s.mu.
func (s *Server) dispatch() {
	defer func() { s.metrics.queue(len(s.waiting), len(s.running)) }()
	for !s.draining && len(s.running) < s.cfg.MaxJobs {
		app, id := "", uint64(0)
		for a, w := range s.waiting {
			if _, busy := s.running[a]; !busy && (id == 0 || w < id) {
				app, id = a, w
			}
		}
		if id == 0 {
			return
		}
		delete(s.waiting, app)
		now := time.Now().UTC()
		j, err := s.store.start(id, now)
		if err != nil {
			s.cfg.Logf("job %d (%s): cannot start: %v", id, app, err)
		}
		if j == nil {
			continue
		}
		s.running[app] = id
		log := newLiveLog()
		s.live[id] = log
		s.jobs.Add(1)
		go s.run(j, log)
	}
}

// finish records a job's end, frees its app's slot and starts what waits. The caller must not hold s.mu.
func (s *Server) finish(j *Job, log *liveLog) {
	now := time.Now().UTC()
	log.finish()
	stored, err := s.store.update(j.ID, func(sj *Job) {
		sj.Status, sj.Error, sj.Revision, sj.Hosts, sj.Finished = j.Status, j.Error, j.Revision, j.Hosts, &now
	})
	if err == nil {
		err = s.store.putLog(j.ID, log.bytes())
	}
	if err == nil {
		_, err = s.store.prune(now, keepJobs)
	}
	if err != nil {
		s.cfg.Logf("job %d (%s): store: %v", j.ID, j.App, err)
	}
	if stored != nil {
		s.metrics.jobDone(j.App, j.Status, time.Duration(stored.DurationMS())*time.Millisecond)
	}
	s.cfg.Logf("job %d (%s) %s in %s%s", j.ID, j.App, j.Status, now.Sub(*j.Started).Round(time.Millisecond), errSuffix(j.Error))
	s.mu.Lock()
	delete(s.running, j.App)
	delete(s.live, j.ID)
	s.dispatch()
	s.mu.Unlock()
	s.apps.refresh(j.App)
	s.jobs.Done()
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}
