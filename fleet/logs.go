package fleet

import (
	"context"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
)

// Logs sends the app's program or container logs of every host as EventLine events, all hosts at once. With
// opts.Follow it goes on until ctx ends; a host that fails then is reported in its result while the others
// go on.
func (e *Engine) Logs(ctx context.Context, req AppRequest, opts deploy.LogOptions) (*Report, error) {
	t, err := e.selectApp("logs", req.App, req.Hosts)
	if err != nil {
		return nil, err
	}
	if opts.Since > 0 && t.app.Supervisor.URL != "" {
		return nil, requestf("logs %s: %v", t.app.Name, deploy.ErrSinceUnsupported)
	}
	if opts.Secret == nil {
		opts.Secret = e.cfg.Secret
	}
	rep := e.onHosts(ctx, "logs", t.hosts, len(t.hosts), func(ctx context.Context, h *inventory.Host, conn *remote.Conn, r *HostResult) error {
		return deploy.AppLogs(ctx, conn, t.app, opts, func(line string) {
			e.emit(Event{Kind: EventLine, Host: h.Name, Stream: "stdout", Text: line})
		})
	}, 0)
	rep.App = t.app.Name
	return rep, nil
}
