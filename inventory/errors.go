package inventory

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrUnknownName is wrapped by the errors of Select and AppHosts when a name
// is neither a host, a group nor "all", so that callers can tell a usage
// mistake from other failures.
var ErrUnknownName = errors.New("unknown host or group")

// Error is a problem found in an inventory file. It names the file, the
// dotted TOML key the problem is about and, when known, the line of that key,
// so that the operator can go straight to the place to fix.
type Error struct {
	// File is the inventory path as it was given to Load or Parse.
	File string `json:"file"`
	// Key is the dotted TOML key, such as "hosts.web1.port". Elements of
	// arrays of tables are written with a zero-based index, such as
	// "schedules[0].cron". It is empty for syntax errors outside any key.
	Key string `json:"key,omitempty"`
	// Line is the 1-based line of the key, or 0 when it is not known.
	Line int `json:"line,omitempty"`
	// Msg says what is wrong.
	Msg string `json:"msg"`
}

// Error renders the problem as "file:line: key: msg", leaving out the line
// when it is unknown and the key when there is none.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// keyPath is a TOML key as a list of already formatted segments: each
// segment is a key part quoted the way toml.Key quotes it, followed by
// "[i]" when it designates an element of an array of tables.
type keyPath []string

// newPath builds a path from plain key parts.
func newPath(parts ...string) keyPath {
	p := make(keyPath, 0, len(parts))
	for _, part := range parts {
		p = append(p, quoteKeyPart(part))
	}
	return p
}

// child returns a new path extended by the plain key part name.
func (p keyPath) child(name string) keyPath {
	out := make(keyPath, len(p), len(p)+1)
	copy(out, p)
	return append(out, quoteKeyPart(name))
}

// elem returns a new path designating element i of the array at p.
func (p keyPath) elem(i int) keyPath {
	out := make(keyPath, len(p))
	copy(out, p)
	if len(out) > 0 {
		out[len(out)-1] += "[" + strconv.Itoa(i) + "]"
	}
	return out
}

// String joins the segments with dots.
func (p keyPath) String() string { return strings.Join(p, ".") }

// quoteKeyPart quotes one key part exactly as toml.Key.String does, so that
// paths built here and keys reported by the TOML library compare equal.
func quoteKeyPart(part string) string { return toml.Key{part}.String() }

// errorFromParse converts a TOML syntax error into an *Error.
func errorFromParse(file string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: file, Key: pe.LastKey, Line: pe.Position.Line, Msg: pe.Message}
	}
	return &Error{File: file, Msg: err.Error()}
}

// problems collects validation errors so that the first one by line can be
// reported, whatever order the checks ran in.
type problems struct {
	file  string
	index *keyIndex
	list  []*Error
}

// add records that the value at p is wrong. The line is the one of p, or of
// the closest enclosing key written in the file.
func (ps *problems) add(p keyPath, format string, args ...any) {
	ps.list = append(ps.list, &Error{
		File: ps.file,
		Key:  p.String(),
		Line: ps.index.lineOf(p),
		Msg:  fmt.Sprintf(format, args...),
	})
}

// first returns the problem with the lowest line (unknown lines last, ties
// in the order found), or nil when there is none.
func (ps *problems) first() error {
	var best *Error
	for _, e := range ps.list {
		if best == nil || lineRank(e.Line) < lineRank(best.Line) {
			best = e
		}
	}
	if best == nil {
		return nil
	}
	return best
}

func lineRank(line int) int {
	if line <= 0 {
		return int(^uint(0) >> 1)
	}
	return line
}
