package fleet

import (
	"testing"

	"github.com/skiffdeploy/skiff/release"
)

func TestRunSucceeded_ReadsTheWholeRun(t *testing.T) {
	entry := func(run, op, result string) release.HistoryEntry {
		return release.HistoryEntry{Run: run, Op: op, Result: result}
	}
	const ok, failed, rolledBack = release.ResultOK, release.ResultFailed, release.ResultRolledBack
	cases := []struct {
		name string
		hist []release.HistoryEntry
		want bool
	}{
		{name: "deployed", hist: []release.HistoryEntry{entry("r0", release.ActionDeploy, failed), entry("r1", release.ActionDeploy, ok)}, want: true},
		{name: "not reached by the run", hist: []release.HistoryEntry{entry("r0", release.ActionDeploy, ok)}, want: false},
		{name: "no history", want: false},
		{name: "failed and rolled back by itself", hist: []release.HistoryEntry{entry("r1", release.ActionDeploy, failed), entry("r1", release.ActionRollback, rolledBack)}, want: false},
		{name: "failed and rolled back, recorded ok", hist: []release.HistoryEntry{entry("r1", release.ActionDeploy, failed), entry("r1", release.ActionRollback, ok)}, want: false},
		{name: "rolled back with the fleet", hist: []release.HistoryEntry{entry("r1", release.ActionDeploy, ok), entry("r1", release.ActionRollback, ok)}, want: false},
		{name: "a run of skiff rollback", hist: []release.HistoryEntry{entry("r0", release.ActionDeploy, ok), entry("r1", release.ActionRollback, ok)}, want: true},
		{name: "a failed run of skiff rollback", hist: []release.HistoryEntry{entry("r1", release.ActionRollback, failed)}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := runSucceeded(tc.hist, "r1"); got != tc.want {
				t.Errorf("runSucceeded = %v, want %v", got, tc.want)
			}
		})
	}
}
