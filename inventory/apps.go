package inventory

import (
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/supervisor"
)

// app resolves one [apps.NAME] table.
func (b *builder) app(inv *Inventory, name string, r *rawApp) *App {
	p := newPath("apps", name)
	b.name(p, "app", name)
	a := &App{
		Name:    name,
		Kind:    KindSource,
		Hosts:   b.strs(p.child("hosts"), r.Hosts),
		Path:    b.targetPath(p.child("path"), r.Path),
		Check:   b.check(p.child("check"), r.check),
		Rollout: b.rollout(p.child("rollout"), r.rollout),
		Timeout: b.duration(p.child("timeout"), r.Timeout, timeMinutes(10), false),
		Env:     b.env(p.child("env"), r.env, r.envSet),
	}
	if !r.Hosts.set {
		b.ps.add(p.child("hosts"), "is required")
	} else if _, ok := r.Hosts.v.([]any); ok && len(a.Hosts) == 0 {
		b.ps.add(p.child("hosts"), "must name at least one host or group")
	}
	b.refs(inv, p.child("hosts"), a.Hosts)
	if r.Image.set {
		a.Kind = KindImage
		b.imageApp(inv, p, r, a)
	} else {
		b.sourceApp(p, r, a)
		if a.Env != nil && !underShared(a.Shared, a.Env.File) {
			a.Shared = append(a.Shared, a.Env.File) // linked into every release like any shared file
		}
	}
	return a
}

// underShared reports whether file is one of the shared entries or lies inside one.
func underShared(shared []string, file string) bool {
	for _, s := range shared {
		if file == s || strings.HasPrefix(file, s+"/") {
			return true
		}
	}
	return false
}

// sourceApp fills in the fields of an app shipped as a source tree.
func (b *builder) sourceApp(p keyPath, r *rawApp, a *App) {
	b.onlyFor(p, "only for image apps (set image)", []keySet{
		{"compose_file", r.ComposeFile.set},
		{"service", r.Service.set},
		{"registry", r.Registry.set},
		{"keep_images", r.KeepImages.set},
		{"prune", r.prune.MinAge.set},
	})
	a.Source = b.local(p.child("source"), b.str(p.child("source"), r.Source))
	a.Exclude = b.strs(p.child("exclude"), r.Exclude)
	for _, e := range a.Exclude {
		if e == "" {
			b.ps.add(p.child("exclude"), "patterns must not be empty")
		}
	}
	for _, s := range b.strs(p.child("shared"), r.Shared) {
		if msg := sharedProblem(s); msg != "" {
			b.ps.add(p.child("shared"), "%q %s", s, msg)
			continue
		}
		a.Shared = append(a.Shared, s)
	}
	a.KeepReleases = b.atLeast(p.child("keep_releases"), r.KeepReleases, defaultKeepReleases, 2)
	hp := p.child("hooks")
	a.Hooks = Hooks{
		BeforeSwitch: b.commands(hp.child("before_switch"), r.hooks.BeforeSwitch),
		AfterSwitch:  b.commands(hp.child("after_switch"), r.hooks.AfterSwitch),
	}
	a.Supervisor = b.supervisor(p.child("supervisor"), r.supervisor)
	a.Builds = b.builds(p.child("builds"), r.builds, a.Shared)
}

// imageApp fills in the fields of an app run from a container image.
func (b *builder) imageApp(inv *Inventory, p keyPath, r *rawApp, a *App) {
	sup := r.supervisor
	b.onlyFor(p, "only for source apps (remove image)", []keySet{
		{"source", r.Source.set},
		{"exclude", r.Exclude.set},
		{"shared", r.Shared.set},
		{"keep_releases", r.KeepReleases.set},
		{"hooks", r.hooks.BeforeSwitch.set || r.hooks.AfterSwitch.set},
		{"builds", r.builds != nil},
		{"supervisor", sup.URL.set || sup.Programs.set || sup.Username.set || sup.PasswordEnv.set},
	})
	a.Image = b.str(p.child("image"), r.Image)
	if _, ok := r.Image.v.(string); ok {
		b.word(p.child("image"), a.Image)
	}
	a.Service = b.str(p.child("service"), r.Service)
	if !r.Service.set {
		b.ps.add(p.child("service"), "is required for image apps")
	} else if _, ok := r.Service.v.(string); ok {
		b.name(p.child("service"), "service", a.Service)
	}
	a.ComposeFile = b.local(p.child("compose_file"), b.str(p.child("compose_file"), r.ComposeFile))
	a.Registry = b.str(p.child("registry"), r.Registry)
	if _, ok := inv.Registries[a.Registry]; a.Registry != "" && !ok {
		b.ps.add(p.child("registry"), "unknown registry %q", a.Registry)
	}
	a.KeepImages = b.atLeast(p.child("keep_images"), r.KeepImages, defaultKeepImages, 1)
	a.Prune.MinAge = b.duration(p.child("prune").child("min_age"), r.prune.MinAge, Duration{}, true)
}

// keySet says whether a key of an app is set.
type keySet struct {
	key string
	set bool
}

// onlyFor reports every key of keys that is set, as not belonging to this
// kind of app.
func (b *builder) onlyFor(p keyPath, msg string, keys []keySet) {
	for _, k := range keys {
		if k.set {
			b.ps.add(p.child(k.key), "%s", msg)
		}
	}
}

// targetPath checks the app's directory on the targets.
func (b *builder) targetPath(p keyPath, r rawValue) string {
	if !r.set {
		b.ps.add(p, "is required")
		return ""
	}
	s := b.str(p, r)
	if _, ok := r.v.(string); !ok {
		return ""
	}
	switch {
	case !strings.HasPrefix(s, "/"):
		b.ps.add(p, "%q must be an absolute path", s)
	case hasDotDot(s):
		b.ps.add(p, "%q must not contain ..", s)
	case path.Clean(s) != s:
		b.ps.add(p, "%q must be a clean path (write %q)", s, path.Clean(s))
	case s == "/":
		b.ps.add(p, "must not be /")
	case strings.ContainsAny(s, "\x00\n\r"):
		b.ps.add(p, "%q must not contain control characters", s)
	default:
		return s
	}
	return ""
}

func hasDotDot(s string) bool {
	for _, part := range strings.Split(s, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// sharedProblem says what is wrong with an entry of shared, or "".
func sharedProblem(s string) string {
	switch {
	case s == "" || s == ".":
		return "must name a file or directory"
	case strings.HasPrefix(s, "/"):
		return "must be relative to the release"
	case hasDotDot(s):
		return "must not contain .."
	case path.Clean(s) != s:
		return "must be a clean path (write " + strconv.Quote(path.Clean(s)) + ")"
	case strings.ContainsAny(s, "\x00\n\r"):
		return "must not contain control characters"
	}
	return ""
}

// commands returns hook commands, which must not be empty.
func (b *builder) commands(p keyPath, r rawValue) []string {
	list := b.strs(p, r)
	for _, c := range list {
		if strings.TrimSpace(c) == "" {
			b.ps.add(p, "commands must not be empty")
			return nil
		}
	}
	return list
}

// supervisor resolves an app's supervisor table.
func (b *builder) supervisor(p keyPath, r rawSupervisor) Supervisor {
	s := Supervisor{
		URL:         b.str(p.child("url"), r.URL),
		Programs:    b.strs(p.child("programs"), r.Programs),
		Username:    b.str(p.child("username"), r.Username),
		PasswordEnv: b.str(p.child("password_env"), r.PasswordEnv),
	}
	if r.URL.set {
		if shown, msg := supervisorURLProblem(s.URL); msg != "" {
			b.ps.add(p.child("url"), "%q %s", shown, msg)
		}
	}
	for _, prog := range s.Programs {
		if !validProgram(prog) {
			b.ps.add(p.child("programs"), "invalid program %q (write \"name\", \"group:name\" or \"group:*\")", prog)
		}
	}
	switch {
	case r.Programs.set && !r.URL.set:
		b.ps.add(p.child("url"), "is required when programs is set")
	case r.URL.set && len(s.Programs) == 0:
		b.ps.add(p.child("programs"), "must name at least one program when url is set")
	}
	if r.Username.set || r.PasswordEnv.set {
		b.credentials(p, s.Username, s.PasswordEnv, r.Username.set, r.PasswordEnv.set)
	}
	return s
}

// supervisorURLProblem says what is wrong with a supervisord URL, or "", and how to show the URL in that
// message: its grammar is the supervisor package's, and credentials belong in username and password_env,
// not in the file, nor in an error.
func supervisorURLProblem(s string) (shown, problem string) {
	a, err := supervisor.ParseURL(s)
	switch {
	case err != nil && a.URL != "":
		return a.URL, err.Error()
	case err != nil:
		return "(unparsable)", err.Error()
	case a.Username != "" || a.Password != "":
		return a.URL, "must not hold credentials (set supervisor.username and supervisor.password_env)"
	}
	return s, ""
}

// validProgram accepts "name", "group:name" and "group:*".
func validProgram(s string) bool {
	group, name, grouped := strings.Cut(s, ":")
	if !grouped {
		return nameProblem(s) == ""
	}
	return nameProblem(group) == "" && (name == "*" || nameProblem(name) == "")
}

// check resolves an app's check table.
func (b *builder) check(p keyPath, r rawCheck) Check {
	c := Check{
		Ports:   b.ports(p.child("ports"), r.Ports),
		HTTP:    b.str(p.child("http"), r.HTTP),
		Timeout: b.duration(p.child("timeout"), r.Timeout, timeSeconds(30), false),
	}
	if r.HTTP.set {
		u, err := url.Parse(c.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			b.ps.add(p.child("http"), "%q must be an http:// or https:// URL with a host", c.HTTP)
		}
	}
	return c
}

// rollout resolves an app's rollout table.
func (b *builder) rollout(p keyPath, r rawRollout) Rollout {
	ro := Rollout{
		Parallel: b.atLeast(p.child("parallel"), r.Parallel, defaultParallel, 1),
		Batch:    defaultBatch,
		MaxFail:  b.atLeast(p.child("max_fail"), r.MaxFail, 0, 0),
	}
	if r.Batch.set {
		if s, ok := parseBatch(r.Batch.v); ok {
			ro.Batch = s
		} else {
			b.ps.add(p.child("batch"), "must be a count such as 2 or a percentage from 1%% to 100%%, not %s", quoteValue(r.Batch.v))
		}
	}
	return ro
}

// parseBatch normalizes a batch size: a positive count (integer or string)
// or a percentage from 1% to 100%.
func parseBatch(v any) (string, bool) {
	switch x := v.(type) {
	case int64:
		if x < 1 || x > 1<<31-1 {
			return "", false
		}
		return strconv.FormatInt(x, 10), true
	case string:
		s := strings.TrimSpace(x)
		if num, pct := strings.CutSuffix(s, "%"); pct {
			n, err := strconv.Atoi(num)
			if err != nil || n < 1 || n > 100 || num != strconv.Itoa(n) {
				return "", false
			}
			return num + "%", true
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || s != strconv.Itoa(n) {
			return "", false
		}
		return s, true
	}
	return "", false
}

// quoteValue renders a TOML value for an error message.
func quoteValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return tomlTypeName(v)
}

// checkSharedPaths refuses two apps with the same path on a common host:
// their releases and locks would overwrite each other. Image apps whose
// paths differ but end in the same directory name are refused too: docker
// compose names the project after it, so each app's `up` would replace the
// other's containers.
func (b *builder) checkSharedPaths(inv *Inventory, names []string) {
	for i, name := range names {
		a := inv.Apps[name]
		if a.Path == "" {
			continue
		}
		mine, err := inv.AppHosts(a, nil)
		if err != nil {
			continue
		}
		for _, other := range names[:i] {
			o := inv.Apps[other]
			samePath := o.Path == a.Path
			sameProject := !samePath && a.Kind == KindImage && o.Kind == KindImage && o.Path != "" &&
				compose.ProjectName(o.Path) == compose.ProjectName(a.Path)
			if !samePath && !sameProject {
				continue
			}
			theirs, err := inv.AppHosts(o, nil)
			if err != nil {
				continue
			}
			h := firstCommon(mine, theirs)
			switch {
			case h == "":
				continue
			case samePath:
				b.ps.add(newPath("apps", name, "path"), "%q is also the path of app %q on host %q", a.Path, other, h)
			default:
				b.ps.add(newPath("apps", name, "path"), "%q gives the same docker compose project name %q as the path %q of app %q on host %q; rename one of the directories",
					a.Path, compose.ProjectName(a.Path), o.Path, other, h)
			}
			break
		}
	}
}

func firstCommon(a, b []*Host) string {
	in := map[string]bool{}
	for _, h := range b {
		in[h.Name] = true
	}
	for _, h := range a {
		if in[h.Name] {
			return h.Name
		}
	}
	return ""
}
