package serve

import (
	"embed"
	"html/template"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
)

//go:embed templates/*.html
var templateFS embed.FS

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"short": shortDigest,
	"ago":   ago,
	"duration": func(ms int64) string {
		return (time.Duration(ms) * time.Millisecond).Round(100 * time.Millisecond).String()
	},
	"clock": func(t time.Time) string { return t.Local().Format("01-02 15:04:05") },
}).ParseFS(templateFS, "templates/*.html"))

// pageData is what the status page shows.
type pageData struct {
	Host     string
	Now      time.Time
	Uptime   string
	Running  int
	Waiting  int
	Apps     []AppState
	Jobs     []*Job
	Job      *Job
	Log      string
	LiveLog  bool
	Hosts    []*fleet.HostResult
	Error    string
	Triggers int
}

// page renders the status page: apps and their hosts' live releases, the job list, and one job (the one the
// path names, else the newest running one, else the newest) with its log, followed live while it runs.
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	if !s.authorized(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_ = pageTemplates.ExecuteTemplate(w, "login.html", pageData{})
		return
	}
	jobs, err := s.store.jobs("", 50)
	d := pageData{Now: time.Now(), Uptime: time.Since(s.started).Round(time.Second).String(), Apps: s.apps.list(), Jobs: jobs, Triggers: len(s.triggers)}
	d.Host, _ = os.Hostname()
	if err != nil {
		d.Error = err.Error()
	}
	s.mu.Lock()
	d.Running, d.Waiting = len(s.running), len(s.waiting)
	s.mu.Unlock()
	if id := r.PathValue("id"); id != "" {
		n, _ := strconv.ParseUint(id, 10, 64)
		if d.Job, _ = s.store.job(n); d.Job == nil {
			http.NotFound(w, r)
			return
		}
	} else {
		for _, j := range jobs {
			if j.Status == StatusRunning {
				d.Job = j
				break
			}
		}
		if d.Job == nil && len(jobs) > 0 {
			d.Job = jobs[0]
		}
	}
	if d.Job != nil {
		log, live := s.logOf(d.Job.ID)
		d.Log, d.LiveLog, d.Hosts = string(log), live != nil, d.Job.Hosts
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplates.ExecuteTemplate(w, "status.html", d); err != nil {
		s.cfg.Logf("status page: %v", err)
	}
}

// login stores the token of the form in a cookie when it is the right one.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := r.PostFormValue("token")
	if !equal(token, s.cfg.Token) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_ = pageTemplates.ExecuteTemplate(w, "login.html", pageData{Error: "wrong token"})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: tokenCookie, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", MaxAge: 30 * 24 * 3600,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// shortDigest shortens "sha256:abcdef…" to its first 12 hex digits.
func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// ago says how long ago t was, coarsely.
func ago(t *time.Time) string {
	if t == nil {
		return "-"
	}
	d := time.Since(*t)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h ago"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d ago"
}
