package inventory

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// builder turns a rawInventory into an Inventory, recording every problem
// it finds on the way.
type builder struct {
	file string
	home string
	raw  *rawInventory
	ps   *problems

	homeLooked bool
	homeErr    error
}

// str returns the string at r, or "" when r is unset or not a string.
func (b *builder) str(p keyPath, r rawValue) string {
	if !r.set {
		return ""
	}
	s, ok := r.v.(string)
	if !ok {
		b.ps.add(p, "must be a string, not %s", tomlTypeName(r.v))
	}
	return s
}

// integer returns the integer at r, or def when r is unset or wrong.
func (b *builder) integer(p keyPath, r rawValue, def int) int {
	if !r.set {
		return def
	}
	n, ok := r.v.(int64)
	if !ok {
		b.ps.add(p, "must be an integer, not %s", tomlTypeName(r.v))
		return def
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		b.ps.add(p, "%d is out of range", n)
		return def
	}
	return int(n)
}

// atLeast is integer with a lower bound.
func (b *builder) atLeast(p keyPath, r rawValue, def, lowest int) int {
	n := b.integer(p, r, def)
	if r.set && n < lowest {
		if lowest == 0 {
			b.ps.add(p, "must not be negative")
			return def
		}
		b.ps.add(p, "must be at least %d", lowest)
		return def
	}
	return n
}

// port is integer restricted to TCP ports.
func (b *builder) port(p keyPath, r rawValue, def int) int {
	n := b.integer(p, r, def)
	if r.set && (n < 1 || n > 65535) {
		b.ps.add(p, "must be between 1 and 65535")
		return def
	}
	return n
}

// strs returns the array of strings at r, or nil when unset or wrong.
func (b *builder) strs(p keyPath, r rawValue) []string {
	if !r.set {
		return []string{}
	}
	list, ok := r.v.([]any)
	if !ok {
		b.ps.add(p, "must be an array of strings, not %s", tomlTypeName(r.v))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			b.ps.add(p, "must be an array of strings; item %d is %s", i+1, tomlTypeName(v))
			return nil
		}
		out = append(out, s)
	}
	return out
}

// ports returns the array of TCP ports at r, or nil when unset or wrong.
func (b *builder) ports(p keyPath, r rawValue) []int {
	if !r.set {
		return []int{}
	}
	list, ok := r.v.([]any)
	if !ok {
		b.ps.add(p, "must be an array of port numbers, not %s", tomlTypeName(r.v))
		return nil
	}
	out := make([]int, 0, len(list))
	for i, v := range list {
		n, ok := v.(int64)
		if !ok {
			b.ps.add(p, "must be an array of port numbers; item %d is %s", i+1, tomlTypeName(v))
			return nil
		}
		if n < 1 || n > 65535 {
			b.ps.add(p, "item %d: port %d is not between 1 and 65535", i+1, n)
			return nil
		}
		out = append(out, int(n))
	}
	return out
}

// duration returns the duration at r, or def when unset or wrong. Negative
// durations are refused, and so is zero unless zeroOK.
func (b *builder) duration(p keyPath, r rawValue, def Duration, zeroOK bool) Duration {
	if !r.set {
		return def
	}
	var d Duration
	if err := d.UnmarshalTOML(r.v); err != nil {
		b.ps.add(p, "%s", err.Error())
		return def
	}
	switch {
	case d.Duration < 0:
		b.ps.add(p, "must not be negative")
		return def
	case d.Duration == 0 && !zeroOK:
		b.ps.add(p, "must be longer than 0s")
		return def
	}
	return d
}

// expand replaces a leading "~/" in a local path with the home directory.
func (b *builder) expand(p keyPath, s string) string {
	if s != "~" && !strings.HasPrefix(s, "~/") {
		if strings.HasPrefix(s, "~") {
			b.ps.add(p, "%q: only ~/ is expanded, not ~user/", s)
		}
		return s
	}
	home := b.home
	if home == "" {
		if !b.homeLooked {
			home, b.homeErr = os.UserHomeDir()
			b.home, b.homeLooked = home, true
		}
		if b.homeErr != nil {
			b.ps.add(p, "cannot expand %q: %v", s, b.homeErr)
			return s
		}
	}
	return filepath.Join(home, s[1:])
}

// local resolves a local path the way Source and ComposeFile are resolved:
// "~/" is expanded, and a relative path is taken from the directory of the
// inventory file.
func (b *builder) local(p keyPath, s string) string {
	if s == "" {
		return ""
	}
	s = b.expand(p, s)
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	return filepath.Join(filepath.Dir(b.file), s)
}

// name checks a host, group, app, registry or schedule name.
func (b *builder) name(p keyPath, what, s string) bool {
	if msg := nameProblem(s); msg != "" {
		b.ps.add(p, "invalid %s name %q: %s", what, s, msg)
		return false
	}
	return true
}

// nameProblem says what is wrong with a name, or returns "".
func nameProblem(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case s == "." || s == "..":
		return "must not be . or .."
	case s[0] == '-':
		return "must not start with -"
	}
	for _, c := range s {
		if !isNameRune(c) {
			return fmt.Sprintf("%q is not allowed (use letters, digits, '.', '_' and '-')", c)
		}
	}
	return ""
}

func isNameRune(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// word checks a value that ends up as one argument of a command on a host
// (an address, a user, an image): not empty, no spaces or control
// characters, and not starting with "-" so it cannot be read as an option.
func (b *builder) word(p keyPath, s string) bool {
	switch {
	case s == "":
		b.ps.add(p, "must not be empty")
		return false
	case s[0] == '-':
		b.ps.add(p, "%q must not start with -", s)
		return false
	case strings.IndexFunc(s, func(c rune) bool { return c <= ' ' || c == 0x7f }) >= 0:
		b.ps.add(p, "%q must not contain spaces or control characters", s)
		return false
	}
	return true
}

// envName checks the name of an environment variable holding a secret.
func (b *builder) envName(p keyPath, s string) {
	ok := s != "" && !(s[0] >= '0' && s[0] <= '9')
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			ok = false
		}
	}
	switch {
	case !ok:
		b.ps.add(p, "%q is not an environment variable name", s)
	case strings.HasPrefix(strings.ToUpper(s), "SKIFF_"):
		// skiff's own variables hold its SSH key, known hosts and options: a secret named after one of them
		// would hand that value to a registry or a supervisord.
		b.ps.add(p, "%q names one of skiff's own SKIFF_* variables; use a variable of its own", s)
	}
}

// timeMinutes is a readability helper for defaults.
func timeMinutes(n int) Duration { return Duration{time.Duration(n) * time.Minute} }

// timeSeconds is a readability helper for defaults.
func timeSeconds(n int) Duration { return Duration{time.Duration(n) * time.Second} }
