package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// tokenCookie holds the API token for the status page, set by its login form.
const tokenCookie = "skiff_token"

// Handler returns the HTTP handler of every route: the webhooks, the API, the metrics and the status page.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{name}", s.hook)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", s.authed(s.metrics.handler().ServeHTTP))
	mux.Handle("GET /api/jobs", s.authed(s.apiJobs))
	mux.Handle("GET /api/jobs/{id}", s.authed(s.apiJob))
	mux.Handle("GET /api/jobs/{id}/log", s.authed(s.apiLog))
	mux.Handle("GET /api/apps", s.authed(s.apiApps))
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /jobs/{id}", s.page)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	return mux
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// hook takes one webhook: the trigger by name (404), the body up to MaxBody (413), the secret (401, before
// any parsing), the payload (400), then a queued job (202), an ignored event or a duplicate delivery (200).
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	t, ok := s.triggers[r.PathValue("name")]
	if !ok {
		s.metrics.webhook("-", "unknown")
		writeError(w, http.StatusNotFound, "no such trigger")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		s.metrics.webhook(t.Name, "too_large")
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", MaxBody))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read body")
		return
	}
	kind := hookKinds[t.Kind]
	if !kind.verify(r.Header, body, s.cfg.Secret(t.SecretEnv)) {
		s.metrics.webhook(t.Name, "unauthorized")
		s.cfg.Logf("hook %s: 401 bad or missing secret from %s", t.Name, r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, errUnauthorized.Error())
		return
	}
	app := s.cfg.Inventory.Apps[t.App]
	ev, err := kind.parse(r.Header, body, t, app)
	if err != nil {
		s.metrics.webhook(t.Name, "malformed")
		s.cfg.Logf("hook %s: 400 %v", t.Name, err)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if ev.Ignored != "" {
		s.metrics.webhook(t.Name, "ignored")
		writeJSON(w, http.StatusOK, map[string]string{"ignored": ev.Ignored})
		return
	}
	id, queued, err := s.enqueue(t.Name, t.App, ev)
	if err != nil {
		s.cfg.Logf("hook %s: 500 %v", t.Name, err)
		writeError(w, http.StatusInternalServerError, "cannot queue the job")
		return
	}
	if !queued {
		s.metrics.webhook(t.Name, "duplicate")
		writeJSON(w, http.StatusOK, map[string]any{"ignored": "duplicate delivery " + ev.Delivery, "job": id})
		return
	}
	s.metrics.webhook(t.Name, "queued")
	s.cfg.Logf("hook %s: %s queued as job %d", t.Name, ev.What, id)
	writeJSON(w, http.StatusAccepted, map[string]uint64{"job": id})
}

// authorized reports whether the request carries the API token, as a bearer token or the page's cookie.
func (s *Server) authorized(r *http.Request) bool {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return equal(strings.TrimSpace(v), s.cfg.Token)
	}
	if c, err := r.Cookie(tokenCookie); err == nil {
		return equal(c.Value, s.cfg.Token)
	}
	return false
}

func (s *Server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="skiff serve"`)
			writeError(w, http.StatusUnauthorized, "bearer token required")
			return
		}
		h(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "running": s.Running(), "uptime_s": int(time.Since(s.started).Seconds())})
}

// jobLimit bounds the job list.
const jobLimit = 200

func (s *Server) apiJobs(w http.ResponseWriter, r *http.Request) {
	jobs, err := s.store.jobs(r.URL.Query().Get("app"), jobLimit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if jobs == nil {
		jobs = []*Job{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

// jobOf reads the job the path names, answering 404 when there is none.
func (s *Server) jobOf(w http.ResponseWriter, r *http.Request) *Job {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	var j *Job
	if err == nil {
		j, err = s.store.job(id)
	}
	if err != nil || j == nil {
		writeError(w, http.StatusNotFound, "no such job")
		return nil
	}
	return j
}

// logOf returns a job's log: the live one while it runs, else the stored one.
func (s *Server) logOf(id uint64) ([]byte, *liveLog) {
	s.mu.Lock()
	l := s.live[id]
	s.mu.Unlock()
	if l != nil {
		return l.bytes(), l
	}
	b, _ := s.store.log(id)
	return b, nil
}

func (s *Server) apiJob(w http.ResponseWriter, r *http.Request) {
	j := s.jobOf(w, r)
	if j == nil {
		return
	}
	log, _ := s.logOf(j.ID)
	writeJSON(w, http.StatusOK, struct {
		*Job
		DurationMS int64  `json:"duration_ms"`
		Log        string `json:"log"`
	}{j, j.DurationMS(), string(log)})
}

// apiLog streams a job's log as Server-Sent Events: one "data:" per line as it is written, then an "end"
// event when the job is over.
func (s *Server) apiLog(w http.ResponseWriter, r *http.Request) {
	j := s.jobOf(w, r)
	if j == nil {
		return
	}
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	send := func(data []byte) {
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if line != "" {
				fmt.Fprintf(w, "data: %s\n\n", line)
			}
		}
	}
	end := func() {
		fmt.Fprint(w, "event: end\ndata: end\n\n")
		if flusher != nil {
			flusher.Flush()
		}
	}
	text, live := s.logOf(j.ID)
	if live == nil {
		send(text)
		end()
		return
	}
	offset := 0
	for {
		data, done, changed := live.since(offset)
		offset += len(data)
		send(data)
		if flusher != nil {
			flusher.Flush()
		}
		if done {
			end()
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-time.After(15 * time.Second):
			fmt.Fprint(w, ": keepalive\n\n")
		}
	}
}

func (s *Server) apiApps(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"apps": s.apps.list()})
}
