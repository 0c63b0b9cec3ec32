package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/schedule"
	"github.com/urfave/cli/v2"
)

// signalFunc subscribes `skiff cron` to the outside world: it returns a context that ends when the process is
// asked to stop, a channel that receives when it is asked to reload the inventory, and a function that
// unsubscribes. Tests pass their own instead of the process's signals.
type signalFunc func(ctx context.Context) (stop context.Context, reload <-chan os.Signal, release func())

// osSignals stops on SIGTERM and SIGINT and reloads on SIGHUP.
func osSignals(ctx context.Context) (context.Context, <-chan os.Signal, func()) {
	stopCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return stopCtx, hup, func() {
		signal.Stop(hup)
		stop()
	}
}

// cronCommand is `skiff cron`, listening to the process's signals.
func cronCommand() *cli.Command { return newCronCommand(osSignals) }

// newCronCommand is `skiff cron` with its stop and reload signals taken from signals.
func newCronCommand(signals signalFunc) *cli.Command {
	return &cli.Command{
		Name:  "cron",
		Usage: "run the inventory's [[schedules]] until SIGTERM or SIGINT; SIGHUP reloads the inventory",
		Description: "Each run executes the same command a user would (prune, check, deploy APP, exec) in-process and\n" +
			"logs one line with its result and duration. A run that would overlap the previous run of the same\n" +
			"schedule is skipped and logged; runs of different schedules take turns. On SIGTERM no new run starts\n" +
			"and running ones get --stop-timeout to finish before they are cancelled. --hosts does not apply:\n" +
			"every schedule names its own hosts.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "list", Usage: "print the next run of each schedule and exit"},
			&cli.DurationFlag{Name: "stop-timeout", Value: 5 * time.Minute, EnvVars: []string{"SKIFF_STOP_TIMEOUT"},
				Usage: "on SIGTERM or SIGINT, how long (`DURATION`) running jobs may take before they are cancelled"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("cron takes no arguments, not %q", c.Args().First())
			}
			if c.Duration("stop-timeout") < 0 {
				return usagef("--stop-timeout must not be negative")
			}
			return runCron(c, signals)
		},
	}
}

// runCron loads the schedules, then either lists them (--list) or runs them until asked to stop. Signals are
// subscribed to first, so that an early SIGHUP reloads instead of killing the process.
func runCron(c *cli.Context, signals signalFunc) error {
	stopCtx, reload, release := signals(c.Context)
	defer release()

	g := globalsOf(c)
	g.hosts = nil
	log := &cronLog{w: c.App.Writer, json: g.json}
	jobs := &cronJobs{g: g, stderr: c.App.ErrWriter, log: log}
	runner := schedule.New(schedule.Options{Run: jobs.run, Log: log.event})
	inv, err := loadInventory(g.inventory)
	if err != nil {
		return err
	}
	if err := runner.Load(inv); err != nil {
		return err
	}
	if c.Bool("list") {
		return printPlanned(c.App.Writer, runner.Next(), g.json)
	}

	if c.String("hosts") != "" {
		log.notice("warning", "--hosts (SKIFF_HOSTS) is ignored by cron: each schedule names its own hosts", nil)
	}
	runner.Start()
	log.notice("start", fmt.Sprintf("running %d schedule(s) from %s", len(inv.Schedules), inv.File), nil)
	if len(inv.Schedules) == 0 {
		log.notice("warning", "no [[schedules]]: nothing runs until a reload (SIGHUP) brings some", nil)
	}
	for done := false; !done; {
		select {
		case <-stopCtx.Done():
			done = true
		case <-reload:
			inv, err := loadInventory(g.inventory)
			if err == nil {
				err = runner.Load(inv)
			}
			if err != nil {
				log.notice("reload", "reload failed, keeping the previous schedules", err)
				continue
			}
			log.notice("reload", fmt.Sprintf("reloaded %d schedule(s) from %s", len(inv.Schedules), inv.File), nil)
		}
	}

	timeout := c.Duration("stop-timeout")
	log.notice("stop", fmt.Sprintf("stopping: no new runs; waiting up to %s for %d running job(s)", timeout, len(runner.Running())), nil)
	// The wait starts now and is not derived from c.Context: that context ended with the very signal that
	// asked to stop.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := runner.Stop(ctx); err != nil {
		log.notice("stop", "stopped", err)
		return err
	}
	log.notice("stop", "stopped", nil)
	return nil
}

// cronJobs runs the jobs of schedules through the fleet engine, the way the same command typed by hand
// would: each run reads the inventory file again and has an engine (and so connections) of its own, so runs
// of different schedules go on at the same time. The global options of `skiff cron` apply to every run;
// --hosts does not, since every schedule names its own hosts.
type cronJobs struct {
	g      globals
	stderr io.Writer
	log    *cronLog
}

// run runs schedule s. A run that fails is an error that carries the exit code the same command typed by
// hand would have, and names the failed hosts.
func (j *cronJobs) run(ctx context.Context, _ *inventory.Inventory, s *inventory.Schedule) error {
	inv, err := loadInventory(j.g.inventory)
	if err != nil {
		return jobError(nil, err)
	}
	var logf func(string, ...any)
	if j.g.verbose {
		logf = func(format string, args ...any) { j.log.lines(j.stderr, s.Name, fmt.Sprintf(format, args...)) }
	}
	events := func(ev fleet.Event) {
		if logf != nil && ev.Kind == fleet.EventNotice {
			logf("%s", ev.Text)
		}
	}
	cfg := engineConfig(inv, j.g, events, logf)
	e := fleet.New(cfg)
	defer e.Close()
	started := time.Now()
	rep, err := runSchedule(ctx, e, inv, s)
	if err == nil {
		warn := func(format string, args ...any) { j.log.notice("warning", fmt.Sprintf(format, args...), nil) }
		notifyReport(ctx, inv, reportOf(rep, j.g.dryRun), cfg.Who, s.Name, started, warn)
	}
	return jobError(rep, err)
}

// runSchedule sends the request of schedule s to the engine. A check of an app with no hosts of its own
// checks the app's hosts.
func runSchedule(ctx context.Context, e *fleet.Engine, inv *inventory.Inventory, s *inventory.Schedule) (*fleet.Report, error) {
	hosts := fleet.Selection(s.Hosts)
	switch s.Job {
	case inventory.JobPrune:
		return e.Prune(ctx, fleet.PruneRequest{App: s.App, Hosts: hosts})
	case inventory.JobCheck:
		if len(hosts) == 0 && s.App != "" {
			app, ok := inv.Apps[s.App]
			if !ok {
				return nil, usagef("schedule %s: unknown app %q", s.Name, s.App)
			}
			hosts = app.Hosts
		}
		return e.Check(ctx, hosts)
	case inventory.JobDeploy:
		return e.Deploy(ctx, fleet.DeployRequest{App: s.App, Hosts: hosts, Tag: s.Tag})
	case inventory.JobExec:
		return e.Exec(ctx, hosts, s.Command)
	}
	return nil, usagef("schedule %s: unknown job %q", s.Name, s.Job)
}

// jobError is the error of a run: nil when every host succeeded, else the exit code the command would have
// had and why it failed (the failed hosts, or the request's own error).
func jobError(rep *fleet.Report, err error) error {
	if err != nil {
		return fmt.Errorf("exit %d: %s", exitCode(err), oneLine(err.Error()))
	}
	code := hostsExitCode(rep.Errs())
	if code == exitOK {
		return nil
	}
	return fmt.Errorf("exit %d: %s", code, rep.FailedHosts())
}

// printPlanned prints the next run of each schedule, for `skiff cron --list`.
func printPlanned(w io.Writer, planned []schedule.Planned, asJSON bool) error {
	if asJSON {
		type item struct {
			Name string     `json:"name"`
			Job  string     `json:"job"`
			Cron string     `json:"cron"`
			Next *time.Time `json:"next"`
		}
		items := make([]item, len(planned))
		for i, p := range planned {
			items[i] = item{Name: p.Name, Job: p.Job, Cron: p.Spec}
			if !p.Next.IsZero() {
				items[i].Next = &p.Next
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Schedules []item `json:"schedules"`
		}{items})
	}
	if len(planned) == 0 {
		_, err := fmt.Fprintln(w, "no schedules")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULE\tJOB\tNEXT RUN\tCRON")
	for _, p := range planned {
		next := "never"
		if !p.Next.IsZero() {
			next = p.Next.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Job, next, p.Spec)
	}
	return tw.Flush()
}

// cronLog writes cron's log: one line per run and one per lifecycle event (start, reload, stop), as
// key=value text or as JSON lines. Lines from concurrent runs never interleave.
type cronLog struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

// event logs one run (or skipped tick) of a schedule. In text mode the stack of a panic follows the line,
// indented.
func (l *cronLog) event(ev schedule.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		l.writeJSON(struct {
			Time       string `json:"time"`
			Schedule   string `json:"schedule"`
			Job        string `json:"job"`
			Result     string `json:"result"`
			DurationMS int64  `json:"duration_ms"`
			Error      string `json:"error,omitempty"`
			Stack      string `json:"stack,omitempty"`
		}{ev.Start.Format(time.RFC3339), ev.Schedule, ev.Job, ev.Result, ev.Duration.Milliseconds(), ev.Error, ev.Stack})
		return
	}
	line := fmt.Sprintf("%s schedule=%s job=%s result=%s duration=%s", ev.Start.Format(time.RFC3339),
		ev.Schedule, ev.Job, ev.Result, ev.Duration.Round(time.Millisecond))
	if ev.Error != "" {
		line += " error=" + strconv.Quote(ev.Error)
	}
	fmt.Fprintln(l.w, line)
	if ev.Stack != "" {
		fmt.Fprintln(l.w, "\t"+strings.ReplaceAll(strings.TrimSpace(ev.Stack), "\n", "\n\t"))
	}
}

// notice logs a lifecycle event of cron itself.
func (l *cronLog) notice(event, msg string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now().Format(time.RFC3339)
	if l.json {
		rec := struct {
			Time    string `json:"time"`
			Event   string `json:"event"`
			Message string `json:"message"`
			Error   string `json:"error,omitempty"`
		}{Time: now, Event: event, Message: msg}
		if err != nil {
			rec.Error = err.Error()
		}
		l.writeJSON(rec)
		return
	}
	if err != nil {
		msg += ": " + oneLine(err.Error())
	}
	fmt.Fprintf(l.w, "%s cron: %s\n", now, msg)
}

// lines copies a job's diagnostic output to w, each line prefixed with the schedule's name.
func (l *cronLog) lines(w io.Writer, name, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(w, "%s ! %s\n", name, line)
	}
}

// writeJSON writes rec as one JSON line.
func (l *cronLog) writeJSON(rec any) {
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	_, _ = l.w.Write(append(b, '\n'))
}
