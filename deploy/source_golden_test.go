package deploy_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/remote"
)

var updateSourceGolden = flag.Bool("update-source-golden", false, "rewrite deploy/testdata/source/*.golden")

// recordingConn passes everything through to a real connection and records each command it runs, exactly
// as it goes to the target, with the script it reads on stdin (tar streams and file contents are not
// recorded).
type recordingConn struct {
	deploy.HostConn
	mu   sync.Mutex
	cmds []string
}

func (c *recordingConn) Run(ctx context.Context, cmd remote.Command) (*remote.Result, error) {
	var b strings.Builder
	b.WriteString(cmd.String())
	if cmd.Stdin != nil && len(cmd.Argv) == 2 && cmd.Argv[0] == "sh" && cmd.Argv[1] == "-s" {
		data, err := io.ReadAll(cmd.Stdin)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n<<stdin\n%s>>", data)
		cmd.Stdin = bytes.NewReader(data)
	} else if cmd.Stdin != nil {
		b.WriteString("\n<<stdin: data>>")
	}
	c.mu.Lock()
	c.cmds = append(c.cmds, b.String())
	c.mu.Unlock()
	return c.HostConn.Run(ctx, cmd)
}

// take returns the commands recorded since the last take.
func (c *recordingConn) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.cmds
	c.cmds = nil
	return out
}

// TestDeploySource_GoldenCommands records the exact commands a source deploy, a redeploy, a rollback and
// retention send to a real target, for an ordinary path and a hostile one, and compares them with
// testdata/source/*.golden (go test -run GoldenCommands ./deploy/ -update-source-golden rewrites them).
// Release ids, tokens, times and the test host's directory are replaced by placeholders.
func TestDeploySource_GoldenCommands(t *testing.T) {
	for _, tc := range []struct{ name, dir string }{
		{"ordinary", "golden-app"},
		{"hostile-path", `it's a $(x) "y" ` + "`z`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlowApp(t, "golden")
			f.app.Path = filepath.Join(filepath.Dir(f.app.Path), tc.dir)
			t.Cleanup(func() { os.RemoveAll(f.app.Path) })
			f.app.KeepReleases = 2
			f.app.Shared = []string{"logs"}
			rec := &recordingConn{HostConn: f.conn}
			var out strings.Builder
			step := func(what string, run func(ctx context.Context) *deploy.Outcome) {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if o := run(ctx); o.Err != nil {
					t.Fatalf("%s: %v", what, o.Err)
				}
				fmt.Fprintf(&out, "### %s\n\n", what)
				for _, c := range rec.take() {
					fmt.Fprintf(&out, "%s\n\n", c)
				}
			}
			deployVersion := func(v string) func(context.Context) *deploy.Outcome {
				return func(ctx context.Context) *deploy.Outcome {
					return deploy.DeploySource(ctx, rec, f.app, f.host.Name, f.options(t, flowTree(t, v)))
				}
			}
			step("first deploy", deployVersion("1"))
			step("redeploy, one file changed", deployVersion("2"))
			step("redeploy with retention (keep_releases = 2)", deployVersion("3"))
			step("rollback", func(ctx context.Context) *deploy.Outcome {
				return deploy.RollbackSource(ctx, rec, f.app, f.host.Name, f.options(t, flowTree(t, "3")))
			})
			got := normalizeCommands(out.String(), filepath.Dir(f.app.Path))
			golden := filepath.Join("testdata", "source", tc.name+".golden")
			if *updateSourceGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-source-golden to create it)", err)
			}
			if got != string(want) {
				t.Errorf("the commands differ from %s (-update-source-golden rewrites it after review):\n%s", golden, got)
			}
		})
	}
}

// normalizeCommands replaces what differs between runs: the host's directory, release ids, tokens and
// times.
func normalizeCommands(s, root string) string {
	s = strings.ReplaceAll(s, root, "/srv")
	for _, r := range []struct{ re, with string }{
		{`\d{8}T\d{6}Z`, "RELEASE"},
		{`\b[0-9a-f]{24}\b`, "TOKEN"},
		{`\b[0-9a-f]{12}\b`, "TOKEN"},
		{`run\d{10,}`, "RUN"},
		{`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`, "TIME"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}
