package ship

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeEntry reads one line of a stored manifest. Lines in exactly the form Encode writes for plain names
// (keys in its order, no escapes, a plain decimal size) are read by hand, which is several times faster than
// encoding/json and matters for manifests of tens of thousands of files read on every deploy; anything else,
// including every line that is not valid, goes through the strict JSON decoder, which has the last word.
func decodeEntry(line []byte) (Entry, error) {
	if e, ok := decodeEntryFast(line); ok {
		return e, nil
	}
	return decodeEntryJSON(line)
}

// decodeEntryFast accepts `{"path":P,"type":T,"mode":M,"size":N[,"sha256":H][,"link":L]}` whose strings hold
// no backslash, quote, control character or invalid UTF-8 (so that they mean exactly their bytes), and whose
// size is a decimal integer without sign, fraction or leading zero; ok is false for anything else.
func decodeEntryFast(line []byte) (e Entry, ok bool) {
	r := fastLine{b: line}
	var typ, mode, sha, link string
	var size int64
	if !r.lit(`{"path":`) || !r.str(&e.Path) || !r.lit(`,"type":`) || !r.str(&typ) || !r.lit(`,"mode":`) ||
		!r.str(&mode) || !r.lit(`,"size":`) || !r.num(&size) {
		return Entry{}, false
	}
	if r.lit(`,"sha256":`) && !r.str(&sha) {
		return Entry{}, false
	}
	if r.lit(`,"link":`) && !r.str(&link) {
		return Entry{}, false
	}
	if !r.lit("}") || len(r.b) != 0 || e.Path == "" {
		return Entry{}, false
	}
	m, err := parseManifestMode(mode)
	if err != nil {
		return Entry{}, false
	}
	e.Type, e.Mode, e.Size, e.SHA256, e.Link = EntryType(typ), m, size, sha, link
	return e, true
}

// fastLine is what is left of a line being read by decodeEntryFast.
type fastLine struct{ b []byte }

func (r *fastLine) lit(s string) bool {
	if !bytes.HasPrefix(r.b, []byte(s)) {
		return false
	}
	r.b = r.b[len(s):]
	return true
}

func (r *fastLine) str(out *string) bool {
	if len(r.b) == 0 || r.b[0] != '"' {
		return false
	}
	for i := 1; i < len(r.b); i++ {
		switch c := r.b[i]; {
		case c == '"':
			if !utf8.Valid(r.b[1:i]) {
				return false
			}
			*out, r.b = string(r.b[1:i]), r.b[i+1:]
			return true
		case c == '\\' || c < 0x20:
			return false
		}
	}
	return false
}

func (r *fastLine) num(out *int64) bool {
	i := 0
	for i < len(r.b) && r.b[i] >= '0' && r.b[i] <= '9' {
		i++
	}
	if i == 0 || i > 18 || (i > 1 && r.b[0] == '0') {
		return false
	}
	v, err := strconv.ParseInt(string(r.b[:i]), 10, 64)
	if err != nil {
		return false
	}
	*out, r.b = v, r.b[i:]
	return true
}

// decodeEntryJSON reads one line of a stored manifest with encoding/json, refusing unknown fields.
func decodeEntryJSON(line []byte) (Entry, error) {
	if len(bytes.TrimSpace(line)) == 0 {
		return Entry{}, errors.New("empty line")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var j entryJSON
	if err := dec.Decode(&j); err != nil {
		return Entry{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return Entry{}, errors.New("invalid JSON: data after the object")
	}
	p, err := joinName("path", j.Path, j.Path64)
	if err != nil {
		return Entry{}, err
	}
	if p == "" {
		return Entry{}, errors.New("missing path")
	}
	link, err := joinName("link", j.Link, j.Link64)
	if err != nil {
		return Entry{}, err
	}
	mode, err := parseManifestMode(j.Mode)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Path: p, Type: j.Type, Mode: mode, Size: j.Size, SHA256: j.SHA256, Link: link}, nil
}

// joinName undoes splitName, refusing a name given both ways.
func joinName(field, plain, b64 string) (string, error) {
	if b64 == "" {
		return plain, nil
	}
	if plain != "" {
		return "", fmt.Errorf("both %s and %s64 are set", field, field)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("%s64 is not valid base64", field)
	}
	return string(raw), nil
}

// parseManifestMode accepts exactly four octal digits from 0000 to 0777, the form Encode writes.
func parseManifestMode(s string) (fs.FileMode, error) {
	if len(s) != 4 || s[0] != '0' || strings.Trim(s, "01234567") != "" {
		return 0, fmt.Errorf("mode %q is not four octal digits between 0000 and 0777", s)
	}
	v, _ := strconv.ParseUint(s, 8, 32)
	return fs.FileMode(v), nil
}
