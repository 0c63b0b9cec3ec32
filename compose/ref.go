// Package compose builds the docker and docker compose command lines that skiff runs on a target, as argv
// slices, and parses what those commands print. It does no I/O of its own: the one piece of logic that needs
// a target, Detect, takes a Runner. Everything that ends up in a command line is validated here first, so a
// hostile tag, service or project name is refused with a clear error instead of reaching a shell (the
// caller still quotes every word).
package compose

import (
	"fmt"
	"regexp"
	"strings"
)

// The grammar of image references, after github.com/distribution/reference: a name made of an optional
// registry domain (with port) and slash-separated lower-case path components, then an optional tag and an
// optional digest. Every character it admits is safe in a shell word, and no part may start with '-'.
const (
	domainComponent = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	domainPattern   = domainComponent + `(?:\.` + domainComponent + `)*(?::[0-9]+)?`
	pathComponent   = `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
	namePattern     = `(?:` + domainPattern + `/)?` + pathComponent + `(?:/` + pathComponent + `)*`
	tagPattern      = `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
	digestPattern   = `sha256:[0-9a-f]{64}`
	maxNameLength   = 255
)

var (
	referenceRE = regexp.MustCompile(`^(` + namePattern + `)(?::(` + tagPattern + `))?(?:@(` + digestPattern + `))?$`)
	nameRE      = regexp.MustCompile(`^` + namePattern + `$`)
	tagRE       = regexp.MustCompile(`^` + tagPattern + `$`)
	digestRE    = regexp.MustCompile(`^` + digestPattern + `$`)
	serverRE    = regexp.MustCompile(`^` + domainPattern + `$`)
	serviceRE   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	projectRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// Reference is an image reference split into its parts: Repository[:Tag][@Digest].
type Reference struct {
	// Repository is the registry domain (if any) and path, such as "registry.example.com/shop/app".
	Repository string
	// Tag is the tag without its colon, or "".
	Tag string
	// Digest is the manifest digest "sha256:<64 hex>", or "".
	Digest string
}

// ParseReference splits and validates an image reference such as "registry.example.com/shop/app:v2" or
// "shop/app@sha256:…". Anything outside the reference grammar (spaces, quotes, '$', a leading '-', upper
// case in the path) is an error that shows the offending input.
func ParseReference(s string) (Reference, error) {
	m := referenceRE.FindStringSubmatch(s)
	if m == nil {
		return Reference{}, fmt.Errorf("invalid image reference %q (want [registry[:port]/]name[:tag][@sha256:digest], lower-case name)", s)
	}
	if len(m[1]) > maxNameLength {
		return Reference{}, fmt.Errorf("invalid image reference %q: name longer than %d characters", s, maxNameLength)
	}
	return Reference{Repository: m[1], Tag: m[2], Digest: m[3]}, nil
}

// String renders the reference as docker reads it.
func (r Reference) String() string {
	s := r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Pinned returns the reference of the repository at exactly digest, with no tag: what the override file
// pins a service to, so that the service runs the same image whatever the tag points to later.
func (r Reference) Pinned(digest string) Reference {
	return Reference{Repository: r.Repository, Digest: digest}
}

// Validate reports a reference that ParseReference would not have produced.
func (r Reference) Validate() error {
	_, err := ParseReference(r.String())
	if err == nil && r.Repository == "" {
		err = fmt.Errorf("image reference without a repository")
	}
	return err
}

// ValidRepository reports whether s is an image name without tag or digest.
func ValidRepository(s string) bool { return len(s) <= maxNameLength && nameRE.MatchString(s) }

// ValidTag reports whether s is a valid image tag.
func ValidTag(s string) bool { return tagRE.MatchString(s) }

// ValidDigest reports whether s is a sha256 digest "sha256:<64 lower-case hex digits>".
func ValidDigest(s string) bool { return digestRE.MatchString(s) }

// ValidateService checks a compose service name.
func ValidateService(s string) error {
	if !serviceRE.MatchString(s) {
		return fmt.Errorf("invalid compose service name %q (letters, digits, '.', '_', '-'; starting with a letter or digit)", s)
	}
	return nil
}

// ValidateServer checks a registry server for docker login: a host name or address with an optional port.
func ValidateServer(s string) error {
	if !serverRE.MatchString(s) {
		return fmt.Errorf("invalid registry server %q (want host or host:port)", s)
	}
	return nil
}

// ValidateProject checks a compose project name.
func ValidateProject(s string) error {
	if !projectRE.MatchString(s) {
		return fmt.Errorf("invalid compose project name %q (lower-case letters, digits, '_', '-'; starting with a letter or digit)", s)
	}
	return nil
}

// ProjectName derives a compose project name from the app's directory the way compose itself does from a
// directory name (lower case, only letters, digits, '_' and '-'), so that an operator who runs compose by
// hand in that directory sees the same containers. It falls back to "skiff" when nothing is left.
func ProjectName(dir string) string {
	base := dir[strings.LastIndexByte(dir, '/')+1:]
	var b strings.Builder
	for _, c := range strings.ToLower(base) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteRune(c)
		}
	}
	name := strings.TrimLeft(b.String(), "_-")
	if name == "" {
		return "skiff"
	}
	return name
}

// Familiar shortens a repository the way docker shows Docker Hub images: "docker.io/library/nginx" and
// "index.docker.io/library/nginx" are "nginx", "docker.io/user/app" is "user/app". Other names are unchanged.
func Familiar(repo string) string {
	for _, hub := range []string{"docker.io/", "index.docker.io/", "registry-1.docker.io/"} {
		if rest, ok := strings.CutPrefix(repo, hub); ok {
			return strings.TrimPrefix(rest, "library/")
		}
	}
	return strings.TrimPrefix(repo, "library/")
}

// SameRepository reports whether two repository names denote the same repository, Docker Hub spellings
// included.
func SameRepository(a, b string) bool { return Familiar(a) == Familiar(b) }
