package inventory

import (
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

// schedule resolves the i-th [[schedules]] entry, or returns nil when it has
// no usable name.
func (b *builder) schedule(inv *Inventory, i int, r *rawSchedule) *Schedule {
	p := newPath("schedules").elem(i)
	s := &Schedule{
		Name:    b.str(p.child("name"), r.Name),
		Cron:    b.str(p.child("cron"), r.Cron),
		Job:     b.str(p.child("job"), r.Job),
		Hosts:   b.strs(p.child("hosts"), r.Hosts),
		App:     b.str(p.child("app"), r.App),
		Command: b.strs(p.child("command"), r.Command),
		Tag:     b.str(p.child("tag"), r.Tag),
	}
	if !r.Name.set {
		b.ps.add(p.child("name"), "is required")
	} else if b.name(p.child("name"), "schedule", s.Name) {
		for j, other := range inv.Schedules {
			if other.Name == s.Name {
				b.ps.add(p.child("name"), "duplicate schedule name %q (also schedules[%d])", s.Name, j)
			}
		}
	}
	if !r.Cron.set {
		b.ps.add(p.child("cron"), "is required")
	} else if _, ok := r.Cron.v.(string); ok {
		if _, err := ParseCron(s.Cron); err != nil {
			b.ps.add(p.child("cron"), "%v", err)
		}
	}
	b.refs(inv, p.child("hosts"), s.Hosts)
	b.job(inv, p, r, s)
	return s
}

// job checks the job and the keys that go with it.
func (b *builder) job(inv *Inventory, p keyPath, r *rawSchedule, s *Schedule) {
	if !r.Job.set {
		b.ps.add(p.child("job"), "is required (prune, check, deploy or exec)")
		return
	}
	if _, ok := r.Job.v.(string); !ok {
		return
	}
	switch s.Job {
	case JobPrune, JobCheck, JobDeploy:
		if r.Command.set {
			b.ps.add(p.child("command"), "only for exec jobs")
		}
		if s.Job == JobDeploy && !r.App.set {
			b.ps.add(p.child("app"), "is required for deploy jobs")
		}
		if r.App.set {
			if _, ok := inv.Apps[s.App]; !ok {
				b.ps.add(p.child("app"), "unknown app %q", s.App)
			}
		}
	case JobExec:
		if r.App.set {
			b.ps.add(p.child("app"), "not used by exec jobs")
		}
		if !r.Command.set {
			b.ps.add(p.child("command"), "is required for exec jobs")
		} else if _, ok := r.Command.v.([]any); ok && len(s.Command) == 0 {
			b.ps.add(p.child("command"), "must not be empty")
		}
	default:
		b.ps.add(p.child("job"), "unknown job %q (want prune, check, deploy or exec)", s.Job)
		return
	}
	if r.Tag.set {
		if s.Job != JobDeploy {
			b.ps.add(p.child("tag"), "only for deploy jobs")
		} else if !validTag(s.Tag) {
			b.ps.add(p.child("tag"), "invalid image tag %q", s.Tag)
		}
	}
}

// validTag accepts docker image tags: up to 128 letters, digits, '_', '.'
// and '-', not starting with '.' or '-'.
func validTag(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !isNameRune(c) {
			return false
		}
	}
	return true
}

// ParseCron is the one parser of cron specs: the inventory validates schedules with it and `skiff cron`
// runs them with it, so what loads also runs. It takes five fields, an optional leading seconds field,
// descriptors such as "@daily" and "@every 1h", and a CRON_TZ= or TZ= prefix. Unlike a bare robfig parser it
// never panics: a time zone prefix with nothing after it, such as "CRON_TZ=UTC", is an error.
func ParseCron(spec string) (s cron.Schedule, err error) {
	// robfig/cron slices the spec up to the first space after a time zone prefix and panics when there is
	// none.
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		if !strings.Contains(spec, " ") {
			return nil, fmt.Errorf("invalid cron spec %q: the time zone must be followed by a space and a schedule", spec)
		}
	}
	defer func() {
		if v := recover(); v != nil {
			s, err = nil, fmt.Errorf("invalid cron spec %q: %v", spec, v)
		}
	}()
	parser := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	s, err = parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron spec %q: %w", spec, err)
	}
	return s, nil
}
