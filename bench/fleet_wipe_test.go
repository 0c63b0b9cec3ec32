package bench

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/supervisor"
)

// toolTarget is the supervisord program and the directory under /srv that a tool deploys; "" for the floor.
func toolTarget(tool string) (program, dir string) {
	switch tool {
	case "skiff":
		return skiffProgram, "app"
	case "ansible":
		return ansibleProgram, "ansible-app"
	case "shell":
		return shellProgram, "shell-app"
	}
	return "", ""
}

// wipe makes tool's next run a first deploy on every host: its program is stopped and its app directory
// (releases, history, lock and all, for skiff) is removed, as on a host that never had the app but has its
// supervisord program configured. It works from this side: supervisord's unix socket and the host's /srv are
// files under the host's Root, so nothing runs on the targets and the targets' CPU is not disturbed.
func (fb *fleetBench) wipe(tool string) {
	program, dir := toolTarget(tool)
	if program == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, h := range fb.env.Hosts {
		g.Go(func() error {
			if err := stopProgram(ctx, h, program); err != nil {
				return err
			}
			return os.RemoveAll(filepath.Join(h.Root, "srv", dir))
		})
	}
	if err := g.Wait(); err != nil {
		fb.b.Fatalf("wipe %s: %v", tool, err)
	}
}

// stopProgram stops program on h through its supervisord's socket, and waits until it has stopped; a program
// that is not running is fine.
func stopProgram(ctx context.Context, h *testenv.Host, program string) error {
	sock := filepath.Join(h.Root, "srv", "run", "supervisor.sock")
	dial := supervisor.DialerFunc(func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	})
	c, err := supervisor.New(dial, testenv.FleetSupervisorURL, supervisor.Options{PollInterval: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Stop(ctx, program+":"+program, true); err != nil && !supervisor.IsFault(err, supervisor.FaultNotRunning) {
		return err
	}
	return nil
}
