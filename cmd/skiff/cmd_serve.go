package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/serve"
	"github.com/urfave/cli/v2"
)

// serveCommand is `skiff serve`: flags and wiring of package serve, stopping on SIGTERM or SIGINT.
func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "take webhooks ([[triggers]]) and run the deploys they ask for; job API and status page; until SIGTERM",
		Description: "Listens on [serve] listen (or --listen). POST /hooks/NAME takes the webhook of trigger NAME;\n" +
			"GET / is the status page, /api/jobs, /api/jobs/ID, /api/jobs/ID/log and /api/apps the API (bearer token\n" +
			"from the variable [serve] token_env names), /metrics Prometheus metrics, /healthz a liveness check.\n" +
			"Jobs are kept in the state file; on SIGTERM no new job starts and running ones get --stop-timeout.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", EnvVars: []string{"SKIFF_SERVE_LISTEN"}, Usage: "`HOST:PORT` to listen on", DefaultText: "[serve] listen"},
			&cli.StringFlag{Name: "state", EnvVars: []string{"SKIFF_SERVE_STATE"}, Usage: "job store `FILE`", DefaultText: "[serve] state, else under the user state dir"},
			&cli.IntFlag{Name: "max-jobs", EnvVars: []string{"SKIFF_SERVE_MAX_JOBS"}, Usage: "`N` jobs of different apps at once", DefaultText: "[serve] max_jobs"},
			&cli.DurationFlag{Name: "stop-timeout", Value: 5 * time.Minute, EnvVars: []string{"SKIFF_STOP_TIMEOUT"},
				Usage: "on SIGTERM or SIGINT, how long running jobs may take before they are cancelled"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("serve takes no arguments, not %q", c.Args().First())
			}
			if c.Duration("stop-timeout") < 0 || c.Int("max-jobs") < 0 {
				return usagef("--stop-timeout and --max-jobs must not be negative")
			}
			return runServe(c)
		},
	}
}

// runServe starts the server, serves until a stop signal, then drains.
func runServe(c *cli.Context) error {
	stopCtx, _, release := osSignals(c.Context)
	defer release()
	g := globalsOf(c)
	inv, err := loadInventory(g.inventory)
	if err != nil {
		return err
	}
	conf := inventory.Serve{Listen: "127.0.0.1:8099", TokenEnv: "SKIFF_SERVE_TOKEN"}
	if inv.Serve != nil {
		conf = *inv.Serve
	}
	if v := c.String("listen"); v != "" {
		conf.Listen = v
	}
	if v := c.String("state"); v != "" {
		conf.State = v
	}
	if conf.State == "" {
		if conf.State, err = defaultStateFile(); err != nil {
			return usagef("no state file: set [serve] state or --state (%v)", err)
		}
	}
	token := os.Getenv(conf.TokenEnv)
	if token == "" {
		return usagef("serve: %s (the API token, [serve] token_env) is not set", conf.TokenEnv)
	}
	for _, t := range inv.Triggers {
		if os.Getenv(t.SecretEnv) == "" {
			return usagef("serve: trigger %s: %s (secret_env) is not set", t.Name, t.SecretEnv)
		}
	}
	log := &serveLog{w: c.App.Writer}
	srv, err := serve.New(serve.Config{
		Inventory: inv, State: conf.State, Token: token, Secret: os.Getenv, MaxJobs: c.Int("max-jobs"),
		Engine: func(origin string, events func(fleet.Event)) *fleet.Engine {
			cfg := engineConfig(inv, g, events, nil)
			cfg.Who.Origin = origin
			return fleet.New(cfg)
		},
		Logf: log.printf,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", conf.Listen)
	if err != nil {
		srv.Close()
		return usagef("serve: %v", err)
	}
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	srv.Start()
	log.printf("listening on http://%s (%d trigger(s), state %s)", ln.Addr(), len(inv.Triggers), conf.State)

	select {
	case <-stopCtx.Done():
	case err := <-served:
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	}
	timeout := c.Duration("stop-timeout")
	log.printf("stopping: no new jobs; waiting up to %s for %d running job(s)", timeout, srv.Running())
	// The wait starts now, not from c.Context: that ended with the very signal that asked to stop.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	drainErr := srv.Drain(ctx)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = httpSrv.Shutdown(sctx)
	if err := srv.Close(); err != nil && drainErr == nil {
		drainErr = err
	}
	if drainErr != nil && !errors.Is(drainErr, http.ErrServerClosed) {
		log.printf("stopped: %v", drainErr)
		return drainErr
	}
	log.printf("stopped")
	return nil
}

// defaultStateFile is the job store under the user's state directory ($XDG_STATE_HOME or ~/.local/state).
func defaultStateFile() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "skiff", "serve.db"), nil
}

// serveLog writes the server's log lines, stamped, one at a time.
type serveLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *serveLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s serve: %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}
