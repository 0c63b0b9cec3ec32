package fleet

import (
	"testing"

	"github.com/skiffdeploy/skiff/deploy"
)

func TestRunSucceeded_ReadsTheWholeRun(t *testing.T) {
	entry := func(run, op, result string) deploy.HistoryEntry {
		return deploy.HistoryEntry{Run: run, Op: op, Result: result}
	}
	const ok, failed, rolledBack = deploy.ResultOK, deploy.ResultFailed, deploy.ResultRolledBack
	cases := []struct {
		name string
		hist []deploy.HistoryEntry
		want bool
	}{
		{name: "deployed", hist: []deploy.HistoryEntry{entry("r0", deploy.ActionDeploy, failed), entry("r1", deploy.ActionDeploy, ok)}, want: true},
		{name: "not reached by the run", hist: []deploy.HistoryEntry{entry("r0", deploy.ActionDeploy, ok)}, want: false},
		{name: "no history", want: false},
		{name: "failed and rolled back by itself", hist: []deploy.HistoryEntry{entry("r1", deploy.ActionDeploy, failed), entry("r1", deploy.ActionRollback, rolledBack)}, want: false},
		{name: "failed and rolled back, recorded ok", hist: []deploy.HistoryEntry{entry("r1", deploy.ActionDeploy, failed), entry("r1", deploy.ActionRollback, ok)}, want: false},
		{name: "rolled back with the fleet", hist: []deploy.HistoryEntry{entry("r1", deploy.ActionDeploy, ok), entry("r1", deploy.ActionRollback, ok)}, want: false},
		{name: "a run of skiff rollback", hist: []deploy.HistoryEntry{entry("r0", deploy.ActionDeploy, ok), entry("r1", deploy.ActionRollback, ok)}, want: true},
		{name: "a failed run of skiff rollback", hist: []deploy.HistoryEntry{entry("r1", deploy.ActionRollback, failed)}, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := runSucceeded(tc.hist, "r1"); got != tc.want {
				t.Errorf("runSucceeded = %v, want %v", got, tc.want)
			}
		})
	}
}
