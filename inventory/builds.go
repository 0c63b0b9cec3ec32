package inventory

import (
	"regexp"
	"strings"
)

// buildNamePattern is what a build name may be: it becomes part of a directory name on the targets.
var buildNamePattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// builds resolves an app's [[apps.NAME.builds]] entries. Paths are checked against each other and against the
// app's shared entries here; against the shipped tree they are checked at deploy time, once it is scanned.
func (b *builder) builds(p keyPath, raw []*rawBuild, shared []string) []Build {
	var out []Build
	for i, r := range raw {
		ep := p.elem(i)
		bd := Build{
			Name:   b.str(ep.child("name"), r.Name),
			Path:   b.str(ep.child("path"), r.Path),
			Inputs: b.strs(ep.child("inputs"), r.Inputs),
			Run:    b.str(ep.child("run"), r.Run),
		}
		ok := b.buildName(ep.child("name"), r.Name.set, bd.Name, out)
		ok = b.buildPath(ep.child("path"), r.Path.set, bd.Path, shared, out) && ok
		if !r.Inputs.set || len(bd.Inputs) == 0 {
			b.ps.add(ep.child("inputs"), "must name at least one file of the release (requirements.txt, package-lock.json)")
			ok = false
		}
		for _, in := range bd.Inputs {
			if msg := sharedProblem(in); msg != "" {
				b.ps.add(ep.child("inputs"), "%q %s", in, msg)
				ok = false
			} else if under(in, bd.Path) || inShared(in, shared) {
				b.ps.add(ep.child("inputs"), "%q is not a shipped file: it lies in the build's path or a shared entry", in)
				ok = false
			}
		}
		if strings.TrimSpace(bd.Run) == "" {
			b.ps.add(ep.child("run"), "is required and must not be empty")
			ok = false
		}
		if ok {
			out = append(out, bd)
		}
	}
	return out
}

// buildName checks a build's name: [a-z0-9-]+ and unique within the app.
func (b *builder) buildName(p keyPath, set bool, name string, earlier []Build) bool {
	switch {
	case !set:
		b.ps.add(p, "is required")
	case !buildNamePattern.MatchString(name):
		b.ps.add(p, "invalid build name %q: use 1 to 64 of a-z, 0-9 and -", name)
	default:
		for _, o := range earlier {
			if o.Name == name {
				b.ps.add(p, "duplicate build name %q", name)
				return false
			}
		}
		return true
	}
	return false
}

// buildPath checks where a build appears in each release: inside the release, and neither a shared entry nor
// inside or around one, nor another build's path.
func (b *builder) buildPath(p keyPath, set bool, s string, shared []string, earlier []Build) bool {
	if !set {
		b.ps.add(p, "is required")
		return false
	}
	if msg := sharedProblem(s); msg != "" {
		b.ps.add(p, "%q %s", s, msg)
		return false
	}
	for _, e := range shared {
		if under(s, e) || under(e, s) {
			b.ps.add(p, "%q clashes with the shared entry %q", s, e)
			return false
		}
	}
	for _, o := range earlier {
		if under(s, o.Path) || under(o.Path, s) {
			b.ps.add(p, "%q clashes with the path %q of build %q", s, o.Path, o.Name)
			return false
		}
	}
	return true
}

// under reports whether p is dir or lies inside it (both relative, clean).
func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func inShared(p string, shared []string) bool {
	for _, e := range shared {
		if under(p, e) {
			return true
		}
	}
	return false
}
