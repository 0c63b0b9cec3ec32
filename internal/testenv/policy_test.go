package testenv

import (
	"fmt"
	"testing"
)

// recordingTB records how a test ended instead of ending it; it is a fake
// for the pure unit test of SkipOrFail.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recordingTB) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestSkipOrFail_FailsOnlyUnderCI(t *testing.T) {
	tests := []struct {
		name     string
		ci       string
		wantFail bool
	}{
		{name: "CI=true fails", ci: "true", wantFail: true},
		{name: "CI unset skips", ci: "", wantFail: false},
		{name: "CI=false skips", ci: "false", wantFail: false},
		{name: "CI=1 skips", ci: "1", wantFail: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recordingTB{TB: t}
			SkipOrFail(r, "sshd missing")
			if tc.wantFail && (r.failed == "" || r.skipped != "") {
				t.Errorf("failed=%q skipped=%q, want a failure", r.failed, r.skipped)
			}
			if !tc.wantFail && (r.skipped == "" || r.failed != "") {
				t.Errorf("failed=%q skipped=%q, want a skip", r.failed, r.skipped)
			}
		})
	}
}
