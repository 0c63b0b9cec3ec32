package inventory

import (
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyIndex maps the keys written in a TOML document to their lines.
//
// The TOML library checks syntax and types but does not export where keys
// are, and it cannot tell elements of an array of tables apart. keyIndex is
// built by a light second pass over a document the library has already
// accepted; it only has to find keys, not to validate anything. If it
// misreads an unusual construct, the cost is a missing or wrong line number
// in an error message, never a wrong decision.
type keyIndex struct {
	entries []keyEntry
	first   map[string]int // indexed key -> line of its first occurrence
}

// keyEntry is one key as written: a table header, an array of tables
// header, a key/value pair or a key inside an inline table.
type keyEntry struct {
	plain   string // as toml.Key.String() prints it, without array indexes
	indexed string // with "[i]" after every array of tables element
	line    int
}

// lineOf returns the line of p, or of its closest enclosing key that is
// written in the document, or 0.
func (ix *keyIndex) lineOf(p keyPath) int {
	if ix == nil {
		return 0
	}
	for n := len(p); n > 0; n-- {
		if line, ok := ix.first[p[:n].String()]; ok {
			return line
		}
	}
	return 0
}

// occurrence returns the n-th (0-based) entry whose plain key is plain.
func (ix *keyIndex) occurrence(plain string, n int) (keyEntry, bool) {
	for _, e := range ix.entries {
		if e.plain != plain {
			continue
		}
		if n == 0 {
			return e, true
		}
		n--
	}
	return keyEntry{}, false
}

// indexKeys scans src, which must be a document the TOML library parsed.
func indexKeys(src string) *keyIndex {
	s := &keyScanner{
		src:    src,
		arrays: map[string]int{},
		ix:     &keyIndex{first: map[string]int{}},
	}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			s.newlines = append(s.newlines, i)
		}
	}
	s.document()
	return s.ix
}

// keyScanner walks a TOML document byte by byte. Every loop makes progress
// by at least one byte, so it ends on any input.
type keyScanner struct {
	src      string
	pos      int
	newlines []int          // offsets of '\n', to turn offsets into lines
	arrays   map[string]int // indexed array of tables path -> current element
	ix       *keyIndex
}

func (s *keyScanner) lineAt(off int) int {
	return sort.SearchInts(s.newlines, off) + 1
}

func (s *keyScanner) eof() bool { return s.pos >= len(s.src) }

func (s *keyScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.pos]
}

func (s *keyScanner) record(plain []string, indexed string, off int) {
	line := s.lineAt(off)
	s.ix.entries = append(s.ix.entries, keyEntry{plain: toml.Key(plain).String(), indexed: indexed, line: line})
	if _, ok := s.ix.first[indexed]; !ok {
		s.ix.first[indexed] = line
	}
}

// resolve formats plain key parts, adding the current element index after
// every part that names an array of tables.
func (s *keyScanner) resolve(parts []string) string {
	var b strings.Builder
	for i, part := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteKeyPart(part))
		if n, ok := s.arrays[b.String()]; ok {
			b.WriteString("[" + strconv.Itoa(n) + "]")
		}
	}
	return b.String()
}

func (s *keyScanner) document() {
	var table []string
	for !s.eof() {
		s.skipBlank(true)
		if s.eof() {
			return
		}
		start := s.pos
		if s.peek() == '[' {
			table = s.header()
		} else {
			parts := s.keyParts()
			full := append(append([]string(nil), table...), parts...)
			indexed := s.resolve(full)
			s.skipBlank(false)
			if len(parts) > 0 && s.peek() == '=' {
				s.pos++
				s.record(full, indexed, start)
				s.value(full, indexed)
			}
		}
		if s.pos == start {
			s.pos++
		}
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the new table context.
func (s *keyScanner) header() []string {
	start := s.pos
	array := strings.HasPrefix(s.src[s.pos:], "[[")
	s.pos++
	if array {
		s.pos++
	}
	parts := s.keyParts()
	s.skipBlank(false)
	for !s.eof() && s.peek() == ']' {
		s.pos++
	}
	if len(parts) == 0 {
		return nil
	}
	if array {
		parent := s.resolve(parts[:len(parts)-1])
		self := quoteKeyPart(parts[len(parts)-1])
		if parent != "" {
			self = parent + "." + self
		}
		n, ok := s.arrays[self]
		if ok {
			n++
		}
		s.arrays[self] = n
	}
	s.record(parts, s.resolve(parts), start)
	return parts
}

// keyParts reads a possibly dotted, possibly quoted key.
func (s *keyScanner) keyParts() []string {
	var parts []string
	for !s.eof() {
		s.skipBlank(false)
		switch c := s.peek(); c {
		case '"':
			raw := s.quoted('"')
			if v, err := strconv.Unquote(raw); err == nil {
				parts = append(parts, v)
			} else {
				parts = append(parts, strings.Trim(raw, `"`))
			}
		case '\'':
			parts = append(parts, strings.Trim(s.quoted('\''), "'"))
		default:
			start := s.pos
			for !s.eof() && !strings.ContainsRune(" \t\r\n=.[]\"'#,{}", rune(s.peek())) {
				s.pos++
			}
			if s.pos == start {
				return parts
			}
			parts = append(parts, s.src[start:s.pos])
		}
		s.skipBlank(false)
		if s.peek() != '.' {
			return parts
		}
		s.pos++
	}
	return parts
}

// quoted reads a single-line string delimited by q and returns it with its
// quotes.
func (s *keyScanner) quoted(q byte) string {
	start := s.pos
	s.pos++
	for !s.eof() {
		c := s.src[s.pos]
		switch {
		case c == '\\' && q == '"':
			s.pos += 2
			continue
		case c == q:
			s.pos++
			return s.src[start:s.pos]
		case c == '\n':
			return s.src[start:s.pos]
		}
		s.pos++
	}
	s.pos = len(s.src)
	return s.src[start:]
}

// multiline skips a string opened by three q bytes. The closing delimiter
// may be followed by up to two more quotes that belong to the content.
func (s *keyScanner) multiline(q byte) {
	delim := strings.Repeat(string(q), 3)
	s.pos += 3
	for !s.eof() {
		if q == '"' && s.src[s.pos] == '\\' {
			s.pos += 2
			continue
		}
		if strings.HasPrefix(s.src[s.pos:], delim) {
			s.pos += 3
			for i := 0; i < 2 && s.peek() == q; i++ {
				s.pos++
			}
			return
		}
		s.pos++
	}
}

// value skips one value, recording the keys of inline tables in it.
func (s *keyScanner) value(plain []string, indexed string) {
	s.skipBlank(false)
	switch c := s.peek(); {
	case c == '"' || c == '\'':
		if strings.HasPrefix(s.src[s.pos:], strings.Repeat(string(c), 3)) {
			s.multiline(c)
		} else {
			s.quoted(c)
		}
	case c == '[':
		s.array(plain, indexed)
	case c == '{':
		s.inlineTable(plain, indexed)
	default:
		for !s.eof() && !strings.ContainsRune(",]}#\r\n", rune(s.peek())) {
			s.pos++
		}
	}
}

func (s *keyScanner) array(plain []string, indexed string) {
	s.pos++
	for i := 0; !s.eof(); {
		s.skipBlank(true)
		start := s.pos
		switch s.peek() {
		case ']':
			s.pos++
			return
		case ',':
			s.pos++
		case '{':
			s.inlineTable(plain, indexed+"["+strconv.Itoa(i)+"]")
			i++
		default:
			s.value(plain, indexed)
			i++
		}
		if s.pos == start {
			s.pos++
		}
	}
}

func (s *keyScanner) inlineTable(plain []string, indexed string) {
	s.pos++
	for !s.eof() {
		s.skipBlank(true)
		start := s.pos
		switch s.peek() {
		case '}':
			s.pos++
			return
		case ',':
			s.pos++
		default:
			parts := s.keyParts()
			s.skipBlank(false)
			if len(parts) > 0 && s.peek() == '=' {
				s.pos++
				full := append(append([]string(nil), plain...), parts...)
				sub := indexed + "." + toml.Key(parts).String()
				s.record(full, sub, start)
				s.value(full, sub)
			}
		}
		if s.pos == start {
			s.pos++
		}
	}
}

// skipBlank skips spaces, tabs and comments, and newlines when newlines is
// set.
func (s *keyScanner) skipBlank(newlines bool) {
	for !s.eof() {
		switch c := s.src[s.pos]; {
		case c == ' ' || c == '\t':
			s.pos++
		case newlines && (c == '\n' || c == '\r'):
			s.pos++
		case c == '#':
			for !s.eof() && s.src[s.pos] != '\n' {
				s.pos++
			}
		default:
			return
		}
	}
}
