package serve

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
)

// AppState is what GET /api/apps and the status page show of one app: each host's live release, and the
// app's last job.
type AppState struct {
	App   string      `json:"app"`
	Kind  string      `json:"kind"`
	Hosts []HostState `json:"hosts"`
	// Read is when the hosts were last read; Reading is true while they are read again.
	Read    *time.Time `json:"read,omitempty"`
	Reading bool       `json:"reading,omitempty"`
	LastJob *Job       `json:"last_job,omitempty"`
}

// HostState is one host's live release of an app.
type HostState struct {
	Host     string `json:"host"`
	Release  string `json:"release,omitempty"`
	Revision string `json:"revision,omitempty"`
	Tag      string `json:"tag,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Origin   string `json:"origin,omitempty"`
	Error    string `json:"error,omitempty"`
}

// appsView caches what the hosts hold: reading it takes SSH round trips, so it is read at start and after
// each job of the app, never per page view.
type appsView struct {
	s       *Server
	mu      sync.Mutex
	state   map[string]*AppState
	reading sync.WaitGroup
}

func newAppsView(s *Server) *appsView {
	v := &appsView{s: s, state: map[string]*AppState{}}
	for name, app := range s.cfg.Inventory.Apps {
		v.state[name] = &AppState{App: name, Kind: string(app.Kind)}
	}
	return v
}

func (v *appsView) refreshAll() {
	for _, name := range slices.Sorted(maps.Keys(v.state)) {
		v.refresh(name)
	}
}

// refresh reads the app's releases from its hosts in the background.
func (v *appsView) refresh(app string) {
	v.mu.Lock()
	st, ok := v.state[app]
	if !ok || st.Reading {
		v.mu.Unlock()
		return
	}
	st.Reading = true
	v.mu.Unlock()
	v.reading.Add(1)
	go func() {
		defer v.reading.Done()
		ctx, cancel := context.WithTimeout(v.s.jobsCtx, 2*time.Minute)
		defer cancel()
		e := v.s.cfg.Engine("serve:status", nil)
		defer e.Close()
		rep, err := e.Releases(ctx, fleet.AppRequest{App: app})
		hosts := hostStates(rep, err)
		now := time.Now().UTC()
		v.mu.Lock()
		defer v.mu.Unlock()
		st.Hosts, st.Read, st.Reading = hosts, &now, false
	}()
}

// hostStates turns a releases report into each host's live release.
func hostStates(rep *fleet.Report, err error) []HostState {
	if err != nil {
		return []HostState{{Host: "-", Error: err.Error()}}
	}
	out := make([]HostState, 0, len(rep.Hosts))
	for _, h := range rep.Hosts {
		hs := HostState{Host: h.Host, Error: firstLine(h.Error)}
		for _, r := range h.Releases {
			if r.Current {
				hs.Release, hs.Tag, hs.Digest = r.ID, r.Tag, r.Digest
			}
		}
		for i := len(h.History) - 1; i >= 0; i-- {
			if e := h.History[i]; e.ID == hs.Release && hs.Release != "" && e.Result == "ok" {
				hs.Revision, hs.Origin = e.Revision, e.Origin
				break
			}
		}
		out = append(out, hs)
	}
	return out
}

// list returns every app's state, by name, with its last job.
func (v *appsView) list() []AppState {
	v.mu.Lock()
	out := make([]AppState, 0, len(v.state))
	for _, name := range slices.Sorted(maps.Keys(v.state)) {
		st := *v.state[name]
		st.Hosts = slices.Clone(st.Hosts)
		out = append(out, st)
	}
	v.mu.Unlock()
	for i := range out {
		if jobs, err := v.s.store.jobs(out[i].App, 1); err == nil && len(jobs) == 1 {
			out[i].LastJob = jobs[0]
		}
	}
	return out
}

func (v *appsView) wait() { v.reading.Wait() }
