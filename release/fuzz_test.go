package release

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseHistory holds that no history a target returns makes ParseHistory panic, and that every entry it
// keeps is valid and every line it drops is reported.
func FuzzParseHistory(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-22T10:15:00Z","op":"deploy","app":"api","id":"20261122T101500Z","result":"ok"}` + "\n"))
	f.Add([]byte("{\"op\":\"deploy\",\"result\":\"ok\",\"id\":\"../x\"}\n{\"op\":\"rollb\n\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, skipped := ParseHistory(data)
		for _, e := range h {
			if err := e.validate(); err != nil {
				t.Fatalf("kept an invalid entry %+v: %v", e, err)
			}
		}
		if lines := bytes.Count(data, []byte("\n")) + 1; len(h)+len(skipped) > lines {
			t.Fatalf("%d entries and %d skipped lines from %d lines", len(h), len(skipped), lines)
		}
	})
}

// FuzzParseLockOwner holds that no owner.json a target returns makes ParseLockOwner panic, and that a token
// it accepts is one AcquireLock could have written.
func FuzzParseLockOwner(f *testing.F) {
	f.Add([]byte(`{"operator":"alice","machine":"ci","pid":1,"origin":"cli","op":"deploy","app":"api","since":"2026-11-22T10:15:00Z","token":"0123456789abcdef01234567"}`))
	f.Add([]byte(`{"op":"deploy","token":"\"; rm -rf /"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseLockOwner(data)
		if err != nil {
			return
		}
		if o.Token != "" && !tokenPattern.MatchString(o.Token) {
			t.Fatalf("token %q accepted", o.Token)
		}
		_ = lockedError(Layout{Path: "/srv/x"}, data, time.Minute).Error()
	})
}
