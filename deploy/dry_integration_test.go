package deploy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/release"
)

// TestDeploySource_DryRunShowsRetentionAndChangesNothing deploys three releases, lowers keep_releases and
// runs a dry deploy: it reads what a real run reads, shows what it would send, switch and delete (the two
// releases retention would remove, counting the new release it did not make), and leaves the target exactly
// as it was.
func TestDeploySource_DryRunShowsRetentionAndChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "dryrun")
	f.app.Shared = []string{"logs"}
	f.app.Hooks.BeforeSwitch = []string{"touch hook-ran"}
	ctx := context.Background()
	var ids []string
	for _, v := range []string{"1", "2", "3"} {
		o := f.options(t, flowTree(t, v))
		if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o); out.Err != nil {
			t.Fatalf("deploy %s: %v", v, out.Err)
		}
		ids = append(ids, o.ReleaseID)
	}
	f.app.KeepReleases = 1 // the new release and the previous one stay; the two before go
	before := treeOf(t, f.app.Path)
	f.logs = nil

	o := f.options(t, flowTree(t, "4"))
	o.DryRun = true
	out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o)
	if out.Err != nil {
		t.Fatalf("dry run: %v\n%s", out.Err, strings.Join(f.logs, "\n"))
	}
	log := strings.Join(f.logs, "\n")
	for _, want := range []string{
		"would base " + f.layout().Release(ids[2]),
		"would upload VERSION",
		"touch hook-ran",
		"would point " + f.layout().Current() + " at releases/" + o.ReleaseID, // the switch
		fmt.Sprintf("removing old releases %v", ids[:2]),
		"' skiff " + f.layout().Releases() + " " + f.layout().Manifests(), // the retirement of ids[0] and ids[1]
	} {
		if !strings.Contains(log, want) {
			t.Errorf("dry-run log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "would upload lib/a.txt") {
		t.Errorf("the dry run would upload the unchanged lib/a.txt:\n%s", log)
	}
	if out.Before != ids[2] || out.After != o.ReleaseID {
		t.Errorf("outcome %s -> %s, want %s -> %s (what would be live)", out.Before, out.After, ids[2], o.ReleaseID)
	}
	if after := treeOf(t, f.app.Path); !reflect.DeepEqual(before, after) {
		t.Errorf("the dry run changed the target:\nbefore %v\nafter  %v", before, after)
	}
	if cur, err := release.ReadCurrent(ctx, f.conn, f.layout()); err != nil || cur != ids[2] {
		t.Errorf("current %s, %v after the dry run; want %s", cur, err, ids[2])
	}
}

// treeOf lists every entry under root: type, mode, and the content's hash or the link's target.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			tree[rel] = "link " + target
			return err
		case d.IsDir():
			tree[rel] = fmt.Sprintf("dir %v", info.Mode())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			tree[rel] = fmt.Sprintf("file %v %s", info.Mode(), hex.EncodeToString(sum[:8]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}
