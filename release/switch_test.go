package release

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// TestSwitch_Outcomes switches current on trees a target may hold, among them the link a switch killed
// between its two steps leaves, and checks what current names after it and that no temporary link is left.
func TestSwitch_Outcomes(t *testing.T) {
	const old, id = "20261122T101500Z", "20261122T101600Z"
	base := map[string]testenv.Node{"releases/" + old: {Dir: true}, "releases/" + id: {Dir: true}}
	with := func(extra map[string]testenv.Node) map[string]testenv.Node {
		out := map[string]testenv.Node{}
		for _, m := range []map[string]testenv.Node{base, extra} {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	tests := []struct {
		name    string
		tree    map[string]testenv.Node
		wantErr string // empty: the switch succeeds and current names id
		current string // what current names after a refused switch
	}{
		{name: "first release", tree: base},
		{name: "over the live release", tree: with(map[string]testenv.Node{"current": {Link: "releases/" + old}})},
		{name: "a killed switch's link left", tree: with(map[string]testenv.Node{
			"current":  {Link: "releases/" + old},
			switchTemp: {Link: "releases/" + old},
		})},
		{name: "a killed switch's link left, dangling", tree: with(map[string]testenv.Node{switchTemp: {Link: "releases/gone"}})},
		{name: "release missing", tree: map[string]testenv.Node{"current": {Link: "releases/" + old}, "releases/" + old: {Dir: true}},
			wantErr: "release " + id + " is not there", current: "releases/" + old},
		{name: "current is a directory", tree: with(map[string]testenv.Node{"current/x": {Content: "y"}}),
			wantErr: "is not a symlink"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, l, _ := connect(t)
			writeOwnedTree(t, l.Path, tc.tree)
			out, err := Switch(context.Background(), conn, l, id)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Switch: %v, want an error containing %q", err, tc.wantErr)
				}
				if tc.current != "" {
					if got, _ := os.Readlink(l.Current()); got != tc.current {
						t.Errorf("current names %q after a refused switch, want %q", got, tc.current)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Switch: %v", err)
			}
			if got, err := ParseCurrent(l, out); err != nil || got != id {
				t.Errorf("Switch read back %q (%v), want %s", out, err, id)
			}
			if got, _ := os.Readlink(l.Current()); got != l.ReleaseLink(id) {
				t.Errorf("current names %q, want %q", got, l.ReleaseLink(id))
			}
			if left, _ := filepath.Glob(filepath.Join(l.Path, ".current.skiff-tmp*")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}
